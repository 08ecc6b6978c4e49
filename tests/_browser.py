"""TensorBoard in a real headless Chromium, driven with Playwright (test helper for `test_browser.py`).

`TensorBoardServer` (from `_tensorboard_server`) runs `tensorboard` on 127.0.0.1 and always stops it;
`launch_chromium` starts Debian's Chromium (never a downloaded browser); `ConsoleLog` records what the page
says in its console; `ProjectorPage` works the PROJECTOR tab the way a person does (menus, search box, tabs)
and reads back what the page itself holds and draws: the loaded data set, the colour of every drawn point,
the sprite image, the messages and error dialogs it shows.

TensorBoard's front end is Polymer inside shadow DOM; the PROJECTOR lives in an iframe
(`projector_binary.html`) whose `vz-projector` element holds the state read here.
"""

from __future__ import annotations

import html
import http.server
import io
import os
import re
import shutil
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorboard
from PIL import Image
from tensorboard.plugins import projector as projector_plugin

CHROMIUM = "/usr/bin/chromium"  # Debian's `chromium` (scripts/install-chromium); Playwright's download is not used
# Headless on a machine without GPU or internet: WebGL (the PROJECTOR's scatter plot) runs on SwiftShader, the
# CPU renderer, which Chromium enables only when asked with both flags (see docs/browser.md); the
# background-networking flags stop Chromium's own connections (refused here) that flood the log and slow start-up.
CHROMIUM_ARGS = (
    "--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)
VIEWPORT = {"width": 1400, "height": 900}
PROJECTOR_FRAME = "projector_binary.html"
# Colour the projector gives searched/selected points (`POINT_COLOR_SELECTED` in projectorScatterPlotAdapter.ts).
SELECTED_RGB = (0xFA, 0x66, 0x66)
# Console lines the page prints on every healthy load, not errors of ours.
_BENIGN_CONSOLE = ("GPU stall due to ReadPixels",)


def launch_chromium(playwright):
    """Debian's Chromium, headless; a clear error naming the install command when it is missing."""
    if not os.access(CHROMIUM, os.X_OK):
        raise RuntimeError(f"{CHROMIUM} not found: the browser tests use Debian's Chromium; "
                           "install it with scripts/install-chromium (README's first set-up command runs it)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS), headless=True)


class ConsoleLog:
    """Console messages and uncaught exceptions of a page and all its frames, as they arrive."""

    def __init__(self, page):
        self.entries: list[str] = []
        self.errors: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self._add(f"uncaught exception: {error}", error=True))
        # The console's "Failed to load resource" lines do not say which: record the failing requests.
        page.on("response", lambda r: r.status >= 400 and self._add(f"HTTP {r.status}: {r.url}", error=False))

    def _on_console(self, message) -> None:
        if not any(text in message.text for text in _BENIGN_CONSOLE):
            self._add(f"console.{message.type}: {message.text}", error=message.type == "error")

    def _add(self, line: str, *, error: bool) -> None:
        self.entries.append(line)
        if error:
            self.errors.append(line)

    def mark(self) -> int:
        return len(self.errors)

    def errors_since(self, mark: int) -> list[str]:
        return self.errors[mark:]

    def report(self) -> str:
        """The page's console so far, for failure messages."""
        if not self.entries:
            return "page console: (empty)"
        return "page console:\n  " + "\n  ".join(self.entries[-40:])


# Finds <vz-projector> through the shadow roots of the PROJECTOR frame.
_FIND_PROJECTOR = """() => {
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.tagName === 'VZ-PROJECTOR') return el;
      if (el.shadowRoot) { const found = walk(el.shadowRoot); if (found) return found; }
    }
    return null;
  };
  return walk(document);
}"""

# True while the PROJECTOR shows an error dialog (its progress messages use the same dialog, without `.error`).
_SHOWS_ERROR = ("(p.shadowRoot.querySelector('#notification-dialog').opened"
                " && !!p.shadowRoot.querySelector('#notification-dialog .notify-msg.error'))")

# Point indices grouped by the colour the scatter plot draws them with ("r,g,b" in 0..255).
_POINTS_BY_COLOUR = """p => {
  const c = p.projectorScatterPlotAdapter.scatterPlot.pointColors, groups = {};
  for (let i = 0; i < c.length / 3; i++) {
    const key = [0, 1, 2].map(k => Math.round(c[3 * i + k] * 255)).join(',');
    (groups[key] = groups[key] || []).push(i);
  }
  return groups;
}"""


# Where the scatter plot draws each point: its world position through the camera, in CSS pixels of the canvas.
_POINTS_ON_SCREEN = """p => {
  const plot = p.projectorScatterPlotAdapter.scatterPlot, camera = plot.camera;
  camera.updateMatrixWorld();
  const P = camera.projectionMatrix.elements, V = camera.matrixWorldInverse.elements;
  const sprites = plot.visualizers.find(v => v.worldSpacePointPositions && v.texture != null);
  const positions = sprites.worldSpacePointPositions;
  const times = (M, v) => [0, 1, 2, 3].map(r => M[r] * v[0] + M[4 + r] * v[1] + M[8 + r] * v[2] + M[12 + r] * v[3]);
  const out = [];
  for (let i = 0; i < positions.length / 3; i++) {
    const c = times(P, times(V, [positions[3 * i], positions[3 * i + 1], positions[3 * i + 2], 1]));
    out.push([(c[0] / c[3] + 1) / 2 * plot.width, (1 - c[1] / c[3]) / 2 * plot.height]);
  }
  return out;
}"""


# Images that spell their index in one solid colour (8 levels per channel, 30 apart), so the pixel drawn at a
# point tells which sprite cell the page drew there.
_LEVEL0, _LEVEL_STEP = 40, 30


def index_images(n: int, side: int = 8) -> np.ndarray:
    """n RGB images of side×side px, image i one solid colour that spells i (n ≤ 512)."""
    i = np.arange(n)
    colours = (_LEVEL0 + _LEVEL_STEP * np.stack([i % 8, i // 8 % 8, i // 64], axis=1)).astype(np.uint8)
    return np.broadcast_to(colours[:, None, None, :], (n, side, side, 3)).copy()


def index_of_colour(pixels: np.ndarray) -> np.ndarray:
    """The index each drawn RGB colour spells; -1 for a pixel that is no index colour (an empty cell is black)."""
    levels = np.rint((pixels.astype(float) - _LEVEL0) / _LEVEL_STEP)
    exact = np.abs(pixels - (_LEVEL0 + _LEVEL_STEP * levels)).max(axis=1) <= 6
    valid = exact & (levels >= 0).all(axis=1) & (levels <= 7).all(axis=1)
    return np.where(valid, levels[:, 0] + 8 * levels[:, 1] + 64 * levels[:, 2], -1).astype(int)


def lattice(n: int) -> np.ndarray:
    """n×3 points on a lattice with different spreads along x, y, z: PCA's axes are the lattice's, so its 2-D
    view draws every point well apart from the others."""
    i = np.arange(n)
    columns = int(np.ceil(np.sqrt(n)))
    return np.stack([i % columns, i // columns * 1.3, i * 0.37 % 1 * 0.05], axis=1).astype(np.float32)


@dataclass(frozen=True)
class LoadedData:
    """What the PROJECTOR holds for the loaded tensor."""

    tensor: str
    points: int
    dimension: int
    status_text: str  # the "Points: N | Dimension: D" bar a person reads
    metadata_columns: list[str]
    index_column: list[str]  # the `index` metadata of row i, as the page holds it
    sprite_size: tuple[int, int] | None  # the loaded sprite image's natural width and height; None: not loaded
    sprite_mode: bool  # points drawn as thumbnails


@dataclass(frozen=True)
class SearchResult:
    message: str  # "N matches." under the search box
    selected: list[int]  # the projector's selection
    highlighted: list[int]  # points drawn in the selection colour


class ProjectorPage:
    """TensorBoard's PROJECTOR tab in one browser page, worked through its own controls."""

    def __init__(self, page, base_url: str, *, timeout_ms: float = 60_000, app_page: bool = False):
        """`base_url`: TensorBoard's address; with `app_page`, the address of a page holding the projector app."""
        self.page = page
        self.log = ConsoleLog(page)
        self.timeout_ms = timeout_ms
        page.set_default_timeout(timeout_ms)
        if app_page:
            page.goto(base_url)
            self.frame = page.main_frame
        else:
            page.goto(f"{base_url}/#projector")
            self.frame = self._projector_frame()
        self.projector = self.frame.wait_for_function(_FIND_PROJECTOR).as_element()
        self._wait_loaded()

    def _projector_frame(self):
        deadline = time.monotonic() + self.timeout_ms / 1000
        while time.monotonic() < deadline:
            for frame in self.page.frames:
                if frame.url.endswith(PROJECTOR_FRAME):
                    return frame
            self.page.wait_for_timeout(200)  # lets Playwright process the frame events
        raise AssertionError(f"the PROJECTOR frame ({PROJECTOR_FRAME}) never appeared\n{self.log.report()}")

    def _wait(self, predicate: str, arg=None) -> None:
        """Waits until `predicate(projector, arg)` is truthy; the timeout message carries the page's state."""
        try:
            self.frame.wait_for_function(f"([p, a]) => ({predicate})(p, a)", arg=[self.projector, arg])
        except Exception as error:  # Playwright's TimeoutError: add what the page said
            raise AssertionError(f"waiting for {predicate} ({arg!r}): {error}\n{self.context()}") from None

    def _eval(self, script: str, arg=None):
        return self.projector.evaluate(script, arg)

    def context(self) -> str:
        """The page's error dialogs, notices and console, for failure messages."""
        problems = self.shown_problems()
        shown = "projector dialogs/notices: " + ("; ".join(problems) if problems else "(none)")
        return f"{shown}\n{self.log.report()}"

    def shown_problems(self) -> list[str]:
        """Error dialogs and warning notices the PROJECTOR shows (its own errors never reach the console)."""
        return self._eval("""p => {
          const root = p.shadowRoot, out = [];
          const dialog = root.querySelector('#notification-dialog');
          if (dialog.opened) {
            dialog.querySelectorAll('.notify-msg.error').forEach(e => out.push('error: ' + e.innerText));
          }
          const toast = root.querySelector('#toast');
          if (toast && toast.opened) out.push('notice: ' + toast.text);
          return out;
        }""")

    def dismiss_problems(self) -> None:
        self._eval("""p => { const d = p.shadowRoot.querySelector('#notification-dialog');
                              d.querySelectorAll('.notify-msg.error').forEach(e => e.remove()); d.close();
                              const t = p.shadowRoot.querySelector('#toast'); if (t.opened) t.close(); }""")

    # ---- menus -------------------------------------------------------------------------------------------
    def _data_panel_menu(self, noun: str):
        """The data panel's drop-down labelled "N runs found" / "N tensors found"."""
        label = re.compile(rf"\d+ {noun}s? found")
        return self.frame.locator("vz-projector-data-panel paper-dropdown-menu").filter(has_text=label)

    def _menu_items(self, noun: str) -> list[str]:
        items = self._data_panel_menu(noun).locator("paper-item")
        return [" ".join(text.split()) for text in items.all_text_contents()]

    def run_menu(self) -> list[str]:
        """The run drop-down (TensorBoard shows it only when the log dir has more than one run)."""
        return self._menu_items("run")

    def tensor_menu(self) -> list[str]:
        """Tensor names in the tensor drop-down (each item reads "name NxD"; the shape is dropped)."""
        return [re.sub(r"\s+\d+x\d+$", "", text) for text in self._menu_items("tensor")]

    def _pick(self, noun: str, item_text: str) -> None:
        self._data_panel_menu(noun).click()
        item = self._data_panel_menu(noun).locator("paper-item").filter(
            has_text=re.compile(rf"^\s*{re.escape(item_text)}(\s|$)"))
        item.click()

    def _replace_data(self, noun: str, item: str) -> None:
        """Picks `item` in a data menu and waits until the page has dropped the data set shown before."""
        self._eval("p => { window.__e2eBefore = p.dataSet; }")
        self._pick(noun, item)
        self._wait("p => p.dataSet !== window.__e2eBefore")

    def _wait_loaded(self) -> None:
        self._wait("p => p.dataSet && p.dataSet.spriteAndMetadataInfo && p.projection")
        self._wait("p => { const s = p.dataSet.spriteAndMetadataInfo.spriteImage; return !s || s.complete; }")

    def select_run(self, run: str) -> None:
        self._replace_data("run", run)
        self._wait("(p, run) => p.dataPanel.selectedRun === run", run)
        self._wait_loaded()

    def select_tensor(self, name: str) -> LoadedData:
        """Picks `name` in the tensor menu and waits until its points, metadata and sprite are loaded."""
        if self._eval("p => p.dataPanel.selectedTensor") != name:
            self._replace_data("tensor", name)
        self._wait("(p, name) => p.dataPanel.selectedTensor === name", name)
        self._wait_loaded()
        return self.loaded()

    def loaded(self) -> LoadedData:
        state = self._eval("""p => {
          const info = p.dataSet.spriteAndMetadataInfo, sprite = info.spriteImage;
          return {
            tensor: p.dataPanel.selectedTensor, points: p.dataSet.points.length, dimension: p.dataSet.dim[1],
            status: 'Points: ' + p.shadowRoot.querySelector('span.numDataPoints').innerText
                    + ' | Dimension: ' + p.shadowRoot.querySelector('span.dim').innerText,
            columns: (info.stats || []).map(s => s.name),
            index: p.dataSet.points.map(q => String(q.metadata['index'])),
            sprite: sprite && sprite.complete && sprite.naturalWidth > 0
                    ? [sprite.naturalWidth, sprite.naturalHeight] : null,
            spriteMode: p.projectorScatterPlotAdapter.getSpriteImageMode(),
          };
        }""")
        return LoadedData(state["tensor"], state["points"], state["dimension"], state["status"], state["columns"],
                          state["index"], tuple(state["sprite"]) if state["sprite"] else None, state["spriteMode"])

    # ---- colour, search ----------------------------------------------------------------------------------
    def color_by(self, column: str) -> tuple[dict[str, int], dict[str, list[int]]]:
        """Picks `column` in "Color by"; returns the legend (value -> count) and the points grouped by drawn colour."""
        self.frame.locator("#colorby").click()
        self.frame.locator("#colorby paper-item").filter(has_text=re.compile(rf"^\s*{re.escape(column)}\s")).click()
        self._wait("(p, column) => p.selectedColorOption && p.selectedColorOption.name === column", column)
        legend = self.frame.locator("vz-projector-legend .item")
        labels = legend.locator(".label").all_text_contents()
        counts = legend.locator(".info").all_text_contents()
        return {label.strip(): int(count) for label, count in zip(labels, counts, strict=True)}, self._drawn_colours()

    def start_menus(self) -> dict[str, str]:
        """What "Label by", the search box's "By" and "Color by" show."""
        return self._eval("""p => ({label_by: p.dataPanel.selectedLabelOption,
                                    search_by: p.inspectorPanel.selectedMetadataField,
                                    color_by: p.dataPanel.selectedColorOptionName})""")

    def search(self, column: str, text: str) -> SearchResult:
        """Types `text` in the inspector's search box with "By" set to `column`."""
        inspector = self.frame.locator("vz-projector-inspector-panel")
        inspector.locator("paper-dropdown-menu").click()
        inspector.locator("paper-dropdown-menu paper-item").filter(
            has_text=re.compile(rf"^\s*{re.escape(column)}\s*$")).click()
        self._wait("(p, column) => p.inspectorPanel.selectedMetadataField === column", column)
        box = inspector.locator("#search-box input")
        box.fill("")
        box.fill(text)
        self._wait("p => /matches/.test(p.inspectorPanel.searchBox.message)")
        message = self._eval("p => p.inspectorPanel.searchBox.message")
        selected = self._eval("p => p.selectedPointIndices.slice()")
        key = ",".join(str(v) for v in SELECTED_RGB)
        highlighted = self._drawn_colours().get(key, [])
        return SearchResult(message, sorted(selected), sorted(highlighted))

    def _drawn_colours(self) -> dict[str, list[int]]:
        """Point indices by drawn colour, with the mouse off the plot (a hovered point gets a colour of its own)."""
        self.page.mouse.move(0, 0)
        self._wait("p => p.hoverPointIndex == null")
        return self._eval(_POINTS_BY_COLOUR)

    def clear_search(self) -> None:
        self.frame.locator("vz-projector-inspector-panel #search-box input").fill("")
        self._wait("p => p.selectedPointIndices.length === 0")

    # ---- projections -------------------------------------------------------------------------------------
    def project(self, kind: str, *, tsne_iterations: int = 50) -> None:
        """Clicks the PCA, t-SNE or UMAP tab and waits until that projection is drawn (t-SNE: some iterations)."""
        self.frame.locator(f"#{kind}-tab").click()
        if kind == "pca":
            self._wait("p => p.projection && p.projection.projectionType === 'pca'")
        elif kind == "tsne":
            self._wait(f"(p, n) => p.dataSet.projections.tsne && p.dataSet.tSNEIteration >= n || {_SHOWS_ERROR}",
                       tsne_iterations)
        elif kind == "umap":
            self._wait("p => p.dataSet.projections.umap && p.projection && p.projection.projectionType === 'umap'"
                       f" || {_SHOWS_ERROR}")
        else:
            raise ValueError(f"Unknown projection {kind!r}; expected 'pca', 'tsne' or 'umap'")

    def spherize(self) -> None:
        """Ticks the data panel's "Spherize data" box (centre and scale every point to unit length).

        The page ticks it by itself only for tensors of 50 columns or more; its t-SNE and UMAP
        neighbour search assumes unit-length points and breaks on narrower raw tensors
        (tensorflow/tensorboard#5547), so a user of a narrow tensor ticks it first.
        """
        box = self.frame.locator("vz-projector-data-panel #normalize-data-checkbox")
        if not self._eval("p => p.normalizeData"):
            box.click()
        self._wait("p => p.normalizeData && p.dataPanel.normalizeData")

    def show_2d(self) -> None:
        """Unticks PCA's third component (the Z box), so the scatter plot is flat and drawn without perspective."""
        if self._eval("p => p.projectionsPanel.pcaIs3d"):
            self.frame.locator("vz-projector-projections-panel #z-checkbox").click()
        self._wait("p => p.projectorScatterPlotAdapter.scatterPlot.dimensionality === 2")

    def drawn_point_pixels(self) -> np.ndarray:
        """The RGB pixel drawn at the centre of every point (N×3 uint8), read from a screenshot of the scatter plot.

        In sprite mode the page draws point i as the sprite cell its shader looks up for i, so this is the
        thumbnail a person sees at point i (unselected, not hovered).
        """
        self.page.mouse.move(0, 0)
        self._wait("p => p.hoverPointIndex == null && p.selectedPointIndices.length === 0")
        self._eval("p => p.projectorScatterPlotAdapter.scatterPlot.render()")
        self.frame.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
        centres = np.rint(np.asarray(self._eval(_POINTS_ON_SCREEN))).astype(int)
        canvas = self.frame.locator("vz-projector #scatter canvas").first
        shot = np.asarray(Image.open(io.BytesIO(canvas.screenshot())).convert("RGB"))
        inside = (centres >= 0).all(axis=1) & (centres[:, 0] < shot.shape[1]) & (centres[:, 1] < shot.shape[0])
        assert inside.all(), f"points {np.flatnonzero(~inside).tolist()} drawn outside the plot\n{self.context()}"
        return shot[centres[:, 1], centres[:, 0]]

    # ---- bookmarks -----------------------------------------------------------------------------------------
    def bookmark_labels(self) -> list[str]:
        """The names of the states in the Bookmarks tray, once the selected tensor's bookmarks have loaded."""
        self._wait("p => p.bookmarkPanel.savedStates.length > 0")
        return self._eval("p => p.bookmarkPanel.savedStates.map(s => s.label)")

    def click_bookmark(self, index: int) -> None:
        """Clicks the radio button of state `index` in the Bookmarks tray, as a person does, and waits until the
        page has drawn that state's projection."""
        self._eval("p => { window.__e2eProjection = p.projection; }")
        row = self.frame.locator("vz-projector-bookmark-panel .state-row").nth(index)
        row.locator(".state-radio paper-icon-button").click()
        self._wait("(p, i) => p.bookmarkPanel.savedStates[i].isSelected && p.projection !== window.__e2eProjection"
                   " && p.projection.projectionType === p.bookmarkPanel.savedStates[i].selectedProjection", index)
        self.frame.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")

    def drawn_positions(self) -> tuple[np.ndarray, np.ndarray]:
        """Where the scatter plot draws every point: its world position (N×3, the saved coordinates rescaled per
        axis) and its centre on the canvas (N×2 CSS pixels, x right, y down)."""
        self.page.mouse.move(0, 0)
        world = self._eval("p => Array.from(p.projectorScatterPlotAdapter.scatterPlot.worldSpacePointPositions)")
        return np.asarray(world, float).reshape(-1, 3), np.asarray(self._eval(_POINTS_ON_SCREEN), float)

    def points_by_colour(self) -> dict[str, list[int]]:
        """Point indices by the colour the scatter plot draws them with ("r,g,b")."""
        return self._drawn_colours()

    def stop_tsne(self) -> None:
        self._eval("p => p.dataSet && p.dataSet.stopTSNE()")

    def screenshot(self, path: Path) -> None:
        self.page.mouse.move(0, 0)  # no hover highlight on a point
        self.page.screenshot(path=str(path))


# ---- SCALARS and IMAGES dashboards -------------------------------------------------------------------------
_ALL_ELEMENTS = """(tag) => {
  const out = [];
  const walk = (root) => { for (const el of root.querySelectorAll('*')) {
    if (el.tagName === tag) out.push(el); if (el.shadowRoot) walk(el.shadowRoot); } };
  walk(document);
  return out;
}"""
# Tag -> number of points, for every scalar chart that has drawn its line.
_SHOWN_CURVES = f"""() => {{
  const shown = {{}};
  for (const card of ({_ALL_ELEMENTS})('TF-SCALAR-CARD')) {{
    const loader = card.shadowRoot.querySelector('tf-line-chart-data-loader');
    const chart = loader.shadowRoot.querySelector('vz-line-chart2');
    const series = Object.values(chart._seriesDataCache || {{}});
    const lines = [...chart.shadowRoot.querySelectorAll('path.line')].filter(p => (p.getAttribute('d') || '').length);
    if (series.length && lines.length) shown[card.tag] = series[0].length;
  }}
  return shown;
}}"""
# Tag -> [width, height] of its image, for every image card whose image has loaded (not broken).
_SHOWN_IMAGES = f"""() => {{
  const shown = {{}};
  for (const loader of ({_ALL_ELEMENTS})('TF-IMAGE-LOADER')) {{
    const img = loader.shadowRoot.querySelector('img');
    if (img && img.complete && img.naturalWidth > 0) shown[loader.tag] = [img.naturalWidth, img.naturalHeight];
  }}
  return shown;
}}"""
_SCROLL_TO_TOP = """() => {
  const walk = (root) => { for (const el of root.querySelectorAll('*')) {
    if (el.scrollTop) el.scrollTop = 0; if (el.shadowRoot) walk(el.shadowRoot); } };
  walk(document);
}"""
DASHBOARD_VIEWPORT = {"width": 1400, "height": 1400}
_DASHBOARDS = {"scalars": ("tf-scalar-dashboard", _SHOWN_CURVES), "images": ("tf-image-dashboard", _SHOWN_IMAGES)}


def dashboard_contents(browser, url: str, expected_count: int, screenshot: Path, *, timeout_ms: float = 60_000):
    """Opens the SCALARS or IMAGES tab at `url` (".../#scalars"), opens every collapsed section as a person
    would, waits until `expected_count` tags are drawn, saves a screenshot of its top and returns what is shown
    (scalars: tag -> points on its curve; images: tag -> image size)."""
    element, script = _DASHBOARDS[url.rsplit("#", 1)[1]]
    page = browser.new_page(viewport=DASHBOARD_VIEWPORT)
    log = ConsoleLog(page)
    try:
        page.set_default_timeout(timeout_ms)
        page.goto(url)
        page.locator(f"{element} tf-category-paginated-view button.heading").first.wait_for()
        closed = page.locator(f"{element} tf-category-paginated-view button.heading:not([open-button])")
        while closed.count():
            closed.first.click()
        try:
            page.wait_for_function(f"() => Object.keys(({script})()).length >= {expected_count}")
        except Exception as error:  # Playwright's TimeoutError: say what is shown and what the page said
            raise AssertionError(f"{url}: {expected_count} tags never shown; shown: {page.evaluate(script)}: "
                                 f"{error}\n{log.report()}") from None
        page.evaluate(_SCROLL_TO_TOP)  # opening the sections scrolled the dashboard down
        page.screenshot(path=str(screenshot))
        shown = page.evaluate(script)
    finally:
        page.close()
    if log.errors:
        raise AssertionError(f"{url}: the page reported errors\n{log.report()}")
    return shown


# ---- the standalone Embedding Projector app -----------------------------------------------------------------
class StaticServer:
    """A folder over HTTP on 127.0.0.1 (an OS-chosen port) in a thread; with `allow_origin`, every answer carries
    that `Access-Control-Allow-Origin` (as docs/standalone.md's data server does). A context manager."""

    def __init__(self, folder: Path, *, allow_origin: str | None = None):
        self.failed: list[str] = []  # "status request line" of every answer that is an HTTP error
        failed = self.failed

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(folder), **kwargs)

            def end_headers(self):
                if allow_origin:
                    self.send_header("Access-Control-Allow-Origin", allow_origin)
                super().end_headers()

            def log_message(self, format, *args):
                if len(args) > 1 and str(args[1]).startswith(("4", "5")):
                    failed.append(f"{args[1]} {args[0]}")

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> StaticServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


def write_projector_app(folder: Path, config_url: str) -> Path:
    """The projector web app TensorBoard bundles (`vz-projector-app` in projector_binary.js) as a page in `folder`,
    in its "demo" serving mode, which loads `config_url` (a projector_config.json), as the public app does;
    with the Roboto fonts the page asks for, from TensorBoard's own web files."""
    bundle = Path(projector_plugin.__file__).parent / "tf_projector_plugin"
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(Path(tensorboard.__file__).parent / "webfiles.zip") as web_files:
        web_files.extractall(folder, [name for name in web_files.namelist() if name.startswith("font-roboto/")])
    shutil.copy(bundle / "projector_binary.js", folder / "projector_binary.js")
    page = (bundle / "projector_binary.html").read_text(encoding="utf-8")
    app = (f'<vz-projector-app serving-mode="demo" projector-config-json-path="{html.escape(config_url)}">'
           "</vz-projector-app>")
    assert "<vz-projector-dashboard></vz-projector-dashboard>" in page, "TensorBoard's projector page changed"
    page = page.replace("<vz-projector-dashboard></vz-projector-dashboard>", app)
    page = page.replace("</head>", '<link rel="icon" href="data:,"></head>', 1)  # no favicon.ico request
    (folder / "index.html").write_text(page, encoding="utf-8")
    return folder / "index.html"
