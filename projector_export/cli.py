"""`projector-export`: export .npy embeddings (with labels, metadata, images) for TensorBoard's PROJECTOR.

    projector-export --logdir DIR [--run NAME] --embedding NAME=FILE.npy [--embedding ...]
                     [--labels FILE.npy] [--metadata FILE.tsv] [--images FILE.npy] [--standalone OUT_DIR]

Errors print one line to stderr and exit with status 2. Embeddings come from *sources*:
`_SOURCES` lists the functions that turn parsed arguments into named arrays (here: .npy
files); another source (e.g. a Keras model's layers) is one more function and its flags.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

import numpy as np

from projector_export.exporter import export_embeddings
from projector_export.inputs import REDUCE_OPTIONS
from projector_export.reduction import DEFAULT_PCA_COMPONENTS, PCA_THRESHOLD_DIM
from projector_export.standalone import export_standalone

_PROG = "projector-export"


class _OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (no usage block), exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog=_PROG, description="Export embeddings for TensorBoard's PROJECTOR.")
    parser.add_argument("--logdir", required=True, help="log dir that `tensorboard --logdir` opens")
    parser.add_argument("--run", default=None, help="run (folder) inside the log dir; default: the log dir itself")
    parser.add_argument("--embedding", action="append", default=[], metavar="NAME=FILE.npy",
                        help="an N×D array to export under NAME (repeatable)")
    parser.add_argument("--labels", metavar="FILE.npy", help="N labels, written as the metadata column 'label'")
    parser.add_argument("--metadata", metavar="FILE.tsv",
                        help="N rows of metadata (tab-separated; a first line with tabs is the header)")
    parser.add_argument("--images", metavar="FILE.npy", help="N×H×W[×C] images (uint8, or float in [0, 1]) for the sprite")
    parser.add_argument("--dark-on-white", action="store_true", help="draw the sprite inverted (MNIST: dark strokes on white)")
    parser.add_argument("--reduce", choices=REDUCE_OPTIONS, default="auto",
                        help=f"PCA: 'auto' reduces tensors wider than {PCA_THRESHOLD_DIM} (default), 'pca' always, 'none' never")
    parser.add_argument("--pca-components", type=int, default=DEFAULT_PCA_COMPONENTS,
                        help=f"principal components kept when reducing (default {DEFAULT_PCA_COMPONENTS})")
    parser.add_argument("--standalone", metavar="OUT_DIR",
                        help="also write a folder for the standalone Embedding Projector web app")
    model = parser.add_argument_group("a trained Keras model's layers on the MNIST test images (instead of --embedding)")
    model.add_argument("--model", metavar="MODEL.keras", help="saved Keras model, e.g. logs/<run>/model.keras")
    model.add_argument("--layers", metavar="A,B,C", help="layers to export (default: every convolution and dense layer)")
    model.add_argument("--data-dir", help="directory with the four MNIST IDX files (default: $MNIST_DATA_DIR, else download)")
    model.add_argument("--probe-size", type=int, metavar="N",
                       help="export the first N test images (default: 5000, as projector-train snapshots)")
    return parser


def embeddings_from_files(args: argparse.Namespace) -> dict[str, np.ndarray]:
    """The `--embedding NAME=FILE.npy` source."""
    embeddings = {}
    for spec in args.embedding:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"Invalid --embedding {spec!r}: expected NAME=FILE.npy, e.g. conv2=conv2.npy.")
        if name in embeddings:
            raise ValueError(f"Invalid --embedding {spec!r}: the name {name!r} is given twice.")
        embeddings[name] = _load_npy(path, f"--embedding {name}")
    return embeddings


# Functions that each turn parsed arguments into named N×D arrays; their results are merged.
_SOURCES: list[Callable[[argparse.Namespace], dict[str, np.ndarray]]] = [embeddings_from_files]


def main(argv: Sequence[str] | None = None) -> int:
    # TensorFlow (imported lazily, when the checkpoint is written) would otherwise log start-up
    # notices to stderr, which is reserved for the one-line error here. oneDNN only speeds up
    # compute kernels, which the export (checkpoint I/O) does not use.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.model is not None:
        return export_model(args)
    try:
        embeddings: dict[str, np.ndarray] = {}
        for source in _SOURCES:
            embeddings.update(source(args))
        if not embeddings:
            raise ValueError("No embeddings: give at least one --embedding NAME=FILE.npy.")
        images = None if args.images is None else _load_npy(args.images, "--images")
        metadata = _metadata(args)
        options = dict(images=images, metadata=metadata, reduce=args.reduce,
                       pca_components=args.pca_components, dark_on_white=args.dark_on_white)
        result = export_embeddings(args.logdir, embeddings, run=args.run, **options)
        standalone = None if args.standalone is None else export_standalone(args.standalone, embeddings, **options)
    except (ValueError, TypeError, OSError) as e:
        message = " ".join(str(e).split())  # one line, whatever the exception text holds
        print(f"{_PROG}: error: {message}", file=sys.stderr)
        return 2
    for tensor in result.tensors:
        reduced = ("" if tensor.explained_variance_ratio is None else
                   f" (PCA of {tensor.input_shape[1]} dims, {tensor.explained_variance_ratio:.1%} of the variance)")
        print(f"wrote {tensor.name}: {tensor.shape[0]}×{tensor.shape[1]}{reduced}")
    if result.rows_shown < result.tensors[0].shape[0]:
        print(f"the PROJECTOR shows the first {result.rows_shown:,} of {result.tensors[0].shape[0]:,} rows")
    print(f"run directory: {result.run_dir}")
    for label, path in (("sprite", result.sprite_path), ("metadata", result.metadata_path)):
        if path:
            print(f"{label}: {path}")
    if standalone is not None:
        print(f"standalone projector config: {standalone.config_path}")
    print(f"view it with: {result.tensorboard_command}")
    return 0


def export_model(args: argparse.Namespace) -> int:
    """The `--model MODEL.keras [--layers A,B] [--data-dir DIR] [--probe-size N]` mode: every chosen layer of a
    saved model on the first N MNIST test images, with error-case metadata, the sprite and the class embedding."""
    if args.embedding or args.labels or args.metadata or args.images or args.standalone:
        print(f"{_PROG}: error: --model exports the model's own layers, labels and images; it cannot be combined "
              f"with --embedding, --labels, --metadata, --images or --standalone.", file=sys.stderr)
        return 2
    import keras  # imported here: seconds to import, needed only in this mode

    from projector_export.snapshots import DEFAULT_PROBE_SIZE, export_model_layers, take_probe
    from training.mnist import load_mnist

    try:
        if not os.path.isfile(args.model):
            raise ValueError(f"--model {args.model!r} is not a file; expected a model saved by Keras, e.g. "
                             f"logs/<run>/model.keras.")
        model = keras.models.load_model(args.model)
        layers = None if args.layers is None else [name.strip() for name in args.layers.split(",") if name.strip()]
        data = load_mnist(args.data_dir)
        images, labels = take_probe(data.test_images, data.test_labels, args.probe_size or DEFAULT_PROBE_SIZE)
        input_shape = tuple(model.inputs[0].shape[1:])
        if images.shape[1:] != input_shape and images[0].size == np.prod(input_shape):
            images = images.reshape((len(images), *input_shape))  # e.g. N×28×28 for a model taking N×28×28×1
        snapshotter = export_model_layers(model, images, labels, args.logdir, run=args.run, layers=layers,
                                          class_names=data.class_names)
    except (ValueError, TypeError, OSError) as e:
        print(f"{_PROG}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    print(f"wrote {', '.join(snapshotter.layers)} of {args.model} on {len(images)} test images")
    print(snapshotter.table())
    print(f"view it with: tensorboard --logdir {args.logdir}")
    return 0


def _load_npy(path: str, what: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"Cannot read {what} from {path!r}: {e}. Expected a .npy file saved with numpy.save.") from None


def _metadata(args: argparse.Namespace):
    columns: dict[str, list] = {}
    if args.labels is not None:
        labels = _load_npy(args.labels, "--labels")
        if labels.ndim != 1:
            raise ValueError(f"Invalid --labels {args.labels!r}: expected N labels (1-D), received shape {labels.shape}.")
        columns["label"] = labels.tolist()
    if args.metadata is not None:
        tsv_columns = _read_tsv(args.metadata)
        if len(tsv_columns) == 1 and None in tsv_columns:
            values = tsv_columns[None]
            if not columns:
                return values  # a single column stays a single, header-less column
            tsv_columns = {"metadata": values}
        for name, values in tsv_columns.items():
            if name in columns:
                raise ValueError(f"Invalid --metadata {args.metadata!r}: column {name!r} is also given by --labels.")
            columns[name] = values
    return columns or None


def _read_tsv(path: str) -> dict[str | None, list[str]]:
    """Columns of a metadata TSV as TensorBoard reads it: a header only if the first line has a tab."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"Cannot read --metadata from {path!r}: {e}. Expected a UTF-8 text file.") from None
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise ValueError(f"Invalid --metadata {path!r}: the file is empty, expected one row per example.")
    if "\t" not in lines[0]:
        return {None: lines}
    header = lines[0].split("\t")
    rows = [line.split("\t") for line in lines[1:]]
    for number, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise ValueError(f"Invalid --metadata {path!r}: line {number} has {len(row)} fields, the header has {len(header)}.")
    return {name: [row[i] for row in rows] for i, name in enumerate(header)}
