"""`projector-export`: export .npy embeddings (with labels, metadata, images) for TensorBoard's PROJECTOR.

    projector-export --logdir DIR [--run NAME] --embedding NAME=FILE.npy [--embedding ...]
                     [--labels FILE.npy] [--metadata FILE.tsv] [--images FILE.npy] [--standalone OUT_DIR]

Every input and output is read and checked first; an input error prints one line to stderr, naming the file or
flag and the fix, and exits with `EXIT_INPUT_ERROR` (2, as argparse does) with nothing written. Whatever fails
after that is not an input error and keeps its traceback. Embeddings come from *sources*: `_SOURCES` lists the
functions that turn parsed arguments into named arrays (here: .npy files).

Its parser is the `command_line.OneLineParser` every command of the project uses.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

import numpy as np

from projector_export.command_line import OneLineParser, int_at_least
from projector_export.exporter import check_run_dir, export_embeddings
from projector_export.inputs import REDUCE_OPTIONS, check_inputs
from projector_export.metadata import STANDALONE_CONFIG_FILENAME
from projector_export.reduction import DEFAULT_PCA_COMPONENTS, PCA_THRESHOLD_DIM
from projector_export.standalone import check_base_url, export_standalone, read_standalone_config
from projector_export.validation import check_logdir, check_run_name, check_writable_dir

_PROG = "projector-export"


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog=_PROG, description="Export embeddings for TensorBoard's PROJECTOR.")
    parser.add_argument("--logdir", required=True, help="log dir that `tensorboard --logdir` opens")
    parser.add_argument("--run", default=None, help="run (folder) inside the log dir; default: the log dir itself")
    parser.add_argument("--embedding", action="append", default=[], metavar="NAME=FILE.npy",
                        help="an N×D array to export under NAME (repeatable)")
    parser.add_argument("--labels", metavar="FILE.npy", help="N labels, written as the metadata column 'label'")
    parser.add_argument("--metadata", metavar="FILE.tsv",
                        help="N rows of metadata (tab-separated; a first line with tabs is the header)")
    parser.add_argument("--images", metavar="FILE.npy",
                        help="N×H×W[×C] images (uint8, or float in [0, 1]) for the sprite")
    parser.add_argument("--dark-on-white", action="store_true",
                        help="draw the sprite inverted (MNIST: dark strokes on white)")
    parser.add_argument("--reduce", choices=REDUCE_OPTIONS, default="auto",
                        help=f"PCA: 'auto' reduces tensors wider than {PCA_THRESHOLD_DIM} (default), 'pca' always, "
                        "'none' never")
    parser.add_argument("--pca-components", type=int_at_least(1), default=DEFAULT_PCA_COMPONENTS, metavar="K",
                        help=f"principal components kept when reducing (default {DEFAULT_PCA_COMPONENTS})")
    parser.add_argument("--standalone", metavar="OUT_DIR",
                        help="also write a folder for the standalone Embedding Projector web app")
    parser.add_argument("--standalone-url", metavar="URL",
                        help="where the --standalone folder will be served; its config then holds URLs under it, "
                             "so the web app can open it from another page (docs/standalone.md)")
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
        embeddings[name] = load_npy(path, f"--embedding {name}")
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
    try:
        embeddings, options = _read_and_check(args)
    except (ValueError, TypeError, OSError) as error:  # raised by the reading and checking above only
        return parser.fail(error)
    result = export_embeddings(args.logdir, embeddings, run=args.run, **options)
    standalone = None if args.standalone is None else export_standalone(
        args.standalone, embeddings, base_url=args.standalone_url, **options)
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


def _read_and_check(args: argparse.Namespace) -> tuple[dict[str, np.ndarray], dict]:
    """Reads every input and checks it and every output as the exports will; writes nothing."""
    logdir = check_logdir(args.logdir)
    run_dir = logdir if args.run is None else os.path.join(logdir, check_run_name(args.run))
    check_writable_dir(run_dir, "--logdir")
    check_run_dir(logdir, run_dir)
    if args.standalone_url is not None and args.standalone is None:
        raise ValueError("--standalone-url names where the --standalone folder is served: give --standalone too.")
    try:
        check_base_url(args.standalone_url)
    except ValueError as e:
        raise ValueError(f"--standalone-url: {e}") from None
    if args.standalone is not None:
        check_logdir(args.standalone)
        check_writable_dir(args.standalone, "--standalone")
        read_standalone_config(os.path.join(args.standalone, STANDALONE_CONFIG_FILENAME))
    embeddings: dict[str, np.ndarray] = {}
    for source in _SOURCES:
        embeddings.update(source(args))
    if not embeddings:
        raise ValueError("No embeddings: give at least one --embedding NAME=FILE.npy.")
    images = None if args.images is None else load_npy(args.images, "--images")
    options = dict(images=images, metadata=_metadata(args), reduce=args.reduce,
                   pca_components=args.pca_components, dark_on_white=args.dark_on_white)
    check_inputs(embeddings, images=images, metadata=options["metadata"], reduce=args.reduce,
                 pca_components=args.pca_components)
    return embeddings, options


def load_npy(path: str, what: str) -> np.ndarray:
    """Reads a .npy file named by flag `what`; a file that is not one raises ValueError before any allocation.

    The header is checked against the file's size first (memory-mapped), so a header claiming more rows than the
    file holds fails at once instead of allocating them.
    """
    expected = "Expected a .npy file saved with numpy.save."
    if not os.path.isfile(path):
        problem = "it is not a regular file" if os.path.exists(path) else "there is no such file"
        raise ValueError(f"Cannot read {what} from {path!r}: {problem}. {expected}")
    if os.path.getsize(path) == 0:
        raise ValueError(f"Cannot read {what} from {path!r}: the file is empty. {expected}")
    try:
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise ValueError(f"Cannot read {what} from {path!r}: {error}. {expected}") from None
    if not isinstance(mapped, np.ndarray):  # an .npz archive
        raise ValueError(f"Cannot read {what} from {path!r}: it is an .npz archive of several arrays. {expected}")
    return np.array(mapped)


def _metadata(args: argparse.Namespace):
    columns: dict[str, list] = {}
    if args.labels is not None:
        labels = load_npy(args.labels, "--labels")
        if labels.ndim != 1:
            raise ValueError(
                f"Invalid --labels {args.labels!r}: expected N labels (1-D), received shape {labels.shape}."
            )
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
            raise ValueError(
                f"Invalid --metadata {path!r}: line {number} has {len(row)} fields, the header has {len(header)}."
            )
    return {name: [row[i] for row in rows] for i, name in enumerate(header)}


if __name__ == "__main__":
    sys.exit(main())
