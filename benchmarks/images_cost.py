"""What `ImageLogger` costs a `projector-train` run, measured beside the training it rides on.

Builds the `tutorial` CNN on real MNIST and, in one process, alternating, measures (medians of repeats):
  - one periodic log (filters, feature maps, confusion matrix + table, misclassified, Grad-CAM) on the
    whole test set, and its biggest part, predicting the test set;
  - the end-of-training filter patterns (30 gradient-ascent steps for every filter of every conv layer);
  - training `--images-every` steps (default 2000) of batch 64 with plain `model.fit`.
Prints the seconds and the overhead ratio (one log / the training between two logs). It calls the
callback's private steps directly so each part is timed alone.

Usage:
    MNIST_DATA_DIR=/path/to/mnist python -m benchmarks.images_cost [--every 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from projector_export.images import ImageLogger
from training.mnist import load_mnist
from training.models import build_model, compile_model


def _seconds(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def _patterns(logger: ImageLogger) -> None:
    with logger._get_writer().as_default(step=0):
        logger._log_filter_patterns()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--every", type=int, default=2000, help="training steps between two logs")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    data = load_mnist()
    model = compile_model(build_model("tutorial", data.image_shape, data.num_classes), 1e-4)
    x, y = data.train_images[: args.every * 64], data.train_labels[: args.every * 64]
    model.fit(x[:64], y[:64], batch_size=64, epochs=1, verbose=0)  # build the optimizer and train function
    with tempfile.TemporaryDirectory() as logdir:
        logger = ImageLogger(data.test_images, data.test_labels, logdir, every=args.every,
                             class_names=data.class_names)
        logger.set_model(model)
        logger.on_begin(0)  # the model checks and the feature-map extractor, as when training begins
        logger._log(0)  # warm up (first calls trace functions)
        times = {"log": [], "predict": [], "patterns": [], "train": []}
        for _ in range(args.repeats):
            times["log"].append(_seconds(lambda: logger._log(0)))
            times["predict"].append(_seconds(logger._probabilities))
            times["patterns"].append(_seconds(lambda: _patterns(logger)))
            times["train"].append(_seconds(lambda: model.fit(x, y, batch_size=64, epochs=1, verbose=0)))
        logger.writer.close()
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"test images: {len(data.test_images)}, repeats: {args.repeats} (medians)")
    print(f"one periodic log:        {median['log']:.2f} s  "
          f"(of which predicting the test set {median['predict']:.2f} s)")
    print(f"filter patterns (once):  {median['patterns']:.2f} s")
    print(f"training {args.every} steps:     {median['train']:.2f} s")
    print(f"overhead of --images-every {args.every}: {median['log'] / median['train']:.1%} of training time")


if __name__ == "__main__":
    main()
