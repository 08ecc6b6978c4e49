"""Grad-CAM (Selvaraju et al. 2017): where in the input the last conv layer saw evidence for a class."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from projector_export.keras_internals import extractor
from projector_export.model_layers import last_conv_layer


def grad_cam(
    model: keras.Model,
    images: np.ndarray,
    class_index: np.ndarray | None = None,
    *,
    layer: keras.layers.Layer | None = None,
) -> np.ndarray:
    """Class-activation heatmaps for ``images``, one ``H×W`` map in [0, 1] per image at input resolution.

    Each map is ``relu(sum_k w_k A_k)``, ``A_k`` the channels of ``layer``'s output (default: the last
    ``Conv2D``) and ``w_k`` the spatial mean of the gradient of the class score with respect to ``A_k``;
    it is scaled so its maximum is 1 (an all-zero map stays zero) and resized bilinearly to the input size.

    Args:
        model: a functional Keras model whose (first) output gives class scores; logits work best.
        images: a batch exactly as the model takes it, ``N×H×W`` or ``N×H×W×C``.
        class_index: the class explained for each image (``N`` ints); default: the predicted class.
        layer: the conv layer to explain; default: the model's last ``Conv2D``.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim not in (3, 4):
        raise ValueError(f"grad_cam() expects images N×H×W or N×H×W×C; received shape {images.shape}.")
    layer = layer or last_conv_layer(model)
    cam_model = extractor(model, [layer.output, model.outputs[0]])
    with tf.GradientTape() as tape:
        feature_maps, scores = cam_model(images, training=False)
        if class_index is None:
            chosen = tf.argmax(scores, axis=-1, output_type=tf.int32)
        else:
            chosen = tf.convert_to_tensor(np.asarray(class_index, dtype=np.int32))
            if chosen.shape != (len(images),):
                raise ValueError(f"class_index needs one class per image ({len(images)}); received shape "
                                 f"{chosen.shape}.")
        score = tf.reduce_sum(tf.gather(scores, chosen, batch_dims=1))
    gradients = tape.gradient(score, feature_maps)
    weights = tf.reduce_mean(gradients, axis=(1, 2))
    cam = tf.nn.relu(tf.einsum("nhwc,nc->nhw", feature_maps, weights))
    peak = tf.reduce_max(cam, axis=(1, 2), keepdims=True)
    cam = tf.math.divide_no_nan(cam, peak)
    resized = tf.image.resize(cam[..., None], images.shape[1:3], method="bilinear")[..., 0]
    return np.clip(resized.numpy(), 0.0, 1.0)
