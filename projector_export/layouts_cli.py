"""`projector-layouts`: compute the PCA and UMAP layouts (bookmarks) of a run's tensors, e.g. one copied from a cluster.

    projector-layouts --logdir DIR [--run NAME] [--wait] [--recompute] [--method umap|tsne] [--status]

Lays out every tensor of the run that has no layouts yet, the steps of each layer in order (each continuing the
previous step's), publishes them as the tensors' bookmarks, then builds each layer's `<layer>/trajectory`. When
another process is computing the run's layouts (a training's worker), it says which and exits with status 1;
`--wait` waits for that process, then computes whatever is left. `--status` only says where the layouts stand.
Ctrl-C or a kill leaves the run as it was after the last step published.

`--follow` (used by `LayoutFeed`, not by people) runs the training's worker: one line on stdin per snapshot
written, end of input when the training ended.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from projector_export.command_line import OneLineParser

_PROG = "projector-layouts"
EXIT_BUSY = 1
EXIT_INTERRUPTED = 130


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog=_PROG, description=__doc__.split("\n\n")[0].split(": ", 1)[1],
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--logdir", required=True, help="the TensorBoard log directory")
    parser.add_argument("--run", default=None, help="the run inside --logdir (default: the log dir itself)")
    parser.add_argument("--wait", action="store_true",
                        help="if another process is computing this run's layouts, wait for it, then do what is left")
    parser.add_argument("--recompute", action="store_true", help="lay out every tensor again, not only new ones")
    parser.add_argument("--method", choices=("umap", "tsne"), default="umap",
                        help="the non-linear layout beside the PCA (docs/layouts.md says why UMAP by default)")
    parser.add_argument("--no-trajectories", dest="trajectories", action="store_false",
                        help="do not build the <layer>/trajectory tensors")
    parser.add_argument("--status", action="store_true", help="only say which tensors still lack layouts, and why")
    parser.add_argument("--follow", action="store_true", help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.follow:
        from projector_export.layout_worker import run_worker

        return run_worker(args.logdir, args.run, method=args.method, trajectories=args.trajectories)
    from projector_export import run_layouts

    try:
        if args.status:
            print(run_layouts.layout_status(args.logdir, args.run).message())
            return 0
        report = run_layouts.compute_run_layouts(args.logdir, args.run, method=args.method,
                                                 recompute=args.recompute, wait=args.wait, progress=print,
                                                 command=_PROG)
        if args.trajectories:
            from projector_export.trajectories import build_trajectories

            for name, outcome in build_trajectories(args.logdir, args.run).items():
                print(f"{name}: {outcome}")
    except run_layouts.LayoutsBusy as busy:
        print(f"{_PROG}: {busy} (or pass --wait)", file=sys.stderr)
        return EXIT_BUSY
    except (TypeError, ValueError) as error:
        return parser.fail(error)
    except KeyboardInterrupt:
        print(f"{_PROG}: interrupted; the layouts published so far are kept. Run it again for the rest.",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    for name, note in report.notes.items():
        print(f"{name}: {note}")
    print(f"{len(report.computed)} tensors laid out in {report.seconds:.1f} s.")
    print(run_layouts.layout_status(args.logdir, args.run).message())
    return 0


if __name__ == "__main__":
    sys.exit(main())
