"""TensorBoard's real projector plugin, in-process, over a real data provider (test helper).

Built the way TensorBoard's own projector plugin tests build it: an EventMultiplexer over
the log dir, the MultiplexerDataProvider TensorBoard serves from, and the plugin's WSGI app
behind TensorBoard's router, queried at the same URLs the browser uses.
"""

from __future__ import annotations

import io
import json
import urllib.parse

import numpy as np
from _tensorboard_reader import Served
from PIL import Image
from tensorboard.backend import application
from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
from tensorboard.plugins import base_plugin
from tensorboard.plugins.projector import projector_plugin
from werkzeug import test as werkzeug_test
from werkzeug import wrappers

_ROUTE = "/data/plugin/projector"


class ProjectorClient:
    """Serves `logdir` with TensorBoard's projector plugin and decodes its answers."""

    def __init__(self, logdir: str):
        self.logdir = str(logdir)
        self.multiplexer = plugin_event_multiplexer.EventMultiplexer()
        self.reload()
        self.provider = data_provider.MultiplexerDataProvider(self.multiplexer, self.logdir)
        context = base_plugin.TBContext(logdir=self.logdir, data_provider=self.provider, multiplexer=self.multiplexer)
        self.plugin = projector_plugin.ProjectorPlugin(context)
        self.client = werkzeug_test.Client(application.TensorBoardWSGI([self.plugin]), wrappers.Response)

    def reload(self) -> None:
        """Picks up runs created since (TensorBoard's reload loop does this every few seconds)."""
        self.multiplexer.AddRunsFromDirectory(self.logdir)
        self.multiplexer.Reload()

    def get(self, route: str, **params) -> bytes:
        response = self.client.get(f"{_ROUTE}{route}?{urllib.parse.urlencode(params)}")
        if response.status_code != 200:
            raise AssertionError(f"{route} {params} -> {response.status_code}: {response.get_data(as_text=True)}")
        return response.get_data()

    def runs(self) -> list[str]:
        return json.loads(self.get("/runs"))

    def info(self, run: str) -> dict:
        return json.loads(self.get("/info", run=run))

    def embedding_info(self, run: str, name: str) -> dict:
        matches = [e for e in self.info(run)["embeddings"] if e["tensorName"] == name]
        if len(matches) != 1:
            raise AssertionError(f"expected one config entry for {name!r}, found {len(matches)}")
        return matches[0]

    def tensor(self, run: str, name: str) -> np.ndarray:
        shape = [int(s) for s in self.embedding_info(run, name)["tensorShape"]]
        return np.frombuffer(self.get("/tensor", run=run, name=name), dtype=np.float32).reshape(shape)

    def metadata(self, run: str, name: str) -> str:
        return self.get("/metadata", run=run, name=name).decode("utf-8")

    def metadata_columns(self, run: str, name: str) -> dict[str, list[str]]:
        """The metadata as columns; a single column has no header row and the PROJECTOR calls it "label"."""
        lines = self.metadata(run, name).rstrip("\n").split("\n")
        if "\t" not in lines[0]:
            return {"label": lines}
        header, *rows = lines
        cells = [row.split("\t") for row in rows]
        return {column: [row[i] for row in cells] for i, column in enumerate(header.split("\t"))}

    def scalars(self, run: str) -> dict[str, dict[int, float]]:
        """Every scalar series of `run` as {tag: {step: value}} (the tests' one reader, `_tensorboard_reader`)."""
        return Served(self.logdir).scalars(run)

    def sprite(self, run: str, name: str) -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(self.get("/sprite_image", run=run, name=name))))


def sprite_cell(sprite: np.ndarray, index: int, cell_size: tuple[int, int]) -> np.ndarray:
    """Cell `index` of a sprite, read the way the PROJECTOR's point shader reads it: column `index mod
    (width / cell width)`, row `floor(index / (height / cell height))` (right only for a square grid)."""
    width, height = cell_size
    col = index % (sprite.shape[1] // width)
    row = index // (sprite.shape[0] // height)
    return sprite[row * height:(row + 1) * height, col * width:(col + 1) * width]
