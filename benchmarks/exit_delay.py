"""How long a finished `projector-train` takes to exit after its last line, over several runs.

Each run is `python -m training.train --model M --steps S` (plus any extra flags) in a subprocess started from a
checkout; the delay is the time from its last line of output to its exit. With `--before DIR` (a checkout of
another commit, e.g. `git worktree add /tmp/before <commit>`) the runs alternate between that checkout and this
one, so both see the same machine. Prints one line per run and a Markdown table: median, maximum and how many
runs took more than 5 s, for each checkout.

    MNIST_DATA_DIR=... python benchmarks/exit_delay.py --runs 10 --before /tmp/before -- --snapshot-every 0
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
SLOW_S = 5.0


def exit_delay(checkout: Path, model: str, steps: int, extra: list[str]) -> tuple[float, float, int]:
    """One run from `checkout`: (seconds from its last line to its exit, wall seconds, exit status)."""
    logdir = tempfile.mkdtemp(prefix="exit-delay-")
    start = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "training.train", "--model", model, "--steps", str(steps), "--logdir", logdir,
         "--run", "r", *extra],
        cwd=checkout, env={**os.environ, "PYTHONPATH": str(checkout)}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    last = start
    for _ in process.stdout:
        last = time.monotonic()
    process.wait()
    end = time.monotonic()
    shutil.rmtree(logdir, ignore_errors=True)
    return end - last, end - start, process.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs of each checkout")
    parser.add_argument("--model", default="lenet")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--before", type=Path, default=None, help="another checkout, run alternately")
    parser.add_argument("extra", nargs="*", help="more projector-train flags (after --)")
    args = parser.parse_args()
    checkouts = {"this checkout": HERE, **({"before": args.before.resolve()} if args.before else {})}
    delays: dict[str, list[float]] = {name: [] for name in checkouts}
    for i in range(args.runs):
        for name, checkout in (checkouts.items() if i % 2 == 0 else reversed(checkouts.items())):
            delay, wall, status = exit_delay(checkout, args.model, args.steps, args.extra)
            delays[name].append(delay)
            print(f"run {i} {name}: exit status {status}, wall {wall:.1f} s, exit delay {delay:.2f} s", flush=True)
    print("\n| checkout | runs | exit delay: median s | max s | runs over 5 s | each s |")
    print("|---|---:|---:|---:|---:|---|")
    for name, values in delays.items():
        print(f"| {name} | {len(values)} | {statistics.median(values):.1f} | {max(values):.1f} | "
              f"{sum(v > SLOW_S for v in values)} | {' '.join(f'{v:.1f}' for v in values)} |")


if __name__ == "__main__":
    main()
