"""The forward pass of a snapshot with its streamed PCA's products in the same compiled graph.

`reduction.StreamingPCA` needs, from each batch of a wide layer's outputs, a few small products: its projection on
the PCA's directions, its column sums and squared norms (the projection pass), or the sketch's products (a pass
over the sample rows). Computed in the graph that computes the outputs, a wide layer's batch never leaves
TensorFlow: no copy into numpy, no fresh numpy arrays per batch, and only the outputs something reads are computed
(a pass over the sample rows stops at the last wide layer). One `tf.function` per kind of pass and set of layers,
traced once for any number of rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf


def _input_signature(inputs):
    """A `tf.TensorSpec` of any number of rows for every array of `inputs` (same structure)."""
    return keras.tree.map_structure(
        lambda leaf: tf.TensorSpec((None, *np.shape(leaf)[1:]), tf.as_dtype(np.asarray(leaf[:0]).dtype)), inputs)


def _flat_outputs(extractor: keras.Model, batch, indices: Sequence[int]) -> list[tf.Tensor]:
    """Outputs `indices` of `extractor` on `batch` in inference mode, as float32 rows (batch × D)."""
    outputs = extractor(batch, training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return [tf.reshape(tf.cast(outputs[i], tf.float32), (tf.shape(outputs[i])[0], -1)) for i in indices]


def projection_step(extractor: keras.Model, streamed: Sequence[int], kept: Sequence[int], inputs, widths):
    """A compiled `step(batch, bases, offsets)` returning, for each output index in `streamed` (with its D×w
    basis and length-D offset), the batch's projection (batch × w), column sums (D, float32) and squared norms of
    its rows minus the offset (float64 total), then the outputs `kept` as float32 rows."""
    streamed, kept = list(streamed), list(kept)
    signature = [_input_signature(inputs),
                 [tf.TensorSpec((widths[i], None), tf.float32) for i in streamed],
                 [tf.TensorSpec((widths[i],), tf.float32) for i in streamed]]

    @tf.function(input_signature=signature, autograph=False)
    def step(batch, bases, offsets):
        outputs = _flat_outputs(extractor, batch, streamed + kept)
        projected, sums, squares = [], [], []
        for rows, basis, offset in zip(outputs, bases, offsets, strict=False):  # outputs: streamed, then kept
            projected.append(tf.linalg.matmul(rows, basis))
            sums.append(tf.reduce_sum(rows, axis=0))
            row_squares = tf.reduce_sum(tf.square(rows - offset), axis=1)
            squares.append(tf.reduce_sum(tf.cast(row_squares, tf.float64)))
        return projected, sums, squares, outputs[len(streamed):]

    return step


def sample_step(extractor: keras.Model, streamed: Sequence[int], inputs, widths):
    """A compiled `step(batch, masks, bases, centres)` returning, for each output index in `streamed`, the sketch's
    sums over the batch's rows whose mask is 1 (`StreamingPCA.add_sample_sums`): Sᵀ Y, the column sums of S and
    of Y, for Y = S W − centre (W: the D×w basis, centre: offset · W)."""
    streamed = list(streamed)
    signature = [_input_signature(inputs),
                 [tf.TensorSpec((None,), tf.float32) for _ in streamed],
                 [tf.TensorSpec((widths[i], None), tf.float32) for i in streamed],
                 [tf.TensorSpec((None,), tf.float32) for _ in streamed]]

    @tf.function(input_signature=signature, autograph=False)
    def step(batch, masks, bases, centres):
        products, sums, y_sums = [], [], []
        for rows, mask, basis, centre in zip(_flat_outputs(extractor, batch, streamed), masks, bases, centres,
                                                  strict=True):
            y = (tf.linalg.matmul(rows, basis) - centre) * mask[:, None]
            products.append(tf.linalg.matmul(rows, y, transpose_a=True))
            sums.append(tf.linalg.matvec(rows, mask, transpose_a=True))
            y_sums.append(tf.reduce_sum(y, axis=0))
        return products, sums, y_sums

    return step
