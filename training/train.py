"""`projector-train`: trains a seed network on MNIST with Keras and logs one TensorBoard run.

As Flax's MNIST example, `main()` only parses flags into a `TrainConfig` and calls `train_and_evaluate`; the work
lives in importable functions: `prepare_run` checks everything once, then claims the run (one training per run:
`projector_export.run_claim`), `train_and_evaluate` writes the run and releases it. A run is ONE directory
`<logdir>/<run>/` holding the event files (scalars `train/loss`, `train/accuracy`, `test/loss`, `test/accuracy`,
`learning_rate`) and the trained `model.keras`.

To add a feature that runs during training (snapshots, images, ...): add its settings as `TrainConfig` fields,
its flags in `build_parser()` (the flag's `dest` must equal the field name), and its callback in
`build_callbacks()`, one line each; a check of its settings that needs the data or the model goes in
`prepare_run`.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from projector_export import (
    DEFAULT_IMAGES_EVERY,
    DEFAULT_PROBE_SIZE,
    DEFAULT_SNAPSHOT_EVERY,
    MIN_PROBE_SIZE,
    check_int,
    check_logdir,
    check_run_name,
    check_writable_dir,
    safe_paths,
    tensorboard_command,
)
from projector_export.command_line import EXIT_FAILURE, OneLineParser, Stopped, int_at_least, stop_on_signals
from projector_export.errors import no_space_error
from projector_export.run_claim import CLAIM_FILENAME, RunClaim, check_unclaimed, claim_run

from . import distribute
from .flags import add_layouts_flag, add_probe_flags, add_verbose_flag, layouts_method
from .mnist import MnistData, load_mnist
from .models import MODEL_NAMES
from .tensorflow_logs import import_tensorflow_quietly

# Keras and TensorFlow (seconds to import) are imported inside the functions that use them, so that
# `projector-train --help` and input errors answer at once, and the TensorFlow log level is set first.
if TYPE_CHECKING:
    import keras
    import tensorflow as tf

    from projector_export import Probe

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
    layouts: str = "umap"  # the snapshots' layouts (bookmarks), computed by a worker process: umap, tsne or off
    images_every: int = DEFAULT_IMAGES_EVERY  # the IMAGES dashboard's pictures every K steps; 0: off
    images_samples: int = 9  # test images shown with Grad-CAM, and misclassified images shown
    strategy: str = "default"  # tf.distribute: default (one device), mirrored, multi-worker (from TF_CONFIG)
    cpu_replicas: int = 0  # mirrored over this many logical CPU devices; 0: the local GPUs
    checkpoint_every: int = 0  # <run>/checkpoints/step_<NNNNNN>.keras every K steps and at the end; 0: off
    keep_checkpoints: int = 0  # how many checkpoints stay (the oldest go); 0: all

    def __post_init__(self):
        if self.model not in MODEL_NAMES:
            raise ValueError(f"Unknown model {self.model!r}. Expected one of: {', '.join(MODEL_NAMES)}.")
        for name in ("steps", "batch_size", "eval_every", "log_every", "eval_batch_size"):
            check_int(name, getattr(self, name))
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0. Received: learning_rate={self.learning_rate!r}.")
        if self.seed is not None:
            check_int("seed", self.seed, minimum=0)
        for name in ("snapshot_every", "images_every", "images_samples", "cpu_replicas", "checkpoint_every",
                     "keep_checkpoints"):
            check_int(name, getattr(self, name), minimum=0, hint="(0: off)")
        if self.snapshot_every:
            check_int("probe_size", self.probe_size, minimum=MIN_PROBE_SIZE)
        if self.run is not None:
            check_run_name(self.run)
        layouts_method(self.layouts)  # a known method, its library installed


@dataclasses.dataclass(frozen=True)
class PreparedRun:
    """A run checked and ready to train: its settings (run name decided), the data, the strategy, the model (built
    once, in the strategy's scope), the snapshots' probe and the run's claim (held until `train_and_evaluate` ends;
    the run directory holds nothing else yet)."""

    config: TrainConfig
    run_dir: Path
    data: MnistData
    chief: bool  # False: a multi-worker worker other than the chief, which writes nothing
    strategy: tf.distribute.Strategy
    model: keras.Model
    probe: Probe | None  # the snapshots' probe, checked against the model; None: no snapshots (or not the chief)
    claim: RunClaim | None = None  # this process's claim on the run (None: not the chief, which writes nothing)


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What a run produced: its directory, the final test figures, the trained model and the callbacks it ran
    (`build_callbacks`' and the caller's: e.g. the `EmbeddingSnapshots` whose `snapshotter.records` say what each
    snapshot cost)."""

    run_dir: Path
    steps: int
    test_loss: float
    test_accuracy: float
    model: keras.Model
    callbacks: tuple[keras.callbacks.Callback, ...] = ()
    chief: bool = True  # False: a multi-worker worker other than the chief, which wrote nothing


def default_run_name(model: str, now: datetime.datetime | None = None) -> str:
    return f"{model}-{(now or datetime.datetime.now()):%Y%m%d-%H%M%S}"


def prepare_run(config: TrainConfig, data: MnistData | None = None) -> PreparedRun:
    """Checks everything a run reads and writes, once, before anything is written; builds the model once; then
    claims the run (emptied first with `overwrite`): the claim is held until `train_and_evaluate` ends.

    Args:
        config: the run's settings; without a run name it gets `default_run_name` (here, once).
        data: MNIST already in memory; None to load it from `config.data_dir` (see `training.mnist`).

    Raises:
        FileExistsError: the run directory holds another run (and not `overwrite`).
        RunInUseError: another training writes the run now (`overwrite` or not).
        PermissionError: the run directory (or the log dir) is a link or another user's (`safe_paths`).
        ValueError, TypeError: a wrong setting, log dir, data file, layer name or probe size; the message names it
            and the fix.
    """
    import keras
    import tensorflow as tf

    from .models import build_model, compile_model

    config = dataclasses.replace(config, run=config.run or default_run_name(config.model))
    run_dir = Path(config.logdir) / config.run
    chief = distribute.check_strategy(config.strategy, config.cpu_replicas).is_chief
    if chief:  # a worker other than the chief writes nothing, so only the chief checks the run directory
        check_logdir(config.logdir)
        check_writable_dir(run_dir, "--logdir")
        _refuse_existing(run_dir, config.overwrite)  # before loading data: fail fast, leave nothing behind
    data = load_mnist(config.data_dir) if data is None else data
    if config.batch_size > len(data.train_images):
        raise ValueError(f"batch_size={config.batch_size} is larger than the {len(data.train_images)} training "
                         f"images; expected at most {len(data.train_images)}.")
    strategy = distribute.make_strategy(config.strategy, config.cpu_replicas)
    if config.seed is not None:
        keras.utils.set_random_seed(config.seed)
        tf.config.experimental.enable_op_determinism()
    with strategy.scope():
        model = compile_model(build_model(config.model, data.image_shape, data.num_classes), config.learning_rate)
    probe = _snapshot_probe(config, data, model) if chief and config.snapshot_every else None
    claim = _claim(config, run_dir) if chief else None
    return PreparedRun(config, run_dir, data, chief, strategy, model, probe, claim)


def _snapshot_probe(config: TrainConfig, data: MnistData, model: keras.Model) -> Probe:
    """The first `probe_size` test images, checked with the layer names against the model (`plan_snapshots`)."""
    from projector_export import check_probe, plan_snapshots, take_probe

    images, labels = take_probe(data.test_images, data.test_labels, config.probe_size)
    probe = check_probe(images, labels, layers=config.layers, class_names=data.class_names)
    plan_snapshots(model, probe)
    return probe


def build_callbacks(run: PreparedRun, writer: tf.summary.SummaryWriter) -> list[keras.callbacks.Callback]:
    """The callbacks of a run, in order. Features that run during training add one line here.

    Args:
        run: the checked run (its settings, data, model, the snapshots' probe).
        writer: the run's one `tf.summary` writer; write summaries with it so that a run has one event file.
    """
    from projector_export import EmbeddingSnapshots, ImageLogger, SharedScores

    from .callbacks import PeriodicCheckpoints, StopAtStep, TensorBoardScalars
    from .divergence import StopOnDivergence

    config, data = run.config, run.data
    where = dict(run=config.run, writer=writer)
    shared = SharedScores()  # the snapshots' forward pass of the probe, reused by the pictures on the same step
    return [
        StopOnDivergence(config.learning_rate),
        StopAtStep(config.steps),
        TensorBoardScalars(config.logdir, config.log_every, **where),
        *([EmbeddingSnapshots(run.probe, None, config.logdir, every=config.snapshot_every, total_steps=config.steps,
                              shared_scores=shared, layouts=layouts_method(config.layouts), verbose=False,
                              **where)]  # `main` prints its table, and where its layouts stand last
          if run.probe is not None else []),
        *([ImageLogger(data.test_images, data.test_labels, config.logdir, every=config.images_every,
                       grad_cam_images=config.images_samples, misclassified=config.images_samples,
                       class_names=data.class_names, batch_size=config.eval_batch_size, shared_scores=shared,
                       **where)] if config.images_every else []),
        *([PeriodicCheckpoints(config.logdir, config.checkpoint_every, run=config.run, keep=config.keep_checkpoints,
                               total_steps=config.steps)] if config.checkpoint_every else []),
    ]


def train_and_evaluate(
    run: TrainConfig | PreparedRun,
    *,
    data: MnistData | None = None,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
) -> TrainResult:
    """Trains the model for exactly `config.steps` optimizer steps and evaluates it on the test set.

    Args:
        run: the run's settings, checked here by `prepare_run`, or a run `prepare_run` has checked already.
        data: with settings, MNIST already in memory; None to load it from `config.data_dir`.
        extra_callbacks: more Keras callbacks, run after those of `build_callbacks` (benchmarks, tests).
    """
    run = prepare_run(run, data) if isinstance(run, TrainConfig) else run
    try:
        return _train(run, extra_callbacks)
    finally:
        if run.claim is not None:
            run.claim.release(every_holder=True)  # the training is over, whatever its callbacks saw


def _train(run: PreparedRun, extra_callbacks: Sequence[keras.callbacks.Callback]) -> TrainResult:
    """`train_and_evaluate` of a prepared (and, on the chief, claimed) run."""
    from projector_export.events import summary_writer

    from .callbacks import StopAtStep, save_model

    config, model = run.config, run.model
    if config.strategy != "default":
        print(distribute.describe(run.strategy, config.batch_size))
    train, test, validation_steps = _datasets(run)
    steps_per_epoch = min(config.eval_every, config.steps)
    # Only the chief writes the run; the other workers take the same steps and write nothing.
    writer = summary_writer(run.run_dir) if run.chief else None
    callbacks = (*build_callbacks(run, writer), *extra_callbacks) if writer else (StopAtStep(config.steps),)
    try:
        history = model.fit(
            train,
            epochs=math.ceil(config.steps / steps_per_epoch),
            steps_per_epoch=steps_per_epoch,
            validation_data=test,
            validation_steps=validation_steps,
            callbacks=list(callbacks),
            verbose=_verbosity(config.verbose) if run.chief else 0,
            shuffle=False,  # the data set shuffles itself
        )
    finally:
        if writer:
            writer.close()
    if run.chief:
        save_model(model, run.run_dir / MODEL_FILENAME)
    return TrainResult(
        run_dir=run.run_dir,
        steps=int(model.optimizer.iterations.numpy()),
        test_loss=float(history.history["val_loss"][-1]),
        test_accuracy=float(history.history["val_accuracy"][-1]),
        model=model,
        callbacks=callbacks,
        chief=run.chief,
    )


def _claim(config: TrainConfig, run_dir: Path) -> RunClaim:
    """Claims the run (refused if another training holds it), then empties it with `overwrite`, or refuses it if it
    holds another run's files (checked again now that the claim is held: two trainings started at once)."""
    claim = claim_run(config.logdir, config.run)
    try:
        if config.overwrite:
            claim.clear()
        elif not claim.is_empty():
            raise FileExistsError(_holds_files(run_dir))
    except BaseException:
        claim.release()
        raise
    return claim


def _refuse_existing(run_dir: Path, overwrite: bool) -> None:
    """Refuses, before any work, a run directory that is not ours to write (a link, another user's: `safe_paths`),
    one another training writes now, or (without `overwrite`) one holding another run's files."""
    if os.path.lexists(run_dir) and not os.path.islink(run_dir) and not run_dir.is_dir():
        raise FileExistsError(f"Run directory {run_dir} exists and is not a directory. Fix: choose another --run.")
    if os.path.lexists(run_dir.parent):
        safe_paths.check_logdir_folder(str(run_dir.parent))
    if not os.path.lexists(run_dir):
        return
    safe_paths.check_folder(str(run_dir))
    check_unclaimed(run_dir)
    if not overwrite and any(name != CLAIM_FILENAME for name in os.listdir(run_dir)):
        raise FileExistsError(_holds_files(run_dir))


def _holds_files(run_dir: Path) -> str:
    return (f"Run directory {run_dir} already holds files of another run; refusing to mix two runs. "
            f"Fix: choose another --run name, or pass --overwrite to delete it first.")


def _datasets(run: PreparedRun) -> tuple[tf.data.Dataset, tf.data.Dataset, int | None]:
    """The training and test datasets as `fit` takes them, and the validation steps (None: the whole test set)."""
    config, data = run.config, run.data
    train, test = _train_dataset(data, config.batch_size, config.seed), _test_dataset(data, config.eval_batch_size)
    if not distribute.is_multi_worker(run.strategy):
        return train, test, None
    distribute.prepare_multi_worker(run.model, run.strategy)
    validation_steps = math.ceil(len(data.test_images) / config.eval_batch_size)
    return (distribute.distribute_dataset(run.strategy, train),
            distribute.distribute_dataset(run.strategy, test.repeat()), validation_steps)


def _train_dataset(data: MnistData, batch_size: int, seed: int | None) -> tf.data.Dataset:
    """Shuffled, repeating batches of equal size: `steps` batches are exactly `steps` optimizer steps.

    Shuffles indices and gathers whole batches (half the input cost of shuffling image by image). Without tf.data's
    autotuning (`_without_autotune`).
    """
    import tensorflow as tf

    count = len(data.train_images)
    images, labels = tf.constant(data.train_images), tf.constant(data.train_labels)
    return (
        tf.data.Dataset.range(count)
        .shuffle(count, seed=seed, reshuffle_each_iteration=True)
        .repeat()
        .batch(batch_size, drop_remainder=True)
        .map(lambda indices: (tf.gather(images, indices), tf.gather(labels, indices)))
        .prefetch(tf.data.AUTOTUNE)
        .with_options(_without_autotune())
    )


def _test_dataset(data: MnistData, batch_size: int) -> tf.data.Dataset:
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((data.test_images, data.test_labels)).batch(batch_size)
    return dataset.with_options(_without_autotune())


def _without_autotune() -> tf.data.Options:
    """tf.data options without the autotuning model, whose thread an iterator's destructor waits for: the thread
    sleeps out its optimisation period (which grows to a minute) without seeing the iterator's cancellation, so a
    finished training took up to that long to exit. These pipelines have nothing for it to tune (no parallel map
    or interleave); `prefetch(AUTOTUNE)` still sizes its buffer itself."""
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return options


def _verbosity(verbose: int | None) -> int:
    if verbose is not None:
        return verbose
    return 1 if sys.stdout.isatty() else 2


def build_parser() -> OneLineParser:
    """Flags of `projector-train`; each `dest` is a `TrainConfig` field, defaults come from `TrainConfig`."""
    defaults = TrainConfig()
    parser = OneLineParser(
        prog="projector-train",
        description="Train a seed CNN on MNIST with Keras; log TensorBoard scalars and save model.keras.",
        formatter_class=_DefaultsOnceFormatter,
    )
    parser.add_argument("--model", choices=MODEL_NAMES, default=defaults.model, help="seed network")
    parser.add_argument("--steps", type=int_at_least(1), default=defaults.steps, help="optimizer steps (batches)")
    parser.add_argument("--batch-size", type=int_at_least(1), default=defaults.batch_size,
                        help="training images per optimizer step")
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate, help="Adam's learning rate")
    parser.add_argument("--seed", type=int_at_least(0), default=defaults.seed,
                        help="make the run repeatable (default: a different run each time)")
    parser.add_argument("--logdir", default=defaults.logdir, help="TensorBoard log directory")
    parser.add_argument("--run", default=defaults.run, help="run name (default: <model>-<YYYYmmdd-HHMMSS>)")
    parser.add_argument("--eval-every", type=int_at_least(1), default=defaults.eval_every,
                        help="test evaluation period, steps")
    parser.add_argument("--log-every", type=int_at_least(1), default=defaults.log_every,
                        help="train scalars period, steps")
    parser.add_argument("--overwrite", action="store_true", help="delete an existing non-empty run directory")
    parser.add_argument(
        "--snapshot-every", type=int_at_least(0, "(0: off)"), default=defaults.snapshot_every, metavar="K",
        help="snapshot layer outputs for the PROJECTOR before training, every K steps and at the end (0: off)",
    )
    add_probe_flags(parser, verb="snapshot")
    add_layouts_flag(parser, default=defaults.layouts)
    parser.add_argument(
        "--images-every", type=int_at_least(0, "(0: off)"), default=defaults.images_every, metavar="K",
        help="TensorBoard images (filters, feature maps, confusion matrix, misclassified, Grad-CAM) at the start, "
        "every K steps and at the end, filter patterns at the end (0: off)",
    )
    parser.add_argument("--images-samples", type=int_at_least(0), default=defaults.images_samples, metavar="N",
                        help="test images shown with Grad-CAM, and misclassified test images shown")
    parser.add_argument("--strategy", choices=distribute.STRATEGIES, default=defaults.strategy, metavar="STRATEGY",
                        help="the tf.distribute strategy: default (one device), mirrored (the local GPUs, or "
                        "--cpu-replicas), multi-worker (the cluster in $TF_CONFIG; only the chief writes the run)")
    parser.add_argument("--cpu-replicas", type=int_at_least(0), default=defaults.cpu_replicas, metavar="N",
                        help="with --strategy mirrored: N logical CPU devices instead of the GPUs (0: GPUs)")
    parser.add_argument("--checkpoint-every", type=int_at_least(0, "(0: off)"), default=defaults.checkpoint_every,
                        metavar="K", help="save <run>/checkpoints/step_<NNNNNN>.keras every K steps and at the end, "
                        "for projector-watch (0: off)")
    parser.add_argument("--keep-checkpoints", type=int_at_least(0), default=defaults.keep_checkpoints, metavar="N",
                        help="keep the N newest checkpoints (0: all)")
    add_verbose_flag(parser, dest=_VERBOSE)
    return parser


class _DefaultsOnceFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds "(default: ...)" to a flag's help unless the help already says its default, or there is none."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        if "default" in help_text or action.default in (None, False, argparse.SUPPRESS):
            return help_text
        return super()._get_help_string(action)


# The --verbose flag's `dest`: a setting of the process (TensorFlow's log lines), not of the run.
_VERBOSE = "verbose_tensorflow"


def main(argv: Sequence[str] | None = None) -> int:
    """`projector-train`: parses the flags and calls `train_and_evaluate`. Input errors (found by `prepare_run`,
    before anything is written) and a diverging training are one line on stderr and exit status 2; a full disk one
    line and exit status 1; Ctrl-C or SIGTERM one line and exit status 130 or 143 (the run keeps what was written
    until then, and is released)."""
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    import_tensorflow_quietly(args.pop(_VERBOSE))
    from projector_export import EmbeddingSnapshots
    from projector_export.run_layouts import layout_status

    with stop_on_signals():
        try:
            run = prepare_run(TrainConfig(**args))
        except (ValueError, TypeError, OSError) as error:  # raised by the checks only: input problems
            sys.exit(parser.fail(error))
        except Stopped as stop:
            print(f"{parser.prog}: stopped by {stop.what} before training began; nothing was written.", file=sys.stderr)
            return stop.exit_status
        result = _train_or_explain(parser, run)
    if isinstance(result, int):
        return result
    snapshots = next((c for c in result.callbacks if isinstance(c, EmbeddingSnapshots)), None)
    if snapshots is not None:
        print(snapshots.snapshotter.table())
    print(f"Final test accuracy after {result.steps} steps: {result.test_accuracy:.2%} (loss {result.test_loss:.4f})")
    if not result.chief:
        print(f"This worker wrote nothing: the chief writes {result.run_dir}")
        return 0
    print(f"Saved {result.run_dir / MODEL_FILENAME}")
    print(f"View it with: {tensorboard_command(run.config.logdir)}")
    if snapshots is not None and snapshots.layout_status is not None:  # where they stand now: done, or who and how
        print(layout_status(snapshots.logdir, snapshots.run).message())
    return 0


def _train_or_explain(parser: OneLineParser, run: PreparedRun) -> TrainResult | int:
    """`train_and_evaluate(run)`, or the exit status after one line on stderr saying why it stopped."""
    from .divergence import TrainingDiverged

    try:
        return train_and_evaluate(run)
    except TrainingDiverged as error:  # a consequence of the settings (the learning rate): one line too
        sys.exit(parser.fail(error))
    except Stopped as stop:
        print(f"{parser.prog}: stopped by {stop.what} {_progress(run)}; {run.run_dir} keeps what was written until "
              f"then. View it with: {tensorboard_command(run.config.logdir)}", file=sys.stderr)
        return stop.exit_status
    except Exception as error:  # a full disk, whichever write found it (the exporter, Keras, tf.summary)
        outcome = (f"the training stopped {_progress(run)}; what the run held before is intact and the failed "
                   "write's files were removed. Free some space there, then train again (--overwrite), or into a log "
                   "dir on another disk.")
        no_space = no_space_error(error, str(run.run_dir), outcome)
        if no_space is None:
            raise
        print(f"{parser.prog}: error: {no_space}", file=sys.stderr)
        return EXIT_FAILURE


def _progress(run: PreparedRun) -> str:
    """"after step 140 of 300" (the optimizer's step), and whether model.keras was saved."""
    saved = "" if (run.run_dir / MODEL_FILENAME).exists() else f", {MODEL_FILENAME} not saved"
    return f"after step {int(run.model.optimizer.iterations.numpy())} of {run.config.steps}{saved}"


if __name__ == "__main__":
    sys.exit(main())
