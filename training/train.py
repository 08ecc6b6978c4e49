"""`projector-train`: trains a seed network on MNIST with Keras and logs one TensorBoard run.

`main()` only parses flags into a `TrainConfig` and calls `train_and_evaluate(config)`; the work lives in
importable functions. A run is ONE directory `<logdir>/<run>/` holding the event files (scalars `train/loss`,
`train/accuracy`, `test/loss`, `test/accuracy`, `learning_rate`) and the trained `model.keras`.

To add a feature that runs during training (snapshots, images, ...): add its settings as `TrainConfig` fields,
its flags in `build_parser()` (the flag's `dest` must equal the field name), and its callback in
`build_callbacks()`, one line each.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import math
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import keras
import tensorflow as tf

from projector_export.images import ImageLogger
from projector_export.model_layers import SharedScores, resolve_layers
from projector_export.snapshots import (
    DEFAULT_PROBE_SIZE, DEFAULT_SNAPSHOT_EVERY, MIN_PROBE_SIZE, EmbeddingSnapshots, take_probe,
)
from training.callbacks import StopAtStep, TensorBoardScalars
from training.mnist import ENV_VAR, MnistData, load_mnist
from training.models import MODEL_NAMES, build_model, compile_model

MODEL_FILENAME = "model.keras"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """All settings of a training run; the defaults are seed 001's (tutorial CNN, batch 64, Adam 1e-4)."""

    model: str = "tutorial"
    steps: int = 10_000
    batch_size: int = 64
    learning_rate: float = 1e-4
    seed: int | None = None
    logdir: str = "logs"
    run: str | None = None  # None: "<model>-<YYYYmmdd-HHMMSS>"
    data_dir: str | None = None  # None: $MNIST_DATA_DIR, else Keras' download cache
    eval_every: int = 500
    log_every: int = 100
    eval_batch_size: int = 1000
    overwrite: bool = False
    verbose: int | None = None  # Keras fit verbosity; None: a progress bar on a terminal, one line per epoch else
    snapshot_every: int = DEFAULT_SNAPSHOT_EVERY  # layer snapshots for the PROJECTOR every K steps; 0: off
    layers: tuple[str, ...] | None = None  # layers to snapshot; None: every convolution and dense layer
    probe_size: int = DEFAULT_PROBE_SIZE  # snapshot the first N test images
    images_every: int = 2000  # TensorBoard images (filters, feature maps, confusion, Grad-CAM...) every K steps; 0: off
    images_samples: int = 9  # test images shown with Grad-CAM, and misclassified images shown

    def __post_init__(self):
        if self.model not in MODEL_NAMES:
            raise ValueError(f"Unknown model {self.model!r}. Expected one of: {', '.join(MODEL_NAMES)}.")
        for name in ("steps", "batch_size", "eval_every", "log_every", "eval_batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer. Received: {name}={value!r}.")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0. Received: learning_rate={self.learning_rate!r}.")
        if not isinstance(self.snapshot_every, int) or isinstance(self.snapshot_every, bool) or self.snapshot_every < 0:
            raise ValueError(f"snapshot_every must be an integer >= 0 (0: no snapshots). "
                             f"Received: snapshot_every={self.snapshot_every!r}.")
        if self.snapshot_every and not (isinstance(self.probe_size, int) and self.probe_size >= MIN_PROBE_SIZE):
            raise ValueError(f"probe_size must be an integer >= {MIN_PROBE_SIZE}. Received: probe_size={self.probe_size!r}.")
        for name in ("images_every", "images_samples"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0 (0: off). Received: {name}={value!r}.")
        if self.run is not None:
            parts = Path(self.run).parts
            if not parts or Path(self.run).is_absolute() or ".." in parts or self.run.strip() in ("", "."):
                raise ValueError(
                    f"run must be a relative name inside the logdir, such as 'tutorial-1'. Received: run={self.run!r}."
                )


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What a run produced: its directory, the final test figures and the trained model."""

    run_dir: Path
    steps: int
    test_loss: float
    test_accuracy: float
    model: keras.Model


def default_run_name(model: str, now: datetime.datetime | None = None) -> str:
    return f"{model}-{(now or datetime.datetime.now()):%Y%m%d-%H%M%S}"


def build_callbacks(
    config: TrainConfig, run_dir: Path, data: MnistData, writer: tf.summary.SummaryWriter
) -> list[keras.callbacks.Callback]:
    """The callbacks of a run, in order. Features that run during training add one line here.

    Args:
        config: the run's settings.
        run_dir: the run's directory (exists, empty or owned by this run).
        data: the training and test data (e.g. test images to snapshot activations of).
        writer: the run's one `tf.summary` writer; write summaries with it so that a run has one event file.
    """
    shared = SharedScores()  # the snapshots' forward pass of the probe, reused by the pictures on the same step
    return [
        StopAtStep(config.steps),
        TensorBoardScalars(writer, log_every=config.log_every),
        *_snapshot_callbacks(config, run_dir, data, writer, shared),
        *([_image_logger(config, data, writer, shared)] if config.images_every else []),
    ]


def _image_logger(
    config: TrainConfig, data: MnistData, writer: tf.summary.SummaryWriter, shared: SharedScores | None = None
) -> ImageLogger:
    """Filters, feature maps, confusion matrix, misclassified, Grad-CAM on the whole test set; patterns at the end."""
    return ImageLogger(
        writer, data.test_images, data.test_labels, every=config.images_every, grad_cam_images=config.images_samples,
        misclassified=config.images_samples, class_names=data.class_names, batch_size=config.eval_batch_size,
        shared_scores=shared,
    )


def _check_snapshot_settings(config: TrainConfig, data: MnistData) -> None:
    """Probe size and layer names, checked before the run directory is made (a typo leaves nothing behind)."""
    if config.snapshot_every:
        take_probe(data.test_images, data.test_labels, config.probe_size)
        if config.layers is not None:
            resolve_layers(build_model(config.model, data.image_shape, data.num_classes), config.layers)


def _snapshot_callbacks(
    config: TrainConfig, run_dir: Path, data: MnistData, writer: tf.summary.SummaryWriter,
    shared: SharedScores | None = None,
) -> list[keras.callbacks.Callback]:
    """Layer snapshots of the first `probe_size` test images into this run (none when `snapshot_every` is 0)."""
    if not config.snapshot_every:
        return []
    images, labels = take_probe(data.test_images, data.test_labels, config.probe_size)
    return [EmbeddingSnapshots(
        images, labels, run_dir.parent, run=run_dir.name, every=config.snapshot_every, layers=config.layers,
        class_names=data.class_names, total_steps=config.steps, writer=writer, shared_scores=shared,
    )]


def train_and_evaluate(
    config: TrainConfig,
    *,
    data: MnistData | None = None,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
) -> TrainResult:
    """Trains `config.model` for exactly `config.steps` optimizer steps and evaluates it on the test set.

    Args:
        config: the run's settings.
        data: MNIST already in memory; None to load it from `config.data_dir` (see `training.mnist`).
        extra_callbacks: more Keras callbacks, run after those of `build_callbacks` (benchmarks, tests).
    """
    run_dir = Path(config.logdir) / (config.run or default_run_name(config.model))
    _refuse_existing(run_dir, config.overwrite)  # before loading data: fail fast, leave nothing behind
    if data is None:
        data = load_mnist(config.data_dir)
    if config.batch_size > len(data.train_images):
        raise ValueError(
            f"batch_size={config.batch_size} is larger than the {len(data.train_images)} training images; "
            f"expected at most {len(data.train_images)}."
        )
    _check_snapshot_settings(config, data)
    prepare_run_dir(run_dir, config.overwrite)
    if config.seed is not None:
        keras.utils.set_random_seed(config.seed)
        tf.config.experimental.enable_op_determinism()

    model = compile_model(build_model(config.model, data.image_shape, data.num_classes), config.learning_rate)
    steps_per_epoch = min(config.eval_every, config.steps)
    writer = tf.summary.create_file_writer(str(run_dir))
    try:
        history = model.fit(
            _train_dataset(data, config.batch_size, config.seed),
            epochs=math.ceil(config.steps / steps_per_epoch),
            steps_per_epoch=steps_per_epoch,
            validation_data=_test_dataset(data, config.eval_batch_size),
            callbacks=[*build_callbacks(config, run_dir, data, writer), *extra_callbacks],
            verbose=_verbosity(config.verbose),
            shuffle=False,  # the data set shuffles itself
        )
    finally:
        writer.close()
    _save_model(model, run_dir / MODEL_FILENAME)
    return TrainResult(
        run_dir=run_dir,
        steps=int(model.optimizer.iterations.numpy()),
        test_loss=float(history.history["val_loss"][-1]),
        test_accuracy=float(history.history["val_accuracy"][-1]),
        model=model,
    )


def prepare_run_dir(run_dir: Path, overwrite: bool) -> Path:
    """Creates the run directory; an existing non-empty one is refused, or emptied when `overwrite`."""
    _refuse_existing(run_dir, overwrite)
    if run_dir.exists() and overwrite:
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def _refuse_existing(run_dir: Path, overwrite: bool) -> None:
    if run_dir.exists() and not run_dir.is_dir():
        raise FileExistsError(f"Run directory {run_dir} exists and is not a directory. Fix: choose another --run.")
    if not overwrite and run_dir.is_dir() and any(run_dir.iterdir()):
        raise FileExistsError(
            f"Run directory {run_dir} already holds files of another run; refusing to mix two runs. "
            f"Fix: choose another --run name, or pass --overwrite to delete it first."
        )


def _train_dataset(data: MnistData, batch_size: int, seed: int | None) -> tf.data.Dataset:
    """Shuffled, repeating batches of equal size: `steps` batches are exactly `steps` optimizer steps.

    Shuffles indices and gathers whole batches (half the input cost of shuffling image by image).
    """
    count = len(data.train_images)
    images, labels = tf.constant(data.train_images), tf.constant(data.train_labels)
    return (
        tf.data.Dataset.range(count)
        .shuffle(count, seed=seed, reshuffle_each_iteration=True)
        .repeat()
        .batch(batch_size, drop_remainder=True)
        .map(lambda indices: (tf.gather(images, indices), tf.gather(labels, indices)))
        .prefetch(tf.data.AUTOTUNE)
    )


def _test_dataset(data: MnistData, batch_size: int) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices((data.test_images, data.test_labels)).batch(batch_size)


def _verbosity(verbose: int | None) -> int:
    if verbose is not None:
        return verbose
    return 1 if sys.stdout.isatty() else 2


def _save_model(model: keras.Model, path: Path) -> None:
    """Saves through a temporary file and a rename, so `model.keras` is never half-written."""
    temporary = path.with_name(f".{path.stem}.tmp{path.suffix}")  # Keras requires the .keras suffix
    model.save(temporary)
    os.replace(temporary, path)


def build_parser() -> argparse.ArgumentParser:
    """Flags of `projector-train`; each `dest` is a `TrainConfig` field, defaults come from `TrainConfig`."""
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(
        prog="projector-train",
        description="Train a seed CNN on MNIST with Keras; log TensorBoard scalars and save model.keras.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model", choices=MODEL_NAMES, default=defaults.model, help="seed network")
    parser.add_argument("--steps", type=int, default=defaults.steps, help="optimizer steps (batches)")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate, help="Adam's")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="make the run repeatable")
    parser.add_argument("--logdir", default=defaults.logdir, help="TensorBoard log directory")
    parser.add_argument("--run", default=defaults.run, help="run name (default: <model>-<YYYYmmdd-HHMMSS>)")
    parser.add_argument(
        "--data-dir", default=defaults.data_dir,
        help=f"directory with the four MNIST IDX files (default: ${ENV_VAR}, else download with Keras)",
    )
    parser.add_argument("--eval-every", type=int, default=defaults.eval_every, help="test evaluation period, steps")
    parser.add_argument("--log-every", type=int, default=defaults.log_every, help="train scalars period, steps")
    parser.add_argument("--overwrite", action="store_true", help="delete an existing non-empty run directory")
    parser.add_argument(
        "--snapshot-every", type=int, default=defaults.snapshot_every, metavar="K",
        help="snapshot layer outputs for the PROJECTOR before training, every K steps and at the end (0: off)",
    )
    parser.add_argument(
        "--layers", type=_layer_names, default=defaults.layers, metavar="A,B,C",
        help="layers to snapshot (default: every convolution and dense layer)",
    )
    parser.add_argument("--probe-size", type=int, default=defaults.probe_size, metavar="N",
                        help="snapshot the first N test images")
    parser.add_argument(
        "--images-every", type=int, default=defaults.images_every, metavar="K",
        help="TensorBoard images (filters, feature maps, confusion matrix, misclassified, Grad-CAM) at the start, "
        "every K steps and at the end, filter patterns at the end (0: off)",
    )
    parser.add_argument("--images-samples", type=int, default=defaults.images_samples, metavar="N",
                        help="test images shown with Grad-CAM, and misclassified test images shown")
    return parser


def _layer_names(text: str) -> tuple[str, ...]:
    """`--layers conv1,fc1` -> ("conv1", "fc1")."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated layer names such as conv1,fc1, received {text!r}")
    return names


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = TrainConfig(**vars(args))
    except ValueError as error:
        parser.error(str(error))
    try:
        result = train_and_evaluate(config)
    except (FileExistsError, ValueError) as error:  # input problems: the message, no traceback
        sys.exit(f"projector-train: error: {error}")
    print(f"Final test accuracy after {result.steps} steps: {result.test_accuracy:.2%} (loss {result.test_loss:.4f})")
    print(f"Saved {result.run_dir / MODEL_FILENAME}")
    print(f"View it with: tensorboard --logdir {config.logdir}")


if __name__ == "__main__":
    main()
