"""Counts inconsistent answers of a real TensorBoard polled while exports run into one run.

A TensorBoard (`tensorboard --logdir`, 127.0.0.1) serves a run while this process exports COUNT
tensors into it, each followed every 7th time by a re-export of an earlier name with another N;
READERS threads poll /runs, /info, /tensor, /metadata and /sprite_image meanwhile and check each
answer against the export that wrote it (tests/_consistency.py). Printed: rounds polled, rounds
with an inconsistent answer, exports, re-exports refused and accepted, and the first problems.

Run against another copy of the package by putting it first on PYTHONPATH (the script's own
folder comes first for `python benchmarks/...`, so the package is not shadowed by the worktree):
    python benchmarks/consistent_reads.py --readers 1 --count 120
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))

from _consistency import export_arguments, poll_during_exports  # noqa: E402
from _tensorboard_server import TensorBoardServer  # noqa: E402

from projector_export import export_embeddings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--readers", type=int, default=1)
    parser.add_argument("--count", type=int, default=120)
    args = parser.parse_args()
    import projector_export

    print(f"projector_export from {os.path.dirname(projector_export.__file__)}")
    logdir = os.path.join(tempfile.mkdtemp(prefix="consistent-reads-"), "logs")
    export_embeddings(logdir, run="r", **export_arguments(0))
    with TensorBoardServer(logdir) as server:
        while "r" not in server.get_json("/data/plugin/projector/runs"):
            time.sleep(0.5)
        start = time.monotonic()
        stats = poll_during_exports(server.url, logdir, "r", export_embeddings, first=1, count=args.count,
                                    readers=args.readers)
    print(f"readers {args.readers}, {time.monotonic() - start:.1f} s: rounds {stats['rounds']}, inconsistent "
          f"{stats['inconsistent']}, exports {stats['exports']}, re-exports refused {stats['refused']}, "
          f"accepted {stats['reexported']}")
    for problem in stats["problems"][:6]:
        print(f"  {problem[:200]}")


if __name__ == "__main__":
    main()
