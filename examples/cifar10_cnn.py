"""A small CNN's layers on CIFAR-10 in TensorBoard's PROJECTOR, with the colour images as thumbnails.

Trains a two-block CNN on CIFAR-10 (`keras.datasets.cifar10`, downloaded once) and snapshots every convolution
and dense layer on 1,000 test images during training. The images are the model's input (uint8, scaled inside the
model), so they are also the sprite: each point is drawn as its own 32×32 RGB picture. Colour by `label`, or
search `cat→dog` in the `error` column to see which cats the network takes for dogs.

    python examples/cifar10_cnn.py --logdir logs
    tensorboard --logdir logs        # PROJECTOR tab, run "cifar10"
"""

from __future__ import annotations

import argparse

import keras
import numpy as np

from projector_export import EmbeddingSnapshots, tensorboard_command

CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def load_cifar10():
    """(x_train, y_train, x_test, y_test): uint8 N×32×32×3 images and N integer labels."""
    (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
    return x_train, y_train.ravel(), x_test, y_test.ravel()


def build_model(image_shape: tuple[int, ...], classes: int = len(CLASS_NAMES)) -> keras.Model:
    images = keras.Input(image_shape, dtype="uint8", name="images")
    x = keras.layers.Rescaling(1 / 255, name="scale")(images)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv1")(x)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool2")(x)
    x = keras.layers.Dense(64, activation="relu", name="fc1")(x)
    outputs = keras.layers.Dense(classes, name="logits")(x)
    model = keras.Model(images, outputs, name="cifar10_cnn")
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model


def main(logdir: str = "logs", *, data=None, epochs: int = 5, every: int = 1000, batch_size: int = 64,
         probe_size: int = 1000, run: str = "cifar10") -> keras.Model:
    """Trains for `epochs` with snapshots every `every` steps into `<logdir>/<run>`; `data` as `load_cifar10`."""
    x_train, y_train, x_test, y_test = data or load_cifar10()
    model = build_model(x_train.shape[1:], max(len(CLASS_NAMES), int(np.max(y_train)) + 1))
    snapshots = EmbeddingSnapshots(x_test[:probe_size], y_test[:probe_size], logdir, run=run, every=every,
                                   class_names=CLASS_NAMES)
    model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=2, callbacks=[snapshots])
    print(tensorboard_command(logdir))
    return model


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logdir", default="logs", help="TensorBoard log directory (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=5, help="training epochs (default: %(default)s)")
    parser.add_argument("--every", type=int, default=1000, help="steps between snapshots (default: %(default)s)")
    args = parser.parse_args()
    main(args.logdir, epochs=args.epochs, every=args.every)
