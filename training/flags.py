"""Flags the MNIST app's commands share: which layers, which probe, and TensorFlow's own log lines."""

from __future__ import annotations

import argparse

from projector_export import DEFAULT_PROBE_SIZE, MIN_PROBE_SIZE
from projector_export.command_line import int_at_least

from .mnist import ENV_VAR

LAYOUTS_OFF = "off"
LAYOUT_CHOICES = ("umap", "tsne", LAYOUTS_OFF)


def layer_names(text: str) -> tuple[str, ...]:
    """`--layers conv1,fc1` -> ("conv1", "fc1")."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated layer names such as conv1,fc1, received {text!r}")
    return names


def add_probe_flags(parser: argparse.ArgumentParser, *, verb: str = "export") -> None:
    """`--layers`, `--data-dir` and `--probe-size`: what is snapshotted, of which MNIST test images."""
    parser.add_argument("--layers", type=layer_names, default=None, metavar="A,B,C",
                        help=f"layers to {verb} (default: every convolution and dense layer)")
    parser.add_argument("--data-dir", default=None,
                        help=f"directory with the four MNIST IDX files (default: ${ENV_VAR}, else download with Keras)")
    parser.add_argument("--probe-size", type=int_at_least(MIN_PROBE_SIZE), default=DEFAULT_PROBE_SIZE, metavar="N",
                        help=f"{verb} the first N test images (default: {DEFAULT_PROBE_SIZE})")


def add_verbose_flag(parser: argparse.ArgumentParser, dest: str = "verbose") -> None:
    """`--verbose`: TensorFlow's start-up and INFO lines, hidden by default (`tensorflow_logs`)."""
    parser.add_argument("--verbose", action="store_true", dest=dest,
                        help="show TensorFlow's own start-up and INFO log lines (hidden unless TF_CPP_MIN_LOG_LEVEL "
                        "is set)")


def add_layouts_flag(parser: argparse.ArgumentParser, default: str = "umap") -> None:
    """`--layouts {umap,tsne,off}`: the snapshots' layouts, computed by a worker process (`layouts_method`)."""
    parser.add_argument("--layouts", choices=LAYOUT_CHOICES, default=default,
                        help="lay out each snapshot as TensorBoard bookmarks (an aligned PCA and UMAP or t-SNE, then "
                        "each layer's trajectory) in a worker process at the lowest CPU priority, which the training "
                        "never waits for (off: none; projector-layouts computes them later)")


def layouts_method(layouts: str) -> str | None:
    """The `layouts` argument of `EmbeddingSnapshots` for a `--layouts` value (None: off); checks its library."""
    if layouts not in LAYOUT_CHOICES:
        raise ValueError(f"Unknown layouts {layouts!r}. Expected one of: {', '.join(LAYOUT_CHOICES)}.")
    if layouts == LAYOUTS_OFF:
        return None
    from projector_export.run_layouts import check_method

    check_method(layouts)
    return layouts
