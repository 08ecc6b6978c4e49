"""The `tensorboard` program on 127.0.0.1 with an OS-chosen port, always stopped (test helper)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path


class TensorBoardServer:
    """`tensorboard --logdir LOGDIR` on 127.0.0.1 with an OS-chosen port; a context manager that stops it."""

    def __init__(self, logdir: Path, *, start_timeout: float = 120.0):
        self._log = tempfile.TemporaryFile(mode="w+")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", "127.0.0.1",
             "--port", "0", "--reload_interval", "2"],
            stdout=self._log, stderr=subprocess.STDOUT, text=True,
        )
        self.url = self._wait_for_url(start_timeout)

    def _wait_for_url(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._log.seek(0)
            match = re.search(r"(http://127\.0\.0\.1:\d+)/", self._log.read())  # "TensorBoard 2.x at http://..."
            if match:
                return match.group(1)
            if self._process.poll() is not None:
                break
            time.sleep(0.2)
        output = self.output()
        self.stop()
        raise RuntimeError(f"tensorboard did not start within {timeout:.0f} s; its output:\n{output}")

    def output(self) -> str:
        self._log.seek(0)
        return self._log.read()

    def get_json(self, path: str, **query) -> object:
        suffix = f"?{urllib.parse.urlencode(query)}" if query else ""
        with urllib.request.urlopen(self.url + path + suffix, timeout=30) as response:
            return json.load(response)

    def wait_for_plugins(self, plugins: tuple[str, ...], timeout: float = 120.0) -> None:
        """Waits until every plugin in `plugins` is enabled: TensorBoard shows a tab only for plugins with data."""
        deadline = time.monotonic() + timeout
        listing: dict = {}
        while time.monotonic() < deadline:
            listing = self.get_json("/data/plugins_listing")
            if all(listing.get(name, {}).get("enabled") for name in plugins):
                return
            time.sleep(1.0)
        enabled = sorted(name for name, entry in listing.items() if entry.get("enabled"))
        raise AssertionError(f"TensorBoard enabled {enabled} after {timeout:.0f} s, expected {list(plugins)} in them")

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._log.close()

    def __enter__(self) -> TensorBoardServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
