"""Filter patterns: the input each conv filter responds to most, found by gradient ascent from noise."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from projector_export.keras_internals import extractor
from projector_export.validation import check_int

NOISE_SPREAD = 0.1
"""Standard deviation of the starting noise, as a fraction of the input range, around its middle."""
LEAK = 0.01
"""Weight of the mean pre-activation added to the objective: a filter whose ReLU is off everywhere on the
start noise still gets a gradient (for ReLU, the objective's gradient is that of a leaky ReLU)."""


def filter_patterns(
    model: keras.Model,
    layer: keras.layers.Conv2D,
    *,
    steps: int = 30,
    step_size: float = 0.05,
    value_range: tuple[float, float] = (0.0, 1.0),
    seed: int = 0,
    chunk: int = 64,
) -> np.ndarray:
    """One input pattern per filter of ``layer``, shaped as the model's input (``F×H×W[×C]``), in ``value_range``.

    Starts from grey noise (mid-range, ``NOISE_SPREAD`` of the range) and climbs the filter's mean
    activation over the whole map (plus ``LEAK`` × its mean pre-activation), with steps of ``step_size`` ×
    range per pixel (RMS-normalised gradient), clipped to ``value_range``. The mean over all positions, not
    one central unit, is what makes the pattern a texture that repeats what the filter looks for. All
    filters are optimised together as one batch (``chunk`` at a time); ``steps=0`` returns the start noise.
    """
    if not isinstance(layer, keras.layers.Conv2D):
        raise TypeError(f"filter_patterns() needs a Conv2D layer; received {type(layer).__name__} {layer.name!r}.")
    if layer.data_format != "channels_last":
        raise ValueError(f"filter_patterns() supports channels_last conv layers; {layer.name!r} is "
                         f"{layer.data_format}.")
    steps = check_int("steps", steps, minimum=0)
    chunk = check_int("chunk", chunk)
    low, high = (float(v) for v in value_range)
    if not high > low:
        raise ValueError(f"value_range must be (low, high) with high > low; received {value_range}.")
    to_input = extractor(model, layer.input)
    input_shape = tuple(model.inputs[0].shape[1:])
    rng = np.random.default_rng(seed)
    span = high - low
    noise = (low + high) / 2 + NOISE_SPREAD * span * rng.standard_normal((layer.filters, *input_shape))
    patterns = np.clip(noise, low, high).astype(np.float32)
    for start in range(0, layer.filters, chunk):
        stop = min(start + chunk, layer.filters)
        patterns[start:stop] = _ascend(to_input, layer, patterns[start:stop], start, steps, step_size * span, low, high)
    return patterns


def _ascend(to_input, layer, x, first_filter, steps, step, low, high):
    """`steps` gradient-ascent steps on the batch `x`, one compiled graph for all of them (eager steps cost
    several times the arithmetic)."""
    filters = tf.range(first_filter, first_filter + x.shape[0])

    @tf.function
    def climb(x):
        for _ in tf.range(steps):
            with tf.GradientTape() as tape:
                tape.watch(x)
                pre = layer.convolution_op(to_input(x, training=False), layer.kernel)
                if layer.use_bias:
                    pre = pre + layer.bias
                response = (layer.activation(pre) if layer.activation is not None else pre) + LEAK * pre
                per_filter = tf.gather(tf.reduce_mean(response, axis=(1, 2)), filters, batch_dims=1)
                objective = tf.reduce_sum(per_filter)
            gradient = tape.gradient(objective, x)
            rms = tf.sqrt(tf.reduce_mean(tf.square(gradient), axis=tuple(range(1, len(x.shape))), keepdims=True))
            x = tf.clip_by_value(x + step * tf.math.divide_no_nan(gradient, rms), low, high)
        return x

    return climb(tf.constant(x)).numpy()
