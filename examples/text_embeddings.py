"""Word embeddings of a small text classifier in TensorBoard's PROJECTOR.

Trains `Embedding -> GlobalAveragePooling1D -> Dense` on IMDB movie reviews (`keras.datasets.imdb`, downloaded
once) to tell positive from negative, and snapshots during training:
- the `Embedding` layer's weights, one point per word with the word as its label: search "excellent" and
  look at its nearest neighbours;
- the pooled review representation, one point per test review, coloured by sentiment (`label`), with the
  review's first words in the `text` column.

    python examples/text_embeddings.py --logdir logs
    tensorboard --logdir logs        # PROJECTOR tab, run "text"
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import keras
import numpy as np

from projector_export import EmbeddingSnapshots, tensorboard_command

CLASS_NAMES = ("negative", "positive")
# keras.datasets.imdb's reserved ids: padding, start of a review, out of vocabulary; words start at 3.
RESERVED = ("[PAD]", "[START]", "[UNK]")


def load_imdb(vocabulary_size: int, length: int):
    """IMDB as padded token ids: (x_train, y_train, x_test, y_test, vocabulary of `vocabulary_size` words)."""
    (x_train, y_train), (x_test, y_test) = keras.datasets.imdb.load_data(num_words=vocabulary_size)
    pad = lambda x: keras.utils.pad_sequences(x, maxlen=length, padding="post", truncating="post")  # noqa: E731
    by_id = {index + len(RESERVED): word for word, index in keras.datasets.imdb.get_word_index().items()}
    vocabulary = [*RESERVED, *(by_id.get(i, "[UNK]") for i in range(len(RESERVED), vocabulary_size))]
    return pad(x_train), y_train, pad(x_test), y_test, vocabulary


def build_model(vocabulary_size: int, length: int, dimensions: int = 16) -> keras.Model:
    tokens = keras.Input((length,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(vocabulary_size, dimensions, name="words")(tokens)
    x = keras.layers.GlobalAveragePooling1D(name="review")(x)
    outputs = keras.layers.Dense(len(CLASS_NAMES), name="logits")(x)
    model = keras.Model(tokens, outputs, name="text_classifier")
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model


def main(logdir: str = "logs", *, data=None, vocabulary_size: int = 10_000, length: int = 200, epochs: int = 3,
         every: int = 500, batch_size: int = 64, probe_size: int = 1000, run: str = "text") -> keras.Model:
    """Trains for `epochs` with snapshots every `every` steps into `<logdir>/<run>`; `data` as `load_imdb` returns."""
    x_train, y_train, x_test, y_test, vocabulary = data or load_imdb(vocabulary_size, length)
    model = build_model(len(vocabulary), x_train.shape[1])
    probe, labels = x_test[:probe_size], np.asarray(y_test[:probe_size])
    text = [" ".join(vocabulary[t] for t in row[:8] if t) for row in probe]
    snapshots = EmbeddingSnapshots(probe, labels, logdir, run=run, every=every, layers=["review"],
                                   embedding_layers={"words": vocabulary}, metadata={"text": text},
                                   class_names=CLASS_NAMES)
    model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=2, callbacks=[snapshots])
    print(tensorboard_command(logdir))
    return model


def _parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logdir", default="logs", help="TensorBoard log directory (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs (default: %(default)s)")
    parser.add_argument("--every", type=int, default=500, help="steps between snapshots (default: %(default)s)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = _parse()
    main(args.logdir, epochs=args.epochs, every=args.every)
