"""Chosen layers' outputs on in-memory inputs, flattened to N×D, in one batched forward pass, wide ones reduced
by the exporter's PCA while the batches arrive (`StreamingPCA`): a snapshot never holds a wide layer's N×D array.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import keras
import numpy as np

from . import streamed_pass
from .keras_internals import build_sequential, extractor, nested_output
from .model_layers import PATH_SEPARATOR
from .prediction import BATCH_SIZE, num_rows, rows
from .reduction import PCAResult, StreamingPCA, is_sketched, reduced_by_default


def layer_output(model: keras.Model, name: str):
    """The symbolic output of layer `name` (a full name from `model_layers.named_layers`) in `model`'s own graph.

    A nested model's layer lives in that model's graph; it is reached by applying the part of the nested model
    up to that layer to the tensors the outer model feeds the nested one.
    """
    head, _, rest = name.partition(PATH_SEPARATOR)
    layer = model.get_layer(head)
    if not rest:
        return layer.output
    return nested_output(model, head, layer_output(layer, rest))


class LayerOutputs:
    """The outputs of chosen layers and the model's first output, flattened to ``N x D``, in one forward pass.

    The multi-output extractor is built once (so its compiled steps are reused by every call) and run batched in
    inference mode (dropout off, batch-norm statistics frozen): at most `BATCH_SIZE` rows a batch, fewer when the
    widest output's batch would exceed `BATCH_BYTES`.

    Args:
        model: a functional or Sequential Keras model (a Sequential one is built on `inputs` if it is not yet).
        layers: full layer names, from `model_layers.resolve_layers`.
        inputs: the inputs the model will be called on (only their shape is read), or None.

    Example:
        outputs = LayerOutputs(model, ["conv1", "fc1"])
        features, model_output = outputs(images)   # {"conv1": N x D1, "fc1": N x D2}, N x classes
    """

    BATCH_SIZE = BATCH_SIZE
    """The most rows a batch takes."""
    BATCH_BYTES = 24 * 2**20
    """The most bytes of one output's batch, so that fewer rows go per batch of a wide layer: glibc's malloc serves
    a block of up to 32 MB from memory freed before, a larger one from fresh pages of the system (page faults,
    every batch, for the outputs and for each temporary of their size)."""

    def __init__(self, model: keras.Model, layers: Sequence[str], inputs=None):
        if isinstance(model, keras.Sequential) and inputs is not None:
            build_sequential(model, inputs)
        self.layers = list(layers)
        tensors = []
        for name in self.layers:
            tensor = layer_output(model, name)
            if not hasattr(tensor, "shape"):
                raise ValueError(f"Layer {name!r} has several outputs; choose a layer with one output tensor.")
            tensors.append(tensor)
        final = model.outputs[0]
        self._model_output_index = next((i for i, t in enumerate(tensors) if t is final), len(tensors))
        if self._model_output_index == len(tensors):
            tensors.append(final)
        self.output_rank = len(final.shape)
        # Flattened widths where the shapes are known before running (None: not known, so never streamed).
        self._widths = [math.prod(t.shape[1:]) if None not in t.shape[1:] else None for t in tensors]
        self._extractor = extractor(model, tensors)
        widest = max((width for width in self._widths if width is not None), default=1)
        self._batch_rows = max(1, min(self.BATCH_SIZE, self.BATCH_BYTES // (4 * widest)))
        self._bases: dict[int, np.ndarray] = {}  # each streamed layer's last PCA directions: the next one's start
        self._steps: dict[tuple, object] = {}  # the compiled steps of the passes, by kind and outputs

    def __call__(
        self, inputs, pca_components: int | None = None
    ) -> tuple[dict[str, np.ndarray | PCAResult], np.ndarray]:
        """Returns ``({layer: N x D float32}, model output N x ...)`` for `inputs` (as the model takes them).

        With `pca_components`, each layer that `export_embeddings` would reduce by its randomized PCA (wider than
        `PCA_THRESHOLD_DIM`, see `reduction.is_sketched`) comes back as that `PCAResult` instead, computed while
        the batches arrive: sample rows go through first (half then all of `reduction.sample_rows(N)`; only all of
        them from the second call on, when each layer's PCA starts from its directions of the call before,
        `StreamingPCA`'s `start`), then every row, each batch projected as soon as it is computed. No N×D array
        of such a layer, nor of its sample, is ever allocated: conv outputs of thousands of images are hundreds
        of MB, slow to allocate and to read.

        Each batch goes through one compiled step (`streamed_pass`) that computes the outputs and, in the same
        graph, what the PCA keeps of the wide ones: only narrow outputs and small products reach numpy.
        """
        n = num_rows(inputs)
        streams = self._streams(n, pca_components)
        self._sketch(inputs, streams)
        streamed = sorted(streams)
        kept = [i for i in range(len(self._widths)) if i not in streams]
        step = self._step("projection", streamed, kept, inputs)
        bases = [streams[i].basis for i in streamed]
        offsets = [streams[i].offset for i in streamed]
        flat = {i: None for i in kept}
        for start in range(0, n, self._batch_rows):  # every row in order: projected, or copied into N×D arrays
            batch_rows = slice(start, min(start + self._batch_rows, n))
            projected, sums, squares, outputs = step(rows(inputs, batch_rows.start, batch_rows.stop), bases, offsets)
            for i, *values in zip(streamed, projected, sums, squares, strict=True):
                streams[i].add_projected(batch_rows, *(np.asarray(value) for value in values))
            for i, view in zip(kept, outputs, strict=True):
                if flat[i] is None:
                    flat[i] = np.empty((n, view.shape[1]), dtype=np.float32)
                flat[i][batch_rows] = view
        outputs = {name: self._check_finite(i, streams[i].result) if i in streams else flat[i]
                   for i, name in enumerate(self.layers)}
        return outputs, flat[self._model_output_index]

    def _step(self, kind: str, streamed: list[int], kept: list[int], inputs):
        """The compiled step of a pass (`streamed_pass`), traced once per kind and set of outputs."""
        key = (kind, tuple(streamed), tuple(kept))
        if key not in self._steps:
            self._steps[key] = (streamed_pass.projection_step(self._extractor, streamed, kept, inputs, self._widths)
                                if kind == "projection" else
                                streamed_pass.sample_step(self._extractor, streamed, inputs, self._widths))
        return self._steps[key]

    def _streams(self, n: int, pca_components: int | None) -> dict[int, StreamingPCA]:
        """A `StreamingPCA` for each output the exporter would reduce by its randomized PCA, by output index."""
        if pca_components is None:
            return {}
        streamed = [
            i for i, width in enumerate(self._widths)
            if i != self._model_output_index and width is not None and reduced_by_default(width, pca_components)
            and is_sketched(n, width, pca_components)
        ]
        return {i: StreamingPCA(n, self._widths[i], pca_components, start=self._bases.get(i)) for i in streamed}

    def _sketch(self, inputs, streams: dict[int, StreamingPCA]) -> None:
        """The passes over the sample rows that find each streamed output's subspace."""
        while any(stream.sketching for stream in streams.values()):
            wanted = {i: stream.pass_rows for i, stream in streams.items() if stream.sketching}
            streamed = sorted(wanted)
            step = self._step("sample", streamed, [], inputs)
            bases = [streams[i].basis for i in streamed]
            centres = [streams[i].offset @ streams[i].basis for i in streamed]
            sample = functools.reduce(np.union1d, wanted.values())
            for start in range(0, len(sample), self._batch_rows):
                taken_rows = sample[start:start + self._batch_rows]
                batch = keras.tree.map_structure(lambda leaf, r=taken_rows: np.take(leaf, r, axis=0), inputs)
                masks = [np.isin(taken_rows, wanted[i], assume_unique=True).astype(np.float32) for i in streamed]
                for i, mask, *sums in zip(streamed, masks, *step(batch, masks, bases, centres), strict=True):
                    self._check_finite(i, streams[i].add_sample_sums, int(mask.sum()),
                                       *(np.asarray(value) for value in sums))
        for i, stream in streams.items():
            self._bases[i] = stream.basis

    def _check_finite(self, index: int, work, *args):
        """`work(*args)` of output `index`'s PCA; its ValueError (NaN or infinite outputs) names the layer."""
        try:
            return work(*args)
        except ValueError as error:
            layer = self.layers[index]
            raise ValueError(f"Layer {layer!r}: {error} Check the model's weights and the inputs.") from error

