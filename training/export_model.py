"""`projector-export-model`: every chosen layer of a saved Keras model on the first N MNIST test images.

    projector-export-model --model logs/<run>/model.keras --logdir logs --run NAME [--layers A,B] [--probe-size N]

Exports the layers (error-case metadata, the probe sprite and the class embedding) with the library's public
`LayerSnapshotter` (what `export_model_layers` runs), as the seeds' "restore the saved model and look at every
layer". The MNIST side (reading the test images, the probe) lives here, in the training app; the library knows
nothing of MNIST.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence

from projector_export import (
    check_logdir,
    check_run_name,
    check_writable_dir,
    tensorboard_command,
)
from projector_export.command_line import OneLineParser

from .flags import add_probe_flags, add_verbose_flag
from .mnist import load_mnist
from .tensorflow_logs import import_tensorflow_quietly

PROG = "projector-export-model"


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog=PROG, description="Export the layers of a saved Keras model on MNIST test images "
                           "for TensorBoard's PROJECTOR.")
    parser.add_argument("--model", required=True, metavar="MODEL.keras",
                        help="saved Keras model, e.g. logs/<run>/model.keras (written by projector-train)")
    parser.add_argument("--logdir", required=True, help="log dir that `tensorboard --logdir` opens")
    parser.add_argument("--run", default=None, help="run (folder) inside the log dir; default: the log dir itself")
    add_probe_flags(parser)
    add_verbose_flag(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    import_tensorflow_quietly(args.verbose)
    from projector_export import LayerSnapshotter, check_probe, take_probe

    try:
        logdir = check_logdir(args.logdir)
        run_dir = logdir if args.run is None else os.path.join(logdir, check_run_name(args.run))
        check_writable_dir(run_dir, "--logdir")
        model = _load_model(args.model)
        data = load_mnist(args.data_dir)
        images, labels = take_probe(data.test_images, data.test_labels, args.probe_size)
        input_shape = tuple(model.inputs[0].shape[1:])
        if images.shape[1:] != input_shape and images[0].size == math.prod(input_shape):
            images = images.reshape((len(images), *input_shape))  # e.g. N×28×28 for a model taking N×28×28×1
        probe = check_probe(images, labels, layers=args.layers, class_names=data.class_names)
        snapshotter = LayerSnapshotter(model, probe, logdir, run=args.run)  # checks the layers against the model
    except (ValueError, TypeError, OSError) as error:  # raised by the reading and checking above only
        return parser.fail(error)
    snapshotter.snapshot()
    print(f"wrote {', '.join(snapshotter.plan.layers)} of {args.model} on {len(images)} test images")
    print(snapshotter.table())
    print(f"view it with: {tensorboard_command(logdir)}")
    return 0


def _load_model(path: str):
    """The Keras model saved at `path`; ValueError naming `--model` when there is none."""
    import keras  # imported here: seconds to import, and --help must not wait for it

    if not os.path.isfile(path):
        raise ValueError(f"--model {path!r} is not a file; expected a model saved by Keras, e.g. "
                         f"logs/<run>/model.keras.")
    try:
        return keras.models.load_model(path)
    except (ValueError, OSError, TypeError) as error:
        raise ValueError(f"Cannot load --model {path!r}: {error}. Expected a model saved by Keras "
                         "(model.save('model.keras')).") from None


if __name__ == "__main__":
    sys.exit(main())
