"""`projector-watch`: a sidecar that exports PROJECTOR snapshots from a training's checkpoints, on MNIST.

It follows `<logdir>/<run>/checkpoints/step_<N>.keras` (`projector-train --checkpoint-every K`, or any training
that saves such files) and exports, for each checkpoint in step order, the chosen layers on the first
`--probe-size` test images as `<layer>/step_<N>`, with the same metadata, class embedding and `separability/<layer>`
scalars as the in-training snapshots, into the same run. The training pays nothing for the snapshots. It waits for
the run and its checkpoints to appear, skips the steps the run already holds (restartable), skips a checkpoint Keras
cannot load (until it changes), exports a run replaced by a new training anew, and stops at `--until-step` or once
the training's final `model.keras` exists and every checkpoint is exported. Ctrl-C or SIGTERM stops it with one line
saying what it exported (exit status 130 or 143).

Example (beside a running `projector-train --run r1 --checkpoint-every 500 --snapshot-every 0`):
    projector-watch --logdir logs --run r1 --layers conv2,fc1 --probe-size 1000
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

from projector_export.command_line import OneLineParser, Stopped, int_at_least, stop_on_signals

from .flags import add_layouts_flag, add_probe_flags, add_verbose_flag, layouts_method
from .tensorflow_logs import import_tensorflow_quietly
from .train import MODEL_FILENAME

DEFAULT_POLL_SECONDS = 5.0


def watch(
    logdir: str,
    run: str,
    *,
    layers: Sequence[str] | None = None,
    probe_size: int | None = None,
    data_dir: str | None = None,
    poll_seconds: float = DEFAULT_POLL_SECONDS,
    until_step: int | None = None,
    exported: list[int] | None = None,
    layouts: str = "umap",
) -> list[int]:
    """Exports every checkpoint of `<logdir>/<run>` not exported yet, laid out as `layouts` says (`--layouts`);
    returns the steps exported by this call (also appended to `exported` as they are, when given)."""
    from projector_export import DEFAULT_PROBE_SIZE, check_probe, snapshot_checkpoints, take_probe

    from .mnist import load_mnist

    method = layouts_method(layouts)
    data = load_mnist(data_dir)
    images, labels = take_probe(data.test_images, data.test_labels, probe_size or DEFAULT_PROBE_SIZE)
    probe = check_probe(images, labels, layers=layers, class_names=data.class_names)
    return snapshot_checkpoints(logdir, run, probe, finished=(Path(logdir) / run / MODEL_FILENAME).exists,
                                until_step=until_step, poll_seconds=poll_seconds, exported=exported,
                                layouts=method)


def build_parser() -> OneLineParser:
    parser = OneLineParser(
        prog="projector-watch",
        description="Export PROJECTOR snapshots of MNIST test images from a training's checkpoints "
        "(<logdir>/<run>/checkpoints/step_<N>.keras), as they appear.",
    )
    parser.add_argument("--logdir", required=True, help="TensorBoard log directory of the training")
    parser.add_argument("--run", required=True, help="the training's run name inside the log directory")
    add_probe_flags(parser)
    add_layouts_flag(parser)
    add_verbose_flag(parser)
    parser.add_argument("--poll-seconds", type=float, default=DEFAULT_POLL_SECONDS, metavar="S",
                        help=f"seconds between two looks at the checkpoints folder (default: {DEFAULT_POLL_SECONDS:g})")
    parser.add_argument("--until-step", type=int_at_least(0), default=None, metavar="N",
                        help="stop once a checkpoint at step N or later exists (default: when the training's "
                        "model.keras exists and every checkpoint is exported)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.poll_seconds > 0:
        parser.error(f"--poll-seconds must be > 0, received {args.poll_seconds}")
    import_tensorflow_quietly(args.verbose)
    from projector_export import tensorboard_command

    start, steps = time.monotonic(), []
    with stop_on_signals():
        try:
            watch(args.logdir, args.run, layers=args.layers, probe_size=args.probe_size, data_dir=args.data_dir,
                  poll_seconds=args.poll_seconds, until_step=args.until_step, exported=steps,
                  layouts=args.layouts)
        except (ValueError, TypeError, OSError) as error:  # unknown layer, probe size, MNIST files: one line
            sys.exit(parser.fail(error))
        except Stopped as stop:
            print(f"{parser.prog}: stopped by {stop.what}: {_exported(steps, start)}; a step cut short is exported "
                  f"again by the next projector-watch. View them with: {tensorboard_command(args.logdir)}",
                  file=sys.stderr)
            return stop.exit_status
    print(f"{_exported(steps, start).capitalize()}. View them with: {tensorboard_command(args.logdir)}")
    return 0


def _exported(steps: list[int], start: float) -> str:
    """"exported 2 checkpoint(s) (steps 10, 20) in 14 s"."""
    which = f" (steps {', '.join(map(str, steps))})" if steps else ""
    return f"exported {len(steps)} checkpoint(s){which} in {time.monotonic() - start:.0f} s"


if __name__ == "__main__":
    sys.exit(main())
