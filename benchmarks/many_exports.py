"""Benchmark: 1,100 exports into one run (a long training's snapshots), with and without shard compaction.

Each export adds one tensor of --rows × --dim (the same images and metadata, so the sprite and the
metadata are written once). Printed for each mode:
  1. export wall time at exports 1, 100, 500, 1,000 and the last: the median and the mean of the 50
     exports up to it (the mean includes the compacting exports, so it is the amortised cost);
  2. data shards of the run's current bundle and files in its assets folder;
  3. file descriptors TensorBoard's projector plugin (in-process, as TensorBoard serves it) holds
     open after serving every tensor of the run once.
"Without compaction" sets `checkpoint.MAX_SHARDS` beyond the export count: every export then keeps
adding a shard, as the exporter did before compaction.

Run:  python benchmarks/many_exports.py [--exports 1100] [--rows 1000] [--dim 16]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import tempfile
import time

import numpy as np

from projector_export import checkpoint, export_embeddings
from projector_export.metadata import ASSETS_DIRNAME

_MARKS = (1, 100, 500, 1000)
_WINDOW = 50


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _plugin_fds(logdir: str, run: str, names: list[str]) -> int:
    """Open file descriptors added by TensorBoard's projector plugin serving every tensor of `run` once."""
    from tensorboard.backend import application
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.projector import projector_plugin
    from werkzeug import test as werkzeug_test
    from werkzeug import wrappers

    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(logdir)
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, logdir)
    plugin = projector_plugin.ProjectorPlugin(
        base_plugin.TBContext(logdir=logdir, data_provider=provider, multiplexer=multiplexer))
    client = werkzeug_test.Client(application.TensorBoardWSGI([plugin]), wrappers.Response)
    before = _open_fds()
    for name in names:
        response = client.get(f"/data/plugin/projector/tensor?run={run}&name={name}")
        if response.status_code != 200:
            return -1  # e.g. "Too many open files"
    return _open_fds() - before


def run_mode(exports: int, rows: int, dim: int, compaction: bool) -> None:
    checkpoint.MAX_SHARDS = checkpoint.MAX_SHARDS if compaction else exports + 1
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(rows, 8, 8), dtype=np.uint8)
    labels = list(rng.integers(0, 10, size=rows))
    logdir = tempfile.mkdtemp(prefix="many-exports-")
    times, names = [], []
    try:
        for i in range(1, exports + 1):
            name = f"layer/step_{i:06d}"
            tensor = rng.standard_normal((rows, dim)).astype(np.float32)
            start = time.perf_counter()
            result = export_embeddings(logdir, {name: tensor}, run="r", images=images, metadata={"label": labels})
            times.append(time.perf_counter() - start)
            names.append(name)
        label = f"with compaction (MAX_SHARDS={checkpoint.MAX_SHARDS})" if compaction else "without compaction"
        print(f"\n{label}: {exports} exports of {rows}×{dim}")
        for mark in (*_MARKS, exports):
            if mark > exports:
                continue
            window = times[max(0, mark - _WINDOW):mark]
            print(f"  export {mark:>5}: median {statistics.median(window) * 1e3:7.1f} ms, "
                  f"mean {statistics.fmean(window) * 1e3:7.1f} ms (of exports {max(1, mark - _WINDOW + 1)}..{mark})")
        assets = os.listdir(os.path.join(logdir, "r", ASSETS_DIRNAME))
        print(f"  data shards of the current bundle: {checkpoint.shard_count(result.checkpoint_prefix)}, "
              f"files in the assets folder: {len(assets)}")
        print(f"  file descriptors TensorBoard's projector holds after serving all {len(names)} tensors: "
              f"{_plugin_fds(logdir, 'r', names)}", flush=True)
    finally:
        shutil.rmtree(logdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--exports", type=int, default=1100)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=16)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # Room to count the descriptors of the uncompacted run (TensorBoard's default limit is the user's).
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(f"open-file limit raised from {soft} to {hard} for the measurement", flush=True)
    for compaction in (True, False):
        run_mode(args.exports, args.rows, args.dim, compaction)


if __name__ == "__main__":
    main()
