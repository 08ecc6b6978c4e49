"""Benchmark: projector_export.export_embeddings vs tensorboardX's add_embedding, side by side.

N = 10,000 MNIST test images (the sprite) with their labels (the metadata). The embeddings are
deterministic stand-ins for layer activations of width D: ReLU(images · W) with a fixed random
W (784 × D), which, like real activations, are non-negative and of low effective rank.

Printed (medians of --repeats; every repeat writes into a fresh directory):
  1. export wall time (and CPU time of all threads, which a busy machine inflates less), bytes
     written, ours vs tensorboardX, and the speed-up (wall time);
  2. time from starting a fresh `tensorboard` until it serves the PROJECTOR's /runs and the tensor,
     next to when it serves its own /data/runs (its start-up);
  3. incremental exports into one run: the cost of export 1 ... 20 (it must not grow);
  4. share of variance kept by our PCA (default settings) vs the exact top components.

Run (tensorboardX is the `bench` extra):  python -m benchmarks.export_bench
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings

import numpy as np

from projector_export import DEFAULT_PCA_COMPONENTS, export_embeddings
from training.mnist import load_mnist

_SEED = 0


def features(images: np.ndarray, width: int) -> np.ndarray:
    flat = images.reshape(len(images), -1).astype(np.float32) / 255.0
    weights = np.random.default_rng(_SEED).standard_normal((flat.shape[1], width), dtype=np.float32)
    return np.maximum(flat @ (weights / np.sqrt(flat.shape[1])), 0.0)


def export_ours(logdir: str, x: np.ndarray, images: np.ndarray, labels: np.ndarray) -> None:
    export_embeddings(logdir, {"features": x}, run="run", images=images, metadata=labels)


def export_tensorboardx(logdir: str, x: np.ndarray, images: np.ndarray, labels: np.ndarray) -> None:
    from tensorboardX import SummaryWriter

    writer = SummaryWriter(os.path.join(logdir, "run"))
    # tensorboardX wants N×C×H×W images in [0, 1] and a list of labels.
    writer.add_embedding(x, metadata=labels.tolist(), label_img=images[:, None].astype(np.float32) / 255.0,
                         tag="features")
    writer.close()


def timed_exports(exporter, x, images, labels, repeats: int, keep: list[str]) -> tuple[float, float]:
    """Median wall-clock seconds and median CPU seconds (all threads) of `repeats` exports."""
    wall, cpu = [], []
    for _ in range(repeats):
        logdir = tempfile.mkdtemp(prefix="export-bench-")
        start, start_cpu = time.perf_counter(), time.process_time()
        exporter(logdir, x, images, labels)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        keep.append(logdir)
    return statistics.median(wall), statistics.median(cpu)


def folder_bytes(path: str) -> int:
    """Bytes on disk under `path`, each file counted once however many hard links it has."""
    sizes = {}
    for root, _, files in os.walk(path):
        for name in files:
            stat = os.stat(os.path.join(root, name))
            sizes[(stat.st_dev, stat.st_ino)] = stat.st_size
    return sum(sizes.values())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=120) as response:
            return response.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def tensorboard_times(logdir: str, timeout: float = 180.0) -> tuple[float, float, float]:
    """Seconds from launching `tensorboard` until it serves /data/runs, the PROJECTOR's /runs, and the tensor."""
    import json

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    tensorboard = shutil.which("tensorboard", path=os.path.dirname(sys.executable)) or "tensorboard"
    start = time.perf_counter()
    proc = subprocess.Popen([tensorboard, "--logdir", logdir, "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        t_core = t_runs = None
        while time.perf_counter() - start < timeout:
            if t_core is None and _get(f"{base}/data/runs") is not None:
                t_core = time.perf_counter() - start
            if t_core is not None:
                body = _get(f"{base}/data/plugin/projector/runs")
                if body and json.loads(body):
                    t_runs = time.perf_counter() - start
                    break
            time.sleep(0.05)
        if t_runs is None:
            raise RuntimeError(f"TensorBoard did not list a PROJECTOR run for {logdir} within {timeout} s")
        info = json.loads(_get(f"{base}/data/plugin/projector/info?run=run"))
        name = info["embeddings"][0]["tensorName"]
        query = urllib.parse.urlencode({"run": "run", "name": name})
        if _get(f"{base}/data/plugin/projector/tensor?{query}") is None:
            raise RuntimeError(f"TensorBoard did not serve tensor {name!r} of {logdir}")
        return t_core, t_runs, time.perf_counter() - start
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def incremental(logdir: str, x: np.ndarray, images: np.ndarray, labels: np.ndarray, count: int) -> list[float]:
    times = []
    for step in range(1, count + 1):
        start = time.perf_counter()
        export_embeddings(logdir, {f"features/step_{step:06d}": x}, run="run", images=images, metadata=labels)
        times.append(time.perf_counter() - start)
    return times


def exact_explained_variance(x: np.ndarray, k: int) -> float:
    centered = x.astype(np.float64) - x.mean(axis=0, dtype=np.float64)
    eigenvalues = np.linalg.eigvalsh(centered.T @ centered)[::-1]
    return float(eigenvalues[:k].sum() / eigenvalues.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None,
                        help="MNIST directory (default: $MNIST_DATA_DIR, else Keras' cache)")
    parser.add_argument("--dims", type=int, nargs="+", default=[10, 1024, 3136])
    parser.add_argument("--repeats", type=int, default=3, help="repeats of our export per D")
    parser.add_argument("--tbx-repeats", type=int, default=3, help="repeats of tensorboardX's export per D")
    parser.add_argument("--no-tensorboard", action="store_true", help="skip the TensorBoard start-up timings")
    parser.add_argument("--incremental", type=int, default=20, help="exports into one run (0 to skip)")
    parser.add_argument("--pca-reference", action="store_true", help="also compute the exact PCA variance (slow)")
    args = parser.parse_args()

    mnist = load_mnist(args.data_dir)
    images, labels = mnist.test_images, mnist.test_labels
    print(f"N = {len(images)} MNIST test images {images.shape[1:]}, numpy {np.__version__}, "
          f"{os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f}")
    # Warm-up: import TensorFlow and tensorboardX once, outside the timings.
    warm = tempfile.mkdtemp(prefix="export-bench-warm-")
    export_ours(warm, features(images[:20], 4), images[:20], labels[:20])
    export_tensorboardx(warm + "x", features(images[:20], 4), images[:20], labels[:20])
    shutil.rmtree(warm, ignore_errors=True)
    shutil.rmtree(warm + "x", ignore_errors=True)

    print("\n| D | ours: export s (CPU s) | tensorboardX: export s (CPU s) | speed-up | ours: MB | tensorboardX: MB |"
          " TB /data/runs s (ours / tbX) | PROJECTOR /runs s (ours / tbX) | tensor served s (ours / tbX) | load |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for width in args.dims:
        x = features(images, width)
        keep_ours, keep_tbx = [], []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours, ours_cpu = timed_exports(export_ours, x, images, labels, args.repeats, keep_ours)
            tbx, tbx_cpu = timed_exports(export_tensorboardx, x, images, labels, args.tbx_repeats, keep_tbx)
        mb_ours, mb_tbx = folder_bytes(keep_ours[0]) / 1e6, folder_bytes(keep_tbx[0]) / 1e6
        tb = ["n/a"] * 3
        if not args.no_tensorboard:
            a, b = tensorboard_times(keep_ours[0]), tensorboard_times(keep_tbx[0])
            tb = [f"{a[i]:.1f} / {b[i]:.1f}" for i in range(3)]
        print(f"| {width} | {ours:.3f} ({ours_cpu:.3f}) | {tbx:.3f} ({tbx_cpu:.3f}) | {tbx / ours:.0f}× | "
              f"{mb_ours:.1f} | {mb_tbx:.1f} | "
              + " | ".join(tb) + f" | {os.getloadavg()[0]:.1f} |", flush=True)
        for path in keep_ours + keep_tbx:
            shutil.rmtree(path, ignore_errors=True)

    if args.incremental:
        x = features(images, DEFAULT_PCA_COMPONENTS)
        logdir = tempfile.mkdtemp(prefix="export-bench-incr-")
        times = incremental(logdir, x, images, labels, args.incremental)
        print(f"\nIncremental: {args.incremental} exports of a {x.shape[0]}×{x.shape[1]} tensor into one run "
              f"(same images and labels), load average {os.getloadavg()[0]:.1f}")
        print("| export # | " + " | ".join(str(i) for i in range(1, len(times) + 1)) + " |")
        print("|---" * (len(times) + 1) + "|")
        print("| seconds | " + " | ".join(f"{t:.3f}" for t in times) + " |")
        print(f"median of exports 2-6: {statistics.median(times[1:6]):.3f} s, "
              f"of the last 5: {statistics.median(times[-5:]):.3f} s; run folder {folder_bytes(logdir) / 1e6:.1f} MB")
        if not args.no_tensorboard:
            core, runs, tensor = tensorboard_times(logdir)
            print(f"fresh TensorBoard on that run ({args.incremental} tensors): /data/runs {core:.1f} s, "
                  f"PROJECTOR /runs {runs:.1f} s, first tensor {tensor:.1f} s")
        shutil.rmtree(logdir, ignore_errors=True)

    print(f"\nPCA kept by default (top {DEFAULT_PCA_COMPONENTS} components):")
    from projector_export.reduction import PCA_THRESHOLD_DIM, pca

    for width in args.dims:
        if width <= PCA_THRESHOLD_DIM:
            continue
        x = features(images, width)
        start = time.perf_counter()
        result = pca(x, DEFAULT_PCA_COMPONENTS)
        seconds = time.perf_counter() - start
        line = f"D={width}: {result.explained_variance_ratio:.2%} of the variance ({result.method}, {seconds:.3f} s)"
        if args.pca_reference:
            line += f"; exact top {DEFAULT_PCA_COMPONENTS}: {exact_explained_variance(x, DEFAULT_PCA_COMPONENTS):.2%}"
        print(line)


if __name__ == "__main__":
    main()
