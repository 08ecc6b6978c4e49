"""Frame times and data sizes of the layers dashboard: LAYERS panels × ROWS points played over STEPS steps.

Builds a log dir of LAYERS layers × STEPS snapshot steps × ROWS rows (16 columns, 10 classes, 8×8 thumbnails),
each tensor with a 3-D PCA and a 2-D UMAP layout (synthetic coordinates: classes drifting apart over the steps)
published as bookmarks, serves it with a real `tensorboard`, opens the dashboard in headless Chromium and prints:

- sizes: a bookmarks file (on disk and gzipped, as TensorBoard sends it to the PROJECTOR), one layout's
  coordinates as the dashboard's /coordinates route sends them (float32), the metadata, the run's listing;
- server: the first /layouts of a tensor (the bookmarks file parsed) and a repeated one (cached), /coordinates;
- page, in Chromium compositing on SwiftShader (as the tests run it) and in its software compositor: seconds from
  opening the tab to the panels drawn (the first opening has the server read every bookmarks file); while it
  plays every step (REPEATS times): the time one frame's drawing takes (`performance.measure('layers-frame')`,
  main thread) and the interval between animation frames while the points move (16.7 ms at 60 Hz); a hover
  and a search (one redraw each).

    python benchmarks/dashboard_frames.py --rows 20000 --layers 4 --steps 5 --repeats 3
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))

from _browser import CHROMIUM, CHROMIUM_ARGS, VIEWPORT  # noqa: E402
from _dashboard_page import DashboardPage  # noqa: E402
from _layouts import write_layouts  # noqa: E402
from _tensorboard_server import TensorBoardServer  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from projector_export import export_embeddings  # noqa: E402
from projector_export.dashboard.metadata import PLUGIN_NAME  # noqa: E402
from projector_export.naming import snapshot_name  # noqa: E402

RUN, CLASSES = "bench", 10
# Records the interval between animation frames while the points move (installed in the dashboard's frame; a late
# frame during the pause on a step changes nothing on screen).
_WATCH_FRAMES = """() => { window.__intervals = []; let last = null;
  const tick = (t) => { const moving = document.body.dataset.state === 'animating';
    if (last !== null && moving) window.__intervals.push(t - last); last = moving ? t : null;
    if (!window.__stop) requestAnimationFrame(tick); };
  window.__stop = false; performance.clearMeasures('layers-frame'); requestAnimationFrame(tick); }"""
_FRAME_TIMES = """() => { window.__stop = true;
  return [performance.getEntriesByName('layers-frame').map(e => e.duration), window.__intervals]; }"""


def build(logdir: str, rows: int, layers: int, steps: int) -> None:
    """The run: every layer at every step, its layouts published as bookmarks."""
    rng = np.random.default_rng(0)
    labels = np.arange(rows) % CLASSES
    angles = 2 * np.pi * labels / CLASSES
    images = rng.integers(0, 255, size=(rows, 8, 8), dtype=np.uint8)
    for step in range(steps):
        spread = 1 + 4 * step / max(steps - 1, 1)  # the classes drift apart over training
        tensors, layouts = {}, {}
        for k in range(layers):
            name = snapshot_name(f"layer{k}", step * 100)
            centres = spread * np.stack([np.cos(angles + k), np.sin(angles + k), 0.1 * labels], axis=1)
            pca = centres + rng.normal(size=(rows, 3))
            tensors[name] = rng.normal(size=(rows, 16)).astype(np.float32)
            layouts[name] = {"pca": pca, "umap": 2 * centres[:, :2] + 0.5 * rng.normal(size=(rows, 2))}
        export_embeddings(logdir, tensors, run=RUN, images=images, reduce=None,
                          metadata={"label": [f"c{y}" for y in labels], "index": np.arange(rows)})
        write_layouts(os.path.join(logdir, RUN), layouts)


def get(url: str, route: str, **params) -> tuple[bytes, float]:
    start = time.perf_counter()
    request = urllib.request.Request(f"{url}/data/plugin/{PLUGIN_NAME}{route}?{urllib.parse.urlencode(params)}")
    with urllib.request.urlopen(request, timeout=600) as response:
        body = response.read()
    return body, time.perf_counter() - start


def sizes_and_server(url: str, logdir: str, names: list[str]) -> None:
    run, _ = get(url, "/run", run=RUN)
    info = json.loads(run)
    bookmarks = os.path.join(logdir, RUN, "plugins", "org_tensorflow_tensorboard_projector",
                             info["tensors"][names[0]]["bookmarks"])
    raw = open(bookmarks, "rb").read()
    metadata, _ = get(url, "/metadata", run=RUN, tensor=names[0])
    first = [get(url, "/layouts", run=RUN, tensor=name)[1] for name in names[:4]]
    again = [get(url, "/layouts", run=RUN, tensor=name)[1] for name in names[:4]]
    coordinates = [get(url, "/coordinates", run=RUN, tensor=name, layout="umap") for name in names[:4]]
    print(f"bookmarks file per tensor: {len(raw) / 1e6:.2f} MB, gzipped {len(gzip.compress(raw)) / 1e6:.2f} MB")
    print(f"/coordinates of one layout: {len(coordinates[0][0]) / 1e6:.3f} MB (float32, x and y per row)")
    print(f"/metadata: {len(metadata) / 1e6:.2f} MB, gzipped {len(gzip.compress(metadata)) / 1e6:.2f} MB; "
          f"/run: {len(run) / 1e3:.1f} kB")
    print(f"/layouts first (bookmarks parsed): median {statistics.median(first):.2f} s; "
          f"cached: {1000 * statistics.median(again):.1f} ms; /coordinates: "
          f"{1000 * statistics.median(t for _, t in coordinates):.1f} ms")


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    return (f"median {statistics.median(ordered):.1f} ms, p95 {ordered[int(0.95 * (len(ordered) - 1))]:.1f} ms, "
            f"max {ordered[-1]:.1f} ms ({len(ordered)} frames)")


# Chromium's compositing: the tests' flags (WebGL and compositing on SwiftShader, the CPU's emulation of a GPU), and
# the software compositor (`--disable-gpu`), nearer to a machine whose compositing costs little.
MODES = {"SwiftShader": (), "software compositing": ("--disable-gpu",)}


def page_times(url: str, repeats: int, mode: str) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=[*CHROMIUM_ARGS, *MODES[mode]])
        page = browser.new_page(viewport=VIEWPORT)
        start = time.perf_counter()
        dashboard = DashboardPage(page, url, timeout_ms=900_000, clock=False)
        print(f"[{mode}] page: tab opened to panels drawn: {time.perf_counter() - start:.1f} s")
        draws, intervals = [], []
        for _ in range(repeats):
            dashboard.press_on_slider("Home")
            dashboard.frame.evaluate(_WATCH_FRAMES)
            dashboard.frame.locator("button.play").click()
            dashboard.frame.wait_for_function("() => document.body.dataset.state === 'ready'"
                                              " && document.querySelector('button.play').textContent === '▶'",
                                              timeout=900_000)
            draw, interval = dashboard.frame.evaluate(_FRAME_TIMES)
            draws += draw
            intervals += interval
        print(f"[{mode}] playing, one frame drawn (4 panels): {summary(draws)}")
        print(f"[{mode}] playing, interval between frames while the points move: {summary(intervals)}")
        dashboard.frame.evaluate("() => performance.clearMeasures('layers-frame')")
        box = dashboard.canvas("layer0").bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        dashboard.search("label", "^c3$")
        events = dashboard.frame.evaluate("() => performance.getEntriesByName('layers-frame').map(e => e.duration)")
        print(f"[{mode}] hover and search redraws: {', '.join(f'{d:.1f}' for d in events)} ms")
        assert not dashboard.log.errors, dashboard.log.report()
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--logdir", help="build the log dir here, or reuse it when it holds the run already")
    args = parser.parse_args()
    logdir = args.logdir or os.path.join(tempfile.mkdtemp(prefix="dashboard-frames-"), "logs")
    names = [snapshot_name(f"layer{k}", step * 100) for step in range(args.steps) for k in range(args.layers)]
    if not os.path.isdir(os.path.join(logdir, RUN)):
        start, cpu = time.perf_counter(), time.process_time()
        build(logdir, args.rows, args.layers, args.steps)
        print(f"{args.layers} layers × {args.steps} steps × {args.rows:,} rows written in "
              f"{time.perf_counter() - start:.0f} s ({time.process_time() - cpu:.0f} s CPU)")
    with TensorBoardServer(logdir) as server:
        server.wait_for_plugins((PLUGIN_NAME,), timeout=600)
        sizes_and_server(server.url, logdir, names)
        for mode in MODES:  # the first opening also has the server read every bookmarks file
            page_times(server.url, args.repeats, mode)


if __name__ == "__main__":
    main()
