"""Read back what TensorBoard serves for a log dir: images and text through its in-process data provider."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from tensorboard import context
from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer


class Served:
    """TensorBoard's view of ``logdir`` (one reload): ``images[run][tag][step]`` and ``texts[run][tag][step]``."""

    def __init__(self, logdir):
        multiplexer = plugin_event_multiplexer.EventMultiplexer(tensor_size_guidance={"images": 0, "text": 0})
        multiplexer.AddRunsFromDirectory(str(logdir))
        multiplexer.Reload()
        self._provider = data_provider.MultiplexerDataProvider(multiplexer, str(logdir))
        self._ctx = context.RequestContext()
        self._blobs = self._provider.read_blob_sequences(self._ctx, experiment_id="", plugin_name="images", downsample=10**6)
        tensors = self._provider.read_tensors(self._ctx, experiment_id="", plugin_name="text", downsample=10**6)
        self.texts = {
            run: {tag: {d.step: d.numpy.item().decode() for d in data} for tag, data in tags.items()}
            for run, tags in tensors.items()
        }

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
