"""``ImageLogger``: the seeds' pictures as TensorBoard images of the training run, updated as it trains."""

from __future__ import annotations

import os
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from projector_export.class_scores import class_probabilities
from projector_export.defaults import DEFAULT_IMAGES_EVERY
from projector_export.images import render
from projector_export.images.confusion import confusion_matrix, markdown_table, worst_misclassified
from projector_export.images.filter_patterns import filter_patterns
from projector_export.images.grad_cam import grad_cam
from projector_export.keras_internals import extractor
from projector_export.model_layers import conv_layers, feature_map_layers
from projector_export.periodic import PeriodicCallback
from projector_export.prediction import SharedScores, check_shared_scores, predict_scores
from projector_export.validation import check_int

TAG_FILTERS = "filters"  # + "/<conv layer>"
TAG_FEATURE_MAPS = "feature_maps"  # + "/<conv or pooling layer>"
TAG_CONFUSION_MATRIX = "confusion_matrix"
TAG_CONFUSION_TABLE = "confusion_matrix/table"  # TEXT tab; a tag of its own, TensorBoard keys tags per run
TAG_MISCLASSIFIED = "misclassified"
TAG_GRAD_CAM = "grad_cam"
TAG_FILTER_PATTERNS = "filter_patterns"  # + "/<conv layer>"

CAPTIONED_TILE = 80
"""Smallest side of the digit tiles that carry a caption (misclassified, Grad-CAM)."""


class ImageLogger(PeriodicCallback):
    """Logs filters, feature maps, confusion matrix, misclassified images, Grad-CAM and filter patterns.

    Writes TensorBoard images (and the confusion matrix as a Markdown table in the TEXT tab) into the
    training run, at the start of training, every ``every`` optimizer steps, and at the end; the step is the
    optimizer's (`projector_export.schedule`).
    Filter patterns (gradient ascent, the one costly picture) are computed once, at the end of training.
    Layers are found by type: ``Conv2D`` layers for filters, Grad-CAM (the last one) and patterns;
    ``Conv2D`` and 2-D pooling layers for feature maps (`projector_export.model_layers`). The model's first
    output gives class scores: logits, or probabilities when it ends in a softmax (`class_probabilities`).

    Args:
        images: test images exactly as the model takes them (``N×H×W`` or ``N×H×W×C``, any dtype); their min
            and max are the display range (and the range of filter patterns).
        labels: ``N`` integer class labels.
        logdir: the TensorBoard log directory.
        run: the training's run directory name inside `logdir` (None: `logdir` itself is the run).
        writer: the run's ``tf.summary`` writer, to share one event file with other callbacks (flushed, not closed
            here); default: one of its own in the run directory, created when first needed.
        every: optimizer steps between pictures (besides those at the start and the end of training); 0: off, no
            picture at all. A period longer than the training gives the first and last pictures only.
        feature_map_images: how many of the first test images feature maps are drawn for (one grid each).
        grad_cam_images: how many of the first test images get a Grad-CAM overlay.
        misclassified: how many of the most confidently misclassified test images to show.
        input_channel: the input channel whose filter weights are drawn for conv layers after the first.
        pattern_steps: gradient-ascent steps for filter patterns at the end of training; 0 turns them off.
        class_names: names written for the classes; default ``0 .. K-1``.
        batch_size: batch size for predicting the test set.
        shared_scores: a `SharedScores` filled by `EmbeddingSnapshots` running before this callback: on a step
            where it holds the scores of the first test images (the snapshots' probe), only the other test
            images are predicted here.

    Example:

    ```python
    model.fit(x_train, y_train, callbacks=[ImageLogger(x_test, y_test, "logs", run="run1", every=2000)])
    ```
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        logdir: str | os.PathLike,
        *,
        run: str | None = None,
        writer: tf.summary.SummaryWriter | None = None,
        every: int = DEFAULT_IMAGES_EVERY,
        feature_map_images: int = 2,
        grad_cam_images: int = 8,
        misclassified: int = 9,
        input_channel: int = 0,
        pattern_steps: int = 30,
        class_names: Sequence[str] | None = None,
        batch_size: int = 1000,
        shared_scores: SharedScores | None = None,
    ):
        super().__init__(every, logdir=logdir, run=run, writer=writer)
        self.images, self.labels = _check_test_set(images, labels)
        self.batch_size = check_int("batch_size", batch_size)
        self.shared_scores = check_shared_scores(shared_scores)
        for name, value in dict(feature_map_images=feature_map_images, grad_cam_images=grad_cam_images,
                                misclassified=misclassified, input_channel=input_channel,
                                pattern_steps=pattern_steps).items():
            check_int(name, value, minimum=0)
        self.feature_map_images = min(feature_map_images, len(self.images))
        self.grad_cam_images = min(grad_cam_images, len(self.images))
        self.misclassified = misclassified
        self.input_channel = input_channel
        self.pattern_steps = pattern_steps
        self.class_names = None if class_names is None else [str(name) for name in class_names]
        self._value_range = (float(self.images.min()), float(self.images.max()))
        self._feature_model = None

    # The periodic work ---------------------------------------------------------------------------------

    def on_begin(self, step: int) -> None:
        self._check_model()
        layers = feature_map_layers(self.model)
        self._feature_layers = layers
        self._feature_model = extractor(self.model, [layer.output for layer in layers]) if layers else None

    def on_step(self, step: int, logs: dict | None) -> None:
        self._log(step)

    def on_finish(self, step: int) -> None:
        if self.pattern_steps:
            with self.writer.as_default(step=step):
                self._log_filter_patterns()

    # Checks and helpers --------------------------------------------------------------------------------

    def _check_model(self):
        expected = tuple(self.model.inputs[0].shape[1:]) if self.model.inputs else None
        if expected != self.images.shape[1:]:
            raise ValueError(
                f"ImageLogger images have shape {self.images.shape[1:]} per example but model {self.model.name!r} "
                f"takes {expected}; pass the test images exactly as they are fed to the model."
            )
        classes = int(self.model.outputs[0].shape[-1])
        if self.labels.min() < 0 or self.labels.max() >= classes:
            raise ValueError(f"labels must lie in [0, {classes}) for this model; received {self.labels.min()} .. "
                             f"{self.labels.max()}.")
        names = self.class_names or [str(i) for i in range(classes)]
        if len(names) != classes:
            raise ValueError(f"class_names has {len(names)} names but the model predicts {classes} classes.")
        for layer in conv_layers(self.model)[1:]:
            channels = layer.kernel.shape[2]
            if self.input_channel >= channels:
                raise ValueError(
                    f"input_channel={self.input_channel} but conv layer {layer.name!r} has {channels} input channels; "
                    f"choose one below {channels}."
                )
        self._classes, self._names = classes, names

    def _display(self, images: np.ndarray, factor: int) -> np.ndarray:
        """Input images as upscaled RGB tiles (first channel, or RGB when there are three)."""
        low, high = self._value_range
        if images.ndim == 4 and images.shape[-1] == 3:
            scaled = np.clip((images - low) / max(high - low, 1e-12), 0, 1)
            tiles = np.round(scaled * 255).astype(np.uint8)
        else:
            tiles = np.stack([render.gray(_first_channel(image), low, high) for image in images])
        return np.stack([render.upscale(tile, factor) for tile in tiles])

    def _probabilities(self, step: int | None = None) -> np.ndarray:
        """Class probabilities of the test images at `step`: the rows `shared_scores` holds for it, the rest
        predicted."""
        shared = None if self.shared_scores is None or step is None else self.shared_scores.take(step, self.images)
        done = 0 if shared is None else len(shared)
        parts = [] if shared is None else [shared]
        if done < len(self.images):
            parts.append(predict_scores(self.model, self.images[done:], self.batch_size))
        return class_probabilities(self.model, np.concatenate(parts) if len(parts) > 1 else parts[0])

    # Pictures --------------------------------------------------------------------------------------------

    def _log(self, step: int):
        probabilities = self._probabilities(step)
        with self.writer.as_default(step=step):
            self._log_filters()
            self._log_feature_maps()
            self._log_confusion(probabilities)
            self._log_misclassified(probabilities)
            self._log_grad_cam(probabilities)
        self.writer.flush()

    def _log_filters(self):
        for index, layer in enumerate(conv_layers(self.model)):
            kernel = keras.ops.convert_to_numpy(layer.kernel)  # kh×kw×in×out
            channel = 0 if index == 0 else self.input_channel
            limit = float(np.abs(kernel).max())
            factor = render.upscale_factor(*kernel.shape[:2])
            tiles = [render.upscale(render.diverging(kernel[:, :, channel, f], limit), factor)
                     for f in range(kernel.shape[3])]
            tf.summary.image(
                f"{TAG_FILTERS}/{layer.name}",
                render.grid(tiles)[None],
                description=f"{kernel.shape[3]} filters, input channel {channel}; red > 0 > blue, scale ±{limit:.3g} "
                            "shared by the layer.",
            )

    def _log_feature_maps(self):
        if self._feature_model is None or not self.feature_map_images:
            return
        outputs = self._feature_model(self.images[: self.feature_map_images], training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        for layer, maps in zip(self._feature_layers, outputs, strict=False):
            maps = keras.ops.convert_to_numpy(maps)  # n×h×w×c
            factor = render.upscale_factor(*maps.shape[1:3])
            grids = [
                render.grid([render.upscale(render.gray(m[..., c]), factor) for c in range(m.shape[-1])]) for m in maps
            ]
            tf.summary.image(
                f"{TAG_FEATURE_MAPS}/{layer.name}",
                np.stack(grids),
                max_outputs=len(grids),
                description=f"{maps.shape[-1]} channels of {maps.shape[1]}×{maps.shape[2]}; each tile scaled to "
                            "its own min..max.",
            )

    def _log_confusion(self, probabilities: np.ndarray):
        matrix = confusion_matrix(self.labels, probabilities.argmax(axis=1), self._classes)
        tf.summary.image(TAG_CONFUSION_MATRIX, render.confusion_matrix_image(matrix, self._names)[None])
        tf.summary.text(TAG_CONFUSION_TABLE, markdown_table(matrix, self._names))

    def _log_misclassified(self, probabilities: np.ndarray):
        indices = worst_misclassified(probabilities, self.labels, self.misclassified)
        if not len(indices):
            return
        predictions = probabilities.argmax(axis=1)
        factor = render.upscale_factor(*self.images.shape[1:3], min_size=CAPTIONED_TILE)
        captions = [
            [
                f"True: {self._names[self.labels[i]]}, Pred: {self._names[predictions[i]]}",
                f"confidence {probabilities[i, predictions[i]]:.1%}",
            ]
            for i in indices
        ]
        tiles = render.captioned(self._display(self.images[indices], factor), captions)
        tf.summary.image(
            TAG_MISCLASSIFIED,
            render.grid(tiles)[None],
            description=f"The {len(indices)} most confidently misclassified test images, worst first, row by row.",
        )

    def _log_grad_cam(self, probabilities: np.ndarray):
        if not conv_layers(self.model) or not self.grad_cam_images:
            return
        images = self.images[: self.grad_cam_images]
        predictions = probabilities[: len(images)].argmax(axis=1)
        heat = grad_cam(self.model, images, predictions)
        factor = render.upscale_factor(*images.shape[1:3], min_size=CAPTIONED_TILE)
        tiles = [
            render.overlay_heatmap(tile, render.upscale(h, factor))
            for tile, h in zip(self._display(images, factor), heat, strict=False)
        ]
        captions = [
            [f"True: {self._names[t]}, Pred: {self._names[p]}", f"confidence {probabilities[i, p]:.1%}"]
            for i, (t, p) in enumerate(zip(self.labels[: len(images)], predictions, strict=False))
        ]
        tf.summary.image(
            TAG_GRAD_CAM,
            render.grid(render.captioned(tiles, captions))[None],
            description=f"Grad-CAM on {conv_layers(self.model)[-1].name!r} for the predicted class "
                        "(red: strong evidence).",
        )

    def _log_filter_patterns(self):
        low, high = self._value_range
        for layer in conv_layers(self.model):
            patterns = filter_patterns(self.model, layer, steps=self.pattern_steps, value_range=(low, high))
            factor = render.upscale_factor(*patterns.shape[1:3])
            tiles = [render.upscale(render.gray(_first_channel(p), low, high), factor) for p in patterns]
            tf.summary.image(
                f"{TAG_FILTER_PATTERNS}/{layer.name}",
                render.grid(tiles)[None],
                description=f"Input maximising each filter's mean response, {self.pattern_steps} gradient-ascent steps "
                            "from grey noise.",
            )


def _first_channel(image: np.ndarray) -> np.ndarray:
    """``H×W`` of an ``H×W`` or ``H×W×C`` image."""
    return image if image.ndim == 2 else image[..., 0]


def _check_test_set(images: object, labels: object) -> tuple[np.ndarray, np.ndarray]:
    """The test images and their integer labels as arrays, of the same non-zero length."""
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim not in (3, 4):
        raise ValueError(f"images must be N×H×W or N×H×W×C as the model takes them; received shape {images.shape}.")
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"labels must be N integer class ids; received dtype {labels.dtype}, shape {labels.shape} "
            "(for one-hot labels pass labels.argmax(axis=1))."
        )
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"images and labels must have the same non-zero length; received {len(images)} and "
                         f"{len(labels)}.")
    return images, labels
