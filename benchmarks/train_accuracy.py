"""Seed 001's accuracy table with `projector-train`'s training path, and its speed beside plain `model.fit`.

1. Trains the `tutorial` CNN at seed 001's settings (batch 64, Adam 1e-4) for 10,000 steps through
   `train_and_evaluate` (what `projector-train --model tutorial --steps 10000` runs) and prints the test
   accuracy after 1, 100, 1,000 and 10,000 optimizer steps beside seed 001's figures.
2. Measures training images/second of that path (tf.data pipeline, scalar callbacks) and of a plain
   `model.fit(images, labels)` of the same model, alternating, in the same process; prints medians and their ratio.

Usage:
    MNIST_DATA_DIR=/path/to/mnist python -m benchmarks.train_accuracy [--seed 0] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import keras
import numpy as np

from training.mnist import MnistData, load_mnist
from training.models import build_model, compile_model
from training.train import TrainConfig, train_and_evaluate

# Seed 001 (TensorFlow tutorial 02, convolutional network): test accuracy after this many iterations.
SEED_001_ACCURACY = {1: 0.130, 100: 0.666, 1_000: 0.931, 10_000: 0.988}
SEED_001_SETTINGS = dict(model="tutorial", batch_size=64, learning_rate=1e-4)
# The optional features (layer snapshots, images) are off: this measures the training path itself.
FEATURES_OFF = dict(snapshot_every=0, images_every=0)


class _TestAccuracyAt(keras.callbacks.Callback):
    """Test accuracy after the given optimizer steps, with `predict` (leaves fit's metrics alone)."""

    def __init__(self, data: MnistData, steps: set[int]):
        super().__init__()
        self._data, self._steps, self._done = data, steps, 0
        self.accuracy: dict[int, float] = {}

    def on_train_batch_end(self, batch, logs=None):
        self._done += 1
        if self._done in self._steps:
            logits = self.model.predict(self._data.test_images, batch_size=1000, verbose=0)
            self.accuracy[self._done] = float(np.mean(logits.argmax(axis=1) == self._data.test_labels))


class _StepTimer(keras.callbacks.Callback):
    """Wall and process CPU time of the training steps after `warmup` steps, up to the end of the last batch.

    On a shared machine the CPU time of this process (all its threads) is the steadier of the two.
    """

    def __init__(self, warmup: int):
        super().__init__()
        self._warmup, self._done = warmup, 0
        self._start = self._end = (0.0, 0.0)

    def on_train_batch_end(self, batch, logs=None):
        self._done += 1
        self._end = (time.perf_counter(), time.process_time())
        if self._done == self._warmup:
            self._start = self._end

    def images_per_second(self, batch_size: int) -> tuple[float, float]:
        """(images per wall-clock second, images per CPU second)."""
        images = (self._done - self._warmup) * batch_size
        return images / (self._end[0] - self._start[0]), images / (self._end[1] - self._start[1])


def accuracy_table(data: MnistData, seed: int, logdir: str) -> tuple[dict[int, float], float]:
    steps = max(SEED_001_ACCURACY)
    probe = _TestAccuracyAt(data, set(SEED_001_ACCURACY))
    config = TrainConfig(
        **SEED_001_SETTINGS, **FEATURES_OFF, steps=steps, seed=seed, logdir=logdir, run="accuracy", verbose=0
    )
    result = train_and_evaluate(config, data=data, extra_callbacks=[probe])
    return probe.accuracy, result.test_accuracy


def throughput(data: MnistData, steps: int, warmup: int, repeats: int, logdir: str) -> tuple[list, list]:
    """(wall, CPU) images/s of `train_and_evaluate` and of plain `model.fit`, in the order AB BA AB ... (drift)."""
    batch_size = SEED_001_SETTINGS["batch_size"]

    def ours(repeat: int) -> tuple[float, float]:
        timer = _StepTimer(warmup)
        config = TrainConfig(
            **SEED_001_SETTINGS, **FEATURES_OFF, steps=steps, eval_every=steps, logdir=logdir,
            run=f"speed-{repeat}", verbose=0,
        )
        train_and_evaluate(config, data=data, extra_callbacks=[timer])
        return timer.images_per_second(batch_size)

    def plain(repeat: int) -> tuple[float, float]:
        timer = _StepTimer(warmup)
        model = compile_model(
            build_model(SEED_001_SETTINGS["model"], data.image_shape, data.num_classes),
            SEED_001_SETTINGS["learning_rate"],
        )
        model.fit(
            data.train_images, data.train_labels, batch_size=batch_size, epochs=1, steps_per_epoch=steps,
            validation_data=(data.test_images, data.test_labels), shuffle=True, callbacks=[timer], verbose=0,
        )
        return timer.images_per_second(batch_size)

    results: dict = {ours: [], plain: []}
    for repeat in range(repeats):
        for measure in (ours, plain) if repeat % 2 == 0 else (plain, ours):
            results[measure].append(measure(repeat))
    return results[ours], results[plain]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None, help="MNIST directory (default: $MNIST_DATA_DIR or download)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--speed-steps", type=int, default=500, help="steps per throughput measurement")
    parser.add_argument("--warmup", type=int, default=50, help="steps left out of each throughput measurement")
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--part", choices=("all", "accuracy", "speed"), default="all")
    args = parser.parse_args()
    data = load_mnist(args.data_dir, require_official=True)
    with tempfile.TemporaryDirectory() as logdir:
        # Throughput first: the seeded accuracy run turns on TensorFlow's (process-wide) op determinism.
        if args.part in ("all", "speed"):
            ours, plain = throughput(data, args.speed_steps, args.warmup, args.repeats, logdir)
            for index, unit in enumerate(("images/s (wall clock)", "images per CPU second")):
                a, b = [x[index] for x in ours], [x[index] for x in plain]
                print(
                    f"training {unit}, median of {args.repeats} x {args.speed_steps} steps (first {args.warmup} "
                    f"left out): projector-train {statistics.median(a):,.0f}, plain model.fit "
                    f"{statistics.median(b):,.0f}, ratio {statistics.median(a) / statistics.median(b):.2f}  "
                    f"(runs {[round(x) for x in a]} vs {[round(x) for x in b]})"
                )
        if args.part in ("all", "accuracy"):
            accuracy, final = accuracy_table(data, args.seed, logdir)
            print(f"tutorial CNN, batch 64, Adam 1e-4, seed {args.seed}: test accuracy after N optimizer steps")
            print("| steps | seed 001 | projector-train |")
            print("|------:|---------:|----------------:|")
            for steps, expected in SEED_001_ACCURACY.items():
                print(f"| {steps:,} | {expected:.1%} | {accuracy[steps]:.1%} |")
            print(f"final evaluation of train_and_evaluate after {max(SEED_001_ACCURACY):,} steps: {final:.2%}")


if __name__ == "__main__":
    main()
