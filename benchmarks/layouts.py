"""What the layouts cost and how good they are, on real layer outputs of a short MNIST training.

  cost     per method (UMAP, t-SNE) and row count: a fresh process each time (alternating methods, median of
           `--repeats`): import seconds, the first step's layout (from scratch, with UMAP's one-time compilation),
           the next step's layout continuing it (wall and CPU seconds), the 10-NN label accuracy of the last layout
           against the layer's own k-NN separability, and the alignment (raw / Procrustes-optimal disparity);
  served   a training's snapshots fed to the layout worker (`LayoutFeed`, idle priority) while this process
           exports them: seconds from each export to TensorBoard's projector serving its bookmarks, and from the
           end of the "training" to the last ones served;
  browser  TensorBoard's own t-SNE in headless Chromium, run to as many iterations as openTSNE's on the same
           tensor, against openTSNE and UMAP here (wall seconds and their ratio);
  sizes    what each library adds to an install (the packages its requirements bring beyond ours);
  train    whole `projector-train` runs with the default layouts (their worker at idle priority) and with
           `--layouts off`, alternating: the training process's wall and CPU seconds (the worker is not its to
           wait for), and for the default, the seconds from the training's exit to every snapshot laid out and
           the trajectories built;
  neighbours  UMAP's neighbourhood and packing (`n_neighbors`, `min_dist`) against the layout's purpose: a short
           `tutorial` training's snapshots (steps 0, 50, 100) of each `--probe-size`, laid out step after step as
           the worker does, for several seeds: the last layout's 10-NN label accuracy over the layer's separability.

    MNIST_DATA_DIR=... python -m benchmarks.layouts cost --rows 5000 50000 --repeats 3
    MNIST_DATA_DIR=... python -m benchmarks.layouts served --rows 5000
    MNIST_DATA_DIR=... python -m benchmarks.layouts browser --rows 5000
    python -m benchmarks.layouts sizes
    MNIST_DATA_DIR=... python -m benchmarks.layouts train --model tutorial --steps 300 --pairs 2
    MNIST_DATA_DIR=... python -m benchmarks.layouts neighbours --probe-size 500 1000

Layer outputs are cached in `--cache` (a training and a forward pass over up to 50,000 images, minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata

import numpy as np

from benchmarks._layer_outputs import layer_outputs

STEPS = (100, 300)  # snapshot steps of the short training: the first layout, then the one continuing it
BIG_LAYERS = ("conv2", "fc1")
SERVED_LAYERS = ("conv1", "conv2", "fc1", "logits")  # a default lenet snapshot's layers
EVAL_ROWS = 10_000  # the 10-NN accuracies of more rows are measured on the first 10,000 (exact k-NN is N²)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _one(method: str, rows: int, layer: str, cache: str) -> dict:
    """One fresh process's measurement (run as `_one`): import, first layout, continuing layout, quality."""
    data = layer_outputs(cache, layers=BIG_LAYERS, snapshot_steps=STEPS)
    from projector_export import knn_separability
    from projector_export.layouts import compute_layouts, disparity

    wall, cpu = time.perf_counter(), _cpu()
    __import__({"umap": "umap", "tsne": "openTSNE"}[method])
    out = {"import_wall": time.perf_counter() - wall, "import_cpu": _cpu() - cpu}
    previous = None
    for step, phase in zip(STEPS, ("first", "next"), strict=True):
        x = data[f"{layer}/step_{step:06d}"][:rows]
        wall, cpu = time.perf_counter(), _cpu()
        _, layouts = compute_layouts(x, previous, method=method, continues=STEPS[0] if previous else None)
        out[f"{phase}_wall"], out[f"{phase}_cpu"] = time.perf_counter() - wall, _cpu() - cpu
        layout = layouts[-1].coordinates
        if previous:
            out["disparity_ratio"] = disparity(layout, previous[method]) / disparity(layout, previous[method],
                                                                                     rotate=True)
        previous = {item.layout: item.coordinates for item in layouts}
    labels = data["labels"][: min(rows, EVAL_ROWS)]
    out["layout_10nn"] = knn_separability(layout[: len(labels)], labels, k=10)
    out["layer_separability"] = knn_separability(x[: len(labels)], labels)
    return out


def cost(args) -> None:
    layer_outputs(args.cache, layers=BIG_LAYERS, snapshot_steps=STEPS)  # computed once, before any timing
    results: dict[tuple[str, int], list[dict]] = {}
    for _ in range(args.repeats):
        for rows in args.rows:
            for method in args.methods:
                done = subprocess.run([sys.executable, "-m", "benchmarks.layouts", "_one", method, str(rows),
                                       args.layer, "--cache", args.cache], capture_output=True, text=True)
                if done.returncode:
                    raise RuntimeError(done.stderr[-3000:])
                results.setdefault((method, rows), []).append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"Layouts of `{args.layer}` (lenet, {len(STEPS)} snapshot steps), median of {args.repeats} fresh "
          f"processes; wall / CPU seconds")
    print("| method | rows | import | first step (from scratch) | next step (continuing) | 10-NN layout / layer "
          "| disparity raw/optimal |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for (method, rows), runs in results.items():
        m = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        print(f"| {method} | {rows:,} | {m['import_wall']:.1f} / {m['import_cpu']:.1f} | {m['first_wall']:.1f} / "
              f"{m['first_cpu']:.1f} | {m['next_wall']:.1f} / {m['next_cpu']:.1f} | {m['layout_10nn']:.3f} / "
              f"{m['layer_separability']:.3f} ({m['layout_10nn'] / m['layer_separability']:.2f}×) | "
              f"{m['disparity_ratio']:.3f} |")


def served(args) -> None:
    """Exports the snapshot steps (every layer at once, as a snapshot does) with a worker fed as a training feeds
    it, while a thread polls TensorBoard's projector (in-process, as `tests/_projector_client`) for each step's
    bookmarks."""
    import threading

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
    from _projector_client import ProjectorClient

    from projector_export import export_embeddings
    from projector_export.layout_worker import LayoutFeed

    steps = (0, 300, 1500)
    data = layer_outputs(args.served_cache, layers=SERVED_LAYERS, snapshot_steps=steps, rows=args.rows)
    metadata_columns = {"label": [str(v) for v in data["labels"]]}
    logdir = tempfile.mkdtemp(prefix="layouts-served-")
    feed = LayoutFeed(logdir, "r", method=args.method)
    exported, served_at, done = {}, {}, threading.Event()

    def poll() -> None:
        client = None
        while not done.is_set() and len(served_at) < len(steps):
            if exported:
                client = client or ProjectorClient(logdir)
                entries = client.info("r")["embeddings"]
                for step in set(exported) - set(served_at):
                    mine = [e for e in entries if e["tensorName"].endswith(f"/step_{step:06d}")]
                    if mine and all(e.get("bookmarksPath") for e in mine):
                        served_at[step] = time.perf_counter()
            time.sleep(0.2)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    for step in steps:
        names = {f"{layer}/step_{step:06d}": data[f"{layer}/step_{step:06d}"] for layer in SERVED_LAYERS}
        export_embeddings(logdir, names, run="r", metadata=metadata_columns)
        exported[step] = time.perf_counter()
        feed.snapshot_written()
        if step != steps[-1]:
            time.sleep(args.pause)  # the training between two snapshots
    ended = time.perf_counter()  # the training's last snapshot is its end
    print(feed.training_ended().message())
    poller.join(args.timeout)
    done.set()
    feed.wait(args.timeout)
    worker = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"{len(SERVED_LAYERS)} layers × {args.rows:,} rows, {args.method}, {args.pause:.0f} s between snapshots "
          f"(this process idle meanwhile); the worker used {worker.ru_utime + worker.ru_stime:.1f} CPU seconds, "
          f"trajectories included")
    print("| snapshot step | export → served (s) |")
    print("|---:|---:|")
    for step in steps:
        print(f"| {step} | {served_at[step] - exported[step]:.1f} |" if step in served_at else f"| {step} | - |")
    if len(served_at) == len(steps):
        print(f"Last snapshot's layouts served {max(served_at.values()) - ended:.1f} s after the end of training.")


def browser(args) -> None:
    """TensorBoard's t-SNE on the same tensor in Chromium, timed to `iterations`; openTSNE and UMAP here."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
    from _browser import VIEWPORT, ProjectorPage, launch_chromium
    from _tensorboard_server import TensorBoardServer
    from playwright.sync_api import sync_playwright

    from projector_export import export_embeddings
    from projector_export.layouts import compute_layouts

    data = layer_outputs(args.cache, layers=BIG_LAYERS, snapshot_steps=STEPS)
    x = data[f"{args.layer}/step_{STEPS[-1]:06d}"][: args.rows]
    ours = {}
    for method in ("tsne", "umap"):
        compute_layouts(x, method=method)  # imports and UMAP's compilation, outside the timing
        wall = time.perf_counter()
        compute_layouts(x, method=method)
        ours[method] = time.perf_counter() - wall
    logdir = tempfile.mkdtemp(prefix="layouts-browser-")
    export_embeddings(logdir, {"t": x}, run="r", metadata={"label": [str(v) for v in data["labels"][: args.rows]]})
    with TensorBoardServer(logdir) as server, sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        page = ProjectorPage(chromium.new_page(viewport=VIEWPORT), server.url, timeout_ms=3_600_000)
        wall = time.perf_counter()
        page.project("tsne", tsne_iterations=args.iterations)
        theirs = time.perf_counter() - wall
        chromium.close()
    print(f"{args.rows:,} rows of `{args.layer}`, {args.iterations} t-SNE iterations (openTSNE's default: 750); "
          f"wall seconds")
    print("| TensorBoard's t-SNE in Chromium | openTSNE | UMAP | ratio TensorBoard / openTSNE | TensorBoard / UMAP |")
    print("|---:|---:|---:|---:|---:|")
    print(f"| {theirs:.1f} | {ours['tsne']:.1f} | {ours['umap']:.1f} | {theirs / ours['tsne']:.1f} | "
          f"{theirs / ours['umap']:.1f} |")


def sizes(args) -> None:
    """Bytes on disk of the distributions each layout library brings beyond projector-export's other requirements."""
    def closure(names: list[str]) -> set[str]:
        seen, todo = set(), list(names)
        while todo:
            name = todo.pop().lower().replace("_", "-")
            if name in seen:
                continue
            try:
                dist = metadata.distribution(name)
            except metadata.PackageNotFoundError:
                continue
            seen.add(name)
            for requirement in dist.requires or []:
                if "extra ==" not in requirement:
                    todo.append(requirement.split(";")[0].split("[")[0].split(">")[0].split("<")[0].split("=")[0]
                                .split("!")[0].split("~")[0].strip())
        return seen

    base = closure(["tensorflow-cpu", "tensorflow", "keras", "tensorboard", "numpy", "pillow", "threadpoolctl"])
    for library in ("umap-learn", "openTSNE"):
        added = sorted(closure([library]) - base)
        total = sum(sum(f.size or 0 for f in metadata.distribution(name).files or []) for name in added)
        print(f"{library}: {total / 1e6:.0f} MB in {len(added)} distributions ({', '.join(added)})")


def wait_for_layouts(logdir: str, run: str, timeout: float = 1800.0) -> tuple[float, float]:
    """Seconds from now until every tensor of `run` has its layouts (served: published in the run's config), and
    until its worker has also built the trajectories and exited."""
    from projector_export.run_layouts import layout_status

    start, laid_out = time.perf_counter(), None
    while True:
        status = layout_status(logdir, run)
        if laid_out is None and not status.pending:
            laid_out = time.perf_counter() - start
        if laid_out is not None and status.worker is None:
            return laid_out, time.perf_counter() - start
        if time.perf_counter() - start > timeout:
            raise RuntimeError(f"{run}: not laid out {timeout:.0f} s after the training: {status.message()}")
        time.sleep(0.25)


def train(args) -> None:
    """`projector-train` with and without its layouts, alternating; the default's layouts waited for after it."""
    rows = {"umap": [], "off": []}
    with tempfile.TemporaryDirectory() as logdir:
        for pair in range(args.pairs):
            for layouts in ("umap", "off"):
                run = f"{layouts}-{pair}"
                before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
                _projector_train(logdir, run, args.model, args.steps, args.every, args.probe_size, layouts)
                wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
                after = wait_for_layouts(logdir, run)[1] if layouts != "off" else 0.0
                rows[layouts].append((wall, cpu, after))
    print(f"projector-train --model {args.model} --steps {args.steps} --snapshot-every {args.every} --probe-size "
          f"{args.probe_size} --images-every 0, {args.pairs} alternating pairs (medians)\n")
    print("| --layouts | training wall s | training CPU s | exit → every layout and trajectory |\n|---|---:|---:|---:|")
    for layouts, values in rows.items():
        wall, cpu, after = (statistics.median(column) for column in zip(*values, strict=True))
        print(f"| {layouts} | {wall:.1f} | {cpu:.1f} | {'-' if layouts == 'off' else f'{after:.1f} s'} |")


def _projector_train(logdir: str, run: str, model: str, steps: int, every: int, probe_size: int,
                     layouts: str, *flags: str) -> None:
    """A `projector-train` run without pictures (seed 0), in a subprocess; `flags`: more of its flags."""
    subprocess.run([sys.executable, "-m", "training.train", "--model", model, "--steps", str(steps),
                    "--snapshot-every", str(every), "--probe-size", str(probe_size), "--images-every", "0",
                    "--seed", "0", "--logdir", logdir, "--run", run, "--layouts", layouts, *flags],
                   check=True, capture_output=True)


NEIGHBOURS_SETTINGS = ((15, 0.1), (15, 0.0), (10, 0.1), (10, 0.0))  # umap-learn's defaults first
NEIGHBOURS_STEPS = (0, 50, 100)


def neighbours(args) -> None:
    """Per probe size and (n_neighbors, min_dist): the lowest and mean ratio over seeds, per layer."""
    from projector_export import layouts as lay

    print("| rows | n_neighbors, min_dist | " + " | ".join(SERVED_LAYERS) + " |\n|---|---|"
          + "---:|" * len(SERVED_LAYERS))
    kept = lay.UMAP_NEIGHBORS, lay.UMAP_MIN_DIST
    with tempfile.TemporaryDirectory() as logdir:
        for rows in args.probe_size:
            steps, labels, separability = _young_snapshots(logdir, rows)
            try:
                for setting in NEIGHBOURS_SETTINGS:
                    lay.UMAP_NEIGHBORS, lay.UMAP_MIN_DIST = setting
                    cells = []
                    for layer in SERVED_LAYERS:
                        ratios = [_last_layout_10nn(steps[layer], labels, seed) / separability[layer]
                                  for seed in range(args.seeds)]
                        cells.append(f"{min(ratios):.3f} ({statistics.mean(ratios):.3f})")
                    print(f"| {rows:,} | {setting[0]}, {setting[1]} | " + " | ".join(cells) + " |", flush=True)
            finally:
                lay.UMAP_NEIGHBORS, lay.UMAP_MIN_DIST = kept
    print(f"\n(Lowest of {args.seeds} seeds, mean in brackets: the last layout's 10-NN label accuracy over the "
          "layer's separability.)")


def _young_snapshots(logdir: str, rows: int) -> tuple[dict[str, list[np.ndarray]], np.ndarray, dict[str, float]]:
    """A 100-step `tutorial` run's snapshots of `rows` probe images: each layer's tensors at NEIGHBOURS_STEPS, the
    probe's labels and each layer's separability at the last step."""
    from projector_export import checkpoint, knn_separability
    from projector_export import config as config_lib
    from projector_export.naming import snapshot_name
    from projector_export.run_layouts import metadata_columns

    run = f"probe-{rows}"
    _projector_train(logdir, run, "tutorial", NEIGHBOURS_STEPS[-1], NEIGHBOURS_STEPS[1], rows, "off",
                     "--eval-every", str(NEIGHBOURS_STEPS[1]))
    run_dir = os.path.join(logdir, run)
    config = config_lib.read_config(run_dir)
    reader = checkpoint.reader(checkpoint.current_prefix(run_dir, config.model_checkpoint_path))
    steps = {layer: [reader.get_tensor(snapshot_name(layer, step, digits=6)) for step in NEIGHBOURS_STEPS]
             for layer in SERVED_LAYERS}
    last = snapshot_name(SERVED_LAYERS[0], NEIGHBOURS_STEPS[-1], digits=6)
    labels = np.asarray(metadata_columns(run_dir, next(e for e in config.embeddings if e.tensor_name == last))
                        ["label"]).astype(int)
    return steps, labels, {layer: knn_separability(x[-1], labels) for layer, x in steps.items()}


def _last_layout_10nn(steps: list[np.ndarray], labels: np.ndarray, seed: int) -> float:
    """The 10-NN label accuracy of the last of `steps` laid out one after the other, as the worker does."""
    from projector_export import knn_separability
    from projector_export.layouts import compute_layouts

    previous = None
    for x in steps:
        _, layouts = compute_layouts(x, previous, seed=seed)
        previous = {item.layout: item.coordinates for item in layouts}
    return knn_separability(previous["umap"], labels, k=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    default_cache = os.path.join(tempfile.gettempdir(), "projector-layouts-bench.npz")
    for name in ("cost", "served", "browser", "sizes", "train", "neighbours", "_one"):
        p = sub.add_parser(name)
        p.add_argument("--cache", default=default_cache)
        p.add_argument("--served-cache", default=default_cache.replace(".npz", "-served.npz"))
        p.add_argument("--layer", default="fc1", choices=BIG_LAYERS)
        if name == "_one":
            p.add_argument("method")
            p.add_argument("one_rows", type=int)
            p.add_argument("one_layer")
    sub.choices["cost"].add_argument("--rows", type=int, nargs="+", default=[5000, 50_000])
    sub.choices["cost"].add_argument("--methods", nargs="+", default=["umap", "tsne"])
    sub.choices["cost"].add_argument("--repeats", type=int, default=3)
    sub.choices["served"].add_argument("--rows", type=int, default=5000)
    sub.choices["served"].add_argument("--method", default="umap")
    sub.choices["served"].add_argument("--pause", type=float, default=20.0)
    sub.choices["served"].add_argument("--timeout", type=float, default=1800.0)
    sub.choices["browser"].add_argument("--rows", type=int, default=5000)
    sub.choices["browser"].add_argument("--iterations", type=int, default=750)
    sub.choices["train"].add_argument("--model", default="tutorial")
    sub.choices["train"].add_argument("--steps", type=int, default=300)
    sub.choices["train"].add_argument("--every", type=int, default=100)
    sub.choices["train"].add_argument("--probe-size", type=int, default=1000)
    sub.choices["train"].add_argument("--pairs", type=int, default=2)
    sub.choices["neighbours"].add_argument("--probe-size", type=int, nargs="+", default=[500, 1000])
    sub.choices["neighbours"].add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    if args.command == "_one":
        print(json.dumps(_one(args.method, args.one_rows, args.one_layer, args.cache)))
        return
    {"cost": cost, "served": served, "browser": browser, "sizes": sizes, "train": train,
     "neighbours": neighbours}[args.command](args)


if __name__ == "__main__":
    main()
