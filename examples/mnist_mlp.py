"""An MLP on flattened MNIST pixels in TensorBoard's PROJECTOR, with the digits as separate thumbnails.

The model takes each digit as 784 numbers (`keras.datasets.mnist`, downloaded once), so its input is no picture;
`thumbnails=` gives the PROJECTOR the 28×28 images to draw for each point. Snapshots of both hidden layers and the
logits on 2,000 test digits, every 500 steps: watch the digits' clusters form, colour by `correct`.

    python examples/mnist_mlp.py --logdir logs
    tensorboard --logdir logs        # PROJECTOR tab, run "mnist-mlp"
"""

from __future__ import annotations

import argparse

import keras
import numpy as np

from projector_export import EmbeddingSnapshots, tensorboard_command


def load_mnist():
    """(x_train, y_train, x_test, y_test): uint8 N×28×28 images and N integer labels."""
    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    return x_train, y_train, x_test, y_test


def flatten(images: np.ndarray) -> np.ndarray:
    """N×H×W uint8 images as N×(H·W) floats in [0, 1], the MLP's input."""
    return images.reshape(len(images), -1).astype("float32") / 255


def build_model(pixels: int, classes: int = 10) -> keras.Model:
    model = keras.Sequential([
        keras.Input((pixels,), name="pixels"),
        keras.layers.Dense(128, activation="relu", name="hidden1"),
        keras.layers.Dense(64, activation="relu", name="hidden2"),
        keras.layers.Dense(classes, name="logits"),
    ], name="mnist_mlp")
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model


def main(logdir: str = "logs", *, data=None, epochs: int = 3, every: int = 500, batch_size: int = 64,
         probe_size: int = 2000, run: str = "mnist-mlp") -> keras.Model:
    """Trains for `epochs` with snapshots every `every` steps into `<logdir>/<run>`; `data` as `load_mnist`."""
    x_train, y_train, x_test, y_test = data or load_mnist()
    model = build_model(int(np.prod(x_train.shape[1:])), max(10, int(np.max(y_train)) + 1))
    probe = x_test[:probe_size]
    snapshots = EmbeddingSnapshots(flatten(probe), y_test[:probe_size], logdir, run=run, every=every,
                                   thumbnails=probe)
    model.fit(flatten(x_train), y_train, batch_size=batch_size, epochs=epochs, verbose=2, callbacks=[snapshots])
    print(tensorboard_command(logdir))
    return model


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logdir", default="logs", help="TensorBoard log directory (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs (default: %(default)s)")
    parser.add_argument("--every", type=int, default=500, help="steps between snapshots (default: %(default)s)")
    args = parser.parse_args()
    main(args.logdir, epochs=args.epochs, every=args.every)
