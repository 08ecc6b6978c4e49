"""The layers dashboard (TensorBoard plugin `projector_layers`) in headless Chromium, worked as a person works it,
and where it must draw each point (test helper for `test_dashboard_browser.py` and the frame-time benchmark)."""

from __future__ import annotations

import base64
import io
import re
import time

import numpy as np
from _browser import ConsoleLog
from PIL import Image

from projector_export.dashboard.metadata import PLUGIN_NAME

# docs/dashboard.md: each layer's box (of all its steps) is fitted into its square panel with this margin in
# CSS px, aspect kept, centred, y up; point i is a square around the pixel nearest its position.
PAD = 10
SELECTED_RGB = (0xFA, 0x66, 0x66)  # searched points: the PROJECTOR's selection colour
BACKGROUND_RGB = (255, 255, 255)
_SETTLED = "() => ['ready', 'hint', 'error', 'empty'].includes(document.body.dataset.state)"


def box_of(layouts: list[np.ndarray]) -> tuple[float, float, float, float]:
    """xmin, xmax, ymin, ymax over every step's x, y (float32, as the page computes them)."""
    xy = np.concatenate([a[:, :2] for a in layouts]).astype(np.float32)
    return float(xy[:, 0].min()), float(xy[:, 0].max()), float(xy[:, 1].min()), float(xy[:, 1].max())


def screen_positions(xy: np.ndarray, box: tuple[float, float, float, float], size: int) -> np.ndarray:
    """CSS px (x right, y down) of each row's first two coordinates in a `size`-px panel showing `box`."""
    x0, x1, y0, y1 = box
    inner = size - 2 * PAD
    scale = min(inner / ((x1 - x0) or 1), inner / ((y1 - y0) or 1))
    ox, oy = PAD + (inner - scale * (x1 - x0)) / 2, PAD + (inner - scale * (y1 - y0)) / 2
    xy = xy[:, :2].astype(np.float32).astype(np.float64)
    return np.stack([ox + scale * (xy[:, 0] - x0), oy + scale * (y1 - xy[:, 1])], axis=1)


def pixel_of(positions: np.ndarray) -> np.ndarray:
    """The pixel each position falls on, rounded as JavaScript's Math.round."""
    return np.floor(positions + 0.5).astype(int)


def uncovered(pixels: np.ndarray, side: int) -> np.ndarray:
    """Rows whose centre pixel no later-drawn square of `side` px covers (they are drawn in row order)."""
    left = pixels - side // 2
    inside = np.all((left[None, :, :] <= pixels[:, None, :]) & (pixels[:, None, :] < left[None, :, :] + side), axis=2)
    later = np.triu(np.ones((len(pixels), len(pixels)), dtype=bool), k=1)
    return ~np.any(inside & later, axis=1)


class DashboardPage:
    """TensorBoard's page opened on the dashboard's tab; `frame` is the plugin's own frame."""

    def __init__(self, page, base_url: str, *, timeout_ms: float = 90_000, clock: bool = True):
        """Opens the tab; with `clock`, the page's clock is Playwright's (flowing as usual until `frames_of_play`
        stops it); without, the browser's own (frame times as a person gets them)."""
        self.page = page
        self.log = ConsoleLog(page)
        page.set_default_timeout(timeout_ms)
        if clock:
            page.clock.install()
        page.goto(f"{base_url}/#{PLUGIN_NAME}")
        deadline = time.monotonic() + timeout_ms / 1000
        self.frame = None
        while self.frame is None and time.monotonic() < deadline:
            self.frame = next((f for f in page.frames if f"plugin_entry.html?name={PLUGIN_NAME}" in f.url), None)
            page.wait_for_timeout(200)
        assert self.frame is not None, f"the dashboard's frame never appeared\n{self.log.report()}"
        self.settled()

    def settled(self) -> str:
        """Waits until the page is done loading or moving; returns its state."""
        try:
            self.frame.wait_for_function(_SETTLED)
        except Exception as error:  # Playwright's TimeoutError: add what the page says
            raise AssertionError(f"the dashboard never settled: {error}\n{self.context()}") from None
        return self.frame.evaluate("() => document.body.dataset.state")

    def context(self) -> str:
        status = self.frame.evaluate("() => document.querySelector('.status')?.textContent") if self.frame else None
        return f"dashboard status: {status!r}\n{self.log.report()}"

    def text(self, selector: str) -> str:
        return self.frame.locator(selector).text_content()

    def value(self, selector: str) -> str:
        return self.frame.locator(selector).input_value()

    def legend(self) -> dict[str, tuple[int, int, int]]:
        """Colour-by value -> the RGB of its chip in the legend."""
        items = self.frame.evaluate("""() => [...document.querySelectorAll('.legend .item')].map(item => [
            item.querySelector('.label').textContent,
            getComputedStyle(item.querySelector('.chip')).backgroundColor])""")
        return {label: tuple(int(v) for v in re.findall(r"\d+", css)[:3]) for label, css in items}

    def legend_counts(self) -> dict[str, str]:
        """Colour-by value -> the count the legend shows beside it."""
        return self.frame.evaluate("""() => Object.fromEntries([...document.querySelectorAll('.legend .item')]
            .map(item => [item.querySelector('.label').textContent, item.querySelector('.count').textContent]))""")

    def step(self) -> int:
        return int(self.frame.evaluate("() => document.body.dataset.step"))

    def shown_tensor(self, layer: str) -> str:
        return self.canvas(layer).get_attribute("data-tensor")

    def canvas(self, layer: str):
        return self.frame.locator(f"canvas[data-layer='{layer}']")

    def canvas_size(self, layer: str) -> int:
        return int(self.canvas(layer).evaluate("c => c.clientWidth"))

    def pixels(self, layer: str) -> np.ndarray:
        """The pixels of the layer's canvas (H×W×3), the mouse off it: what the page shows, 1:1 (a screenshot of the
        element would resample it by the fraction of a pixel at which the page's text places it)."""
        self.page.mouse.move(0, 0)
        self.settled()
        url = self.canvas(layer).evaluate("c => c.toDataURL('image/png')")
        return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))

    def press_on_slider(self, key: str) -> int:
        """Presses `key` on the step slider (as a person steps with the keyboard); returns the step it settles on."""
        self.frame.locator("input.step-slider").press(key)  # the page starts moving at once (state 'animating')
        self.settled()
        return self.step()

    def hover(self, layer: str, position) -> dict:
        """Moves the mouse onto CSS px `position` of the layer's canvas; returns the hover card's contents."""
        box = self.canvas(layer).bounding_box()
        self.page.mouse.move(box["x"] + float(position[0]), box["y"] + float(position[1]))
        self.frame.locator(".tooltip").wait_for(state="visible")
        thumbnail = self.frame.evaluate("""() => { const c = document.querySelector('.tooltip .thumbnail');
            return [c.width, c.height, Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)]; }""")
        width, height, rgba = thumbnail
        rows = self.frame.evaluate("""() => Object.fromEntries([...document.querySelectorAll('.tooltip tr')]
            .map(tr => [tr.cells[0].textContent, tr.cells[1].textContent]))""")
        return {"title": self.text(".tooltip .row-title"), "row": rows,
                "thumbnail": np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[:, :, :3]}

    def click(self, layer: str, position) -> str:
        box = self.canvas(layer).bounding_box()
        self.page.mouse.click(box["x"] + float(position[0]), box["y"] + float(position[1]))
        return self.text(".selection")

    def search(self, column: str, text: str) -> str:
        self.frame.locator("select.search-by").select_option(column)
        self.frame.locator("input.search").fill(text)
        return self.text(".search-message")

    def select_run(self, run: str) -> str:
        self.frame.locator("select.run").select_option(run)  # the page starts loading at once (state 'loading')
        return self.settled()

    def frames_of_play(self, selector: str, frame_ms: int, limit: int = 400) -> list[tuple[int, Image.Image]]:
        """Clicks play and screenshots `selector` every `frame_ms` of the page's time (its clock paused in between,
        so the frames are evenly spaced whatever the machine's speed) until it stops; [(step shown, image)]."""
        self.page.clock.pause_at(self.frame.evaluate("() => Date.now()") + 1)
        try:
            self.frame.locator("button.play").click()
            frames = []
            for _ in range(limit):
                self.page.clock.run_for(frame_ms)
                shot = Image.open(io.BytesIO(self.frame.locator(selector).screenshot())).convert("RGB")
                state, step, button = self.frame.evaluate("() => [document.body.dataset.state,"
                                                          " document.body.dataset.step, "
                                                          "document.querySelector('button.play').textContent]")
                frames.append((int(step), shot))
                if state == "ready" and button == "▶":
                    return frames
            raise AssertionError(f"still playing after {limit} frames\n{self.context()}")
        finally:
            self.page.clock.resume()
