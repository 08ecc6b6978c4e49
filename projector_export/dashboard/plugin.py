"""The layers dashboard as a TensorBoard plugin: its routes, and when its tab is shown."""

from __future__ import annotations

import os
import threading

from tensorboard import context, errors, plugin_util
from tensorboard.backend import http_util
from tensorboard.data import provider
from tensorboard.plugins import base_plugin
from werkzeug import wrappers

from projector_export.dashboard import metadata
from projector_export.dashboard.runs import RunIndex, RunSnapshots, SnapshotTensor
from projector_export.naming import separability_tag
from projector_export.run_layouts import COMMAND, layout_status

_SCALARS_PLUGIN = "scalars"  # TensorBoard's scalars: the separability/<layer> curves
_SEPARABILITY_POINTS = 10_000  # keep every logged step (TensorBoard keeps at most 1,000 scalars per tag by default)


class LayersPlugin(base_plugin.TBPlugin):
    """Every layer's layout, side by side, over training; reads what the PROJECTOR reads (docs/dashboard.md)."""

    plugin_name = metadata.PLUGIN_NAME

    def __init__(self, context: base_plugin.TBContext):
        self._logdir = context.logdir
        self._provider = context.data_provider
        self._index = RunIndex(metadata.CACHE_BYTES)
        self._active = False
        self._checking: threading.Thread | None = None

    def frontend_metadata(self) -> base_plugin.FrontendMetadata:
        # The page polls its run itself (new steps, recomputed layouts): TensorBoard's reload would only restart it.
        return base_plugin.FrontendMetadata(es_module_path=metadata.ENTRY_MODULE, tab_name=metadata.TAB_NAME,
                                            disable_reload=True)

    def get_plugin_apps(self):
        return {
            metadata.RUNS_ROUTE: self._serve_runs,
            metadata.RUN_ROUTE: self._serve_run,
            metadata.LAYOUTS_ROUTE: self._serve_layouts,
            metadata.COORDINATES_ROUTE: self._serve_coordinates,
            metadata.METADATA_ROUTE: self._serve_metadata,
            metadata.SPRITE_ROUTE: self._serve_sprite,
            metadata.STATIC_ROUTE: self._serve_static,
        }

    def is_active(self) -> bool:
        """True once some run has layouts; looked for in a background thread, so the listing never waits."""
        if self._active or not self._logdir:
            return self._active
        if self._checking is None or not self._checking.is_alive():
            self._checking = threading.Thread(target=self._check_active, name="LayersPluginIsActive", daemon=True)
            self._checking.start()
        return False

    def _check_active(self) -> None:
        ctx = context.RequestContext()
        self._active = any(self._snapshots(ctx, "", run).has_layouts for run in self._run_names(ctx, ""))

    # ---- runs ------------------------------------------------------------------------------------------------
    def _run_names(self, ctx, experiment: str) -> list[str]:
        """TensorBoard's runs, and "." (the log dir itself), as its projector offers them."""
        runs = self._provider.list_runs(ctx, experiment_id=experiment) if self._provider else []
        return sorted({run.run_name for run in runs} | {"."})

    def _snapshots(self, ctx, experiment: str, run: str | None) -> RunSnapshots:
        if not run or not self._logdir or run not in self._run_names(ctx, experiment):
            raise errors.NotFoundError(f"no run {run!r} in {self._logdir}")
        return self._index.snapshots(run, os.path.join(self._logdir, run))

    def _tensor(self, request) -> tuple[RunSnapshots, SnapshotTensor]:
        ctx, experiment = plugin_util.context(request.environ), plugin_util.experiment_id(request.environ)
        snapshots = self._snapshots(ctx, experiment, request.args.get("run"))
        name = request.args.get("tensor")
        tensor = snapshots.tensors.get(name or "")
        if tensor is None:
            raise errors.NotFoundError(f"run {snapshots.run!r} has no snapshot tensor {name!r}")
        return snapshots, tensor

    def _separability(self, ctx, experiment: str, run: str, layers) -> dict[str, list[list[float]]]:
        """Layer -> [[step, value], ...] of its `separability/<layer>` scalars."""
        if self._provider is None:
            return {}
        tags = {separability_tag(layer): layer for layer in layers}
        series = self._provider.read_scalars(
            ctx, experiment_id=experiment, plugin_name=_SCALARS_PLUGIN, downsample=_SEPARABILITY_POINTS,
            run_tag_filter=provider.RunTagFilter(runs=[run], tags=list(tags))).get(run, {})
        return {tags[tag]: [[d.step, d.value] for d in data] for tag, data in series.items()}

    # ---- routes ----------------------------------------------------------------------------------------------
    @wrappers.Request.application
    def _serve_runs(self, request):
        ctx, experiment = plugin_util.context(request.environ), plugin_util.experiment_id(request.environ)
        runs = []
        for run in self._run_names(ctx, experiment):
            snapshots = self._snapshots(ctx, experiment, run)
            if snapshots.tensors:
                runs.append({"run": run, "layouts": snapshots.has_layouts, "tensors": len(snapshots.tensors)})
        return http_util.Respond(request, runs, "application/json")

    @wrappers.Request.application
    def _serve_run(self, request):
        ctx, experiment = plugin_util.context(request.environ), plugin_util.experiment_id(request.environ)
        snapshots = self._snapshots(ctx, experiment, request.args.get("run"))
        if not snapshots.tensors:
            raise errors.NotFoundError(f"run {snapshots.run!r} has no layer snapshots ({'; '.join(snapshots.problems)})"
                                       if snapshots.problems else f"run {snapshots.run!r} has no layer snapshots")
        layers = snapshots.layers()
        body = {
            "run": snapshots.run,
            "generation": snapshots.generation,
            "layers": [{"name": layer, "tensors": {str(step): t.name for step, t in steps.items()}}
                       for layer, steps in layers.items()],
            "tensors": {t.name: _tensor_json(t) for t in snapshots.tensors.values()},
            "separability": self._separability(ctx, experiment, snapshots.run, layers),
            "hint": None if snapshots.has_layouts else self._layouts_status(snapshots),
            "pending": self._layouts_status(snapshots) if snapshots.has_layouts else None,
            "problems": list(snapshots.problems),
        }
        return http_util.Respond(request, body, "application/json")

    @wrappers.Request.application
    def _serve_layouts(self, request):
        snapshots, tensor = self._tensor(request)
        layouts = self._read_layouts(snapshots, tensor)
        body = [{"layout": layout.layout, "label": layout.label, "dims": layout.dims, "rows": layout.rows,
                 "step": layout.step, "continues": layout.continues, "colorBy": layout.color_by}
                for layout in layouts]
        return http_util.Respond(request, body, "application/json")

    @wrappers.Request.application
    def _serve_coordinates(self, request):
        snapshots, tensor = self._tensor(request)
        kind = request.args.get("layout")
        found = [layout for layout in self._read_layouts(snapshots, tensor) if layout.layout == kind]
        if not found:
            raise errors.NotFoundError(f"tensor {tensor.name!r} of run {snapshots.run!r} has no {kind!r} layout")
        return http_util.Respond(request, found[0].coordinates.tobytes(), "application/octet-stream")

    @wrappers.Request.application
    def _serve_metadata(self, request):
        _, tensor = self._tensor(request)
        return http_util.Respond(request, _read_file(tensor.metadata, f"{tensor.name!r}: metadata"),
                                 "text/plain; charset=utf-8")

    @wrappers.Request.application
    def _serve_sprite(self, request):
        _, tensor = self._tensor(request)
        return http_util.Respond(request, _read_file(tensor.sprite, f"{tensor.name!r}: sprite"), "image/png")

    @wrappers.Request.application
    def _serve_static(self, request):
        name = request.path.rsplit("/static/", 1)[-1]
        kind = metadata.STATIC_TYPES.get(os.path.splitext(name)[1])
        if kind is None or name not in os.listdir(metadata.STATIC_DIR):
            raise errors.NotFoundError(f"no static file {name!r}")
        return http_util.Respond(request, _read_file(os.path.join(metadata.STATIC_DIR, name), name), kind)

    def _layouts_status(self, snapshots: RunSnapshots) -> str | None:
        """What the layouts' own status says of a run with tensors that lack layouts: how many, which process is
        computing them, how to wait or to compute them (`run_layouts.layout_status`); None when none lacks them."""
        if all(t.bookmarks for t in snapshots.tensors.values()):
            return None
        try:
            return layout_status(self._logdir, None if snapshots.run == "." else snapshots.run).message()
        except (OSError, ValueError) as e:
            return f"No layouts in run {snapshots.run!r} ({e}); {COMMAND} computes them."

    def _read_layouts(self, snapshots: RunSnapshots, tensor: SnapshotTensor):
        try:
            return self._index.layouts(snapshots.run, tensor)
        except (OSError, ValueError) as e:
            message = f"tensor {tensor.name!r} of run {snapshots.run!r}: unreadable layouts: {e}"
            raise errors.NotFoundError(message) from None


def _tensor_json(tensor: SnapshotTensor) -> dict:
    """What the page needs of a tensor before it loads its data: the files' names tell shared files apart."""
    return {"layer": tensor.layer, "step": tensor.step, "rows": tensor.rows,
            "bookmarks": os.path.basename(tensor.bookmarks) if tensor.bookmarks else None,
            "metadata": os.path.basename(tensor.metadata) if tensor.metadata else None,
            "sprite": os.path.basename(tensor.sprite) if tensor.sprite else None,
            "spriteCell": list(tensor.sprite_cell) if tensor.sprite_cell else None}


def _read_file(path: str | None, what: str) -> bytes:
    if path is None:
        raise errors.NotFoundError(f"{what}: none in the run's config")
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise errors.NotFoundError(f"{what}: {e.strerror}: {path}") from None
