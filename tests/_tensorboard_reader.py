"""Read back what TensorBoard serves for a log dir, through its in-process data provider (test helper).

The one reader of event files for the tests: scalars, images and text as TensorBoard's own dashboards get them
(an EventMultiplexer over the log dir and the MultiplexerDataProvider TensorBoard serves from), every step kept.
The PROJECTOR's answers come from `_projector_client.ProjectorClient`, which serves the same log dir.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from tensorboard import context
from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer

_ALL = 10**6  # downsample to at most this many points: keep every step
_KEEP_ALL = {"images": 0, "text": 0, "scalars": 0}  # 0: no reservoir sampling of these plugins' summaries


class Served:
    """TensorBoard's view of ``logdir`` (one reload): ``scalars(run)``, ``images(run, tag, step)``, ``texts[run]``."""

    def __init__(self, logdir):
        multiplexer = plugin_event_multiplexer.EventMultiplexer(tensor_size_guidance=_KEEP_ALL)
        multiplexer.AddRunsFromDirectory(str(logdir))
        multiplexer.Reload()
        self._provider = data_provider.MultiplexerDataProvider(multiplexer, str(logdir))
        self._ctx = context.RequestContext()
        self._blobs = self._provider.read_blob_sequences(self._ctx, experiment_id="", plugin_name="images",
                                                         downsample=_ALL)
        tensors = self._provider.read_tensors(self._ctx, experiment_id="", plugin_name="text", downsample=_ALL)
        self.texts = {
            run: {tag: {d.step: d.numpy.item().decode() for d in data} for tag, data in tags.items()}
            for run, tags in tensors.items()
        }
        self._scalars = self._provider.read_scalars(self._ctx, experiment_id="", plugin_name="scalars",
                                                    downsample=_ALL)

    def scalars(self, run: str) -> dict[str, dict[int, float]]:
        """Every scalar series of `run` as {tag: {step: value}}."""
        return {tag: {d.step: d.value for d in series} for tag, series in self._scalars.get(run, {}).items()}

    def steps(self, run: str, plugin: str) -> dict[str, list[int]]:
        """Tag -> logged steps of `run`'s summaries of `plugin` ("scalars", "images" or "text")."""
        if plugin == "scalars":
            return {tag: list(series) for tag, series in self.scalars(run).items()}
        if plugin == "images":
            return self.image_tags(run)
        if plugin == "text":
            return {tag: list(series) for tag, series in self.texts.get(run, {}).items()}
        raise ValueError(f"Unknown plugin {plugin!r}: expected 'scalars', 'images' or 'text'.")

    def image_tags(self, run: str) -> dict[str, list[int]]:
        """Image tag -> logged steps."""
        return {tag: [d.step for d in data] for tag, data in self._blobs.get(run, {}).items()}

    def images(self, run: str, tag: str, step: int) -> list[np.ndarray]:
        """The images of one step as RGB arrays, checking the width/height TensorBoard stores beside them."""
        (datum,) = [d for d in self._blobs[run][tag] if d.step == step]
        blobs = [self._provider.read_blob(self._ctx, blob_key=ref.blob_key) for ref in datum.values]
        width, height = int(blobs[0]), int(blobs[1])
        arrays = [np.asarray(Image.open(io.BytesIO(png)).convert("RGB")) for png in blobs[2:]]
        assert all(a.shape[:2] == (height, width) for a in arrays)
        return arrays
