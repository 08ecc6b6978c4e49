"""What a snapshot of a model writes: the library's one answer, asked by the snapshots, the sidecar and the app.

`plan_snapshots(model, probe)` checks a `Probe` against a model (layer names, `embedding_layers`, the class-score
layer, class counts) and returns a `SnapshotPlan`: the tensors every snapshot exports (``<layer>/step_<N>``, the
class embedding ``class_weights/step_<N>`` when there is one, the Embedding layers' weights) and the scalars it
logs (``separability/<tensor>`` with labels), named by `naming`. A reader that needs to know whether a step was
exported completely (the sidecar's restart) asks the plan, not a snapshot.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping

import keras

from .class_scores import class_score_layer
from .keras_internals import build_sequential, has_layer_graph
from .model_layers import named_layers, resolve_layer, resolve_layers
from .naming import CLASS_EMBEDDING_NAME, separability_tag, snapshot_name
from .probe import Probe


@dataclasses.dataclass(frozen=True)
class SnapshotPlan:
    """What each snapshot of one model on one probe writes.

    Attributes:
        layers: full names of the layers whose outputs are exported, ``<layer>/step_<N>``.
        features: True when `features` adds tensors (their names are known once it has run: `SnapshotRecord`).
        class_layer: full name of the Dense layer whose kernel is the class embedding ``class_weights/step_<N>``;
            None: no class embedding (no labels, no dense layer computing the class scores, or a subclassed model
            without `class_layer`).
        embedding_layers: {full name of an Embedding layer: its vocabulary}: weights exported ``<layer>/step_<N>``.
        labelled: with labels, each probe tensor gets a ``separability/<tensor>`` scalar.
    """

    layers: tuple[str, ...]
    features: bool
    class_layer: str | None
    embedding_layers: Mapping[str, tuple[str, ...]]
    labelled: bool

    def tensor_bases(self) -> list[str]:
        """The names before ``/step_<N>`` of the tensors a snapshot exports (without those `features` returns)."""
        return [*self.layers, *([CLASS_EMBEDDING_NAME] if self.class_layer else []), *self.embedding_layers]

    def tensor_names(self, step: int | None, *, digits: int | None = None) -> list[str]:
        """The tensors exported at `step` (zero-padded to `digits`; None: no step, as `export_model_layers`)."""
        return [snapshot_name(base, step, digits=digits) for base in self.tensor_bases()]

    def scalar_tags(self) -> list[str]:
        """The scalars each snapshot logs (without those of `features`' tensors)."""
        return [separability_tag(layer) for layer in self.layers] if self.labelled else []


def plan_snapshots(model: keras.Model, probe: Probe) -> SnapshotPlan:
    """Checks `probe` against `model` and says what each snapshot writes. Builds a Sequential model given no
    `keras.Input` on the probe's shape (as `fit` would at its first step), so that its layers can be read.

    Raises:
        ValueError, TypeError: a layer name that is missing or ambiguous (the message lists the valid names), a
            subclassed model without `features`, a class count that disagrees with the model's outputs, ...
    """
    embedding_layers = _embedding_layers(model, probe.embedding_layers)
    if probe.inputs is None:
        return SnapshotPlan((), False, None, embedding_layers, False)
    graph = has_layer_graph(model)
    if not graph and probe.features is None:
        raise ValueError(
            f"Model {model.name!r} is a subclassed model ({type(model).__name__}): its layers' outputs cannot "
            f"be read by name. Pass `features=lambda model, inputs: {{'name': array}}` returning the N×... "
            f"tensors to show (e.g. from the model's own sub-layers), or build it as a functional model."
        )
    if not graph and probe.layers is not None:
        raise ValueError(f"Model {model.name!r} is a subclassed model: `layers` cannot be read by name. "
                         f"Return those tensors from `features` instead.")
    if isinstance(model, keras.Sequential):
        build_sequential(model, probe.inputs)
    layers = () if probe.features is not None and probe.layers is None else tuple(resolve_layers(model, probe.layers))
    clash = sorted(set(layers) & set(embedding_layers))
    if clash:
        raise ValueError(f"Layer(s) {', '.join(clash)} are in both `layers` and `embedding_layers`, which would "
                         f"write the same tensor names; keep each in one of them.")
    class_layer = None
    if probe.labels is not None:
        classes = _output_classes(model) if graph else None
        if classes is not None:
            check_classes(model, probe, classes)
        class_layer = _class_layer(model, probe, classes)
    return SnapshotPlan(layers, probe.features is not None, class_layer, embedding_layers, probe.labels is not None)


def check_classes(model: keras.Model, probe: Probe, classes: int) -> None:
    """Labels and class names against the `classes` class scores the model outputs."""
    if probe.labels.max() >= classes:
        raise ValueError(f"Labels go up to {probe.labels.max()} but model {model.name!r} outputs {classes} "
                         f"class scores; pass labels in [0, {classes}).")
    if probe.class_names is not None and len(probe.class_names) != classes:
        raise ValueError(
            f"Model {model.name!r} outputs {classes} class scores but {len(probe.class_names)} class names "
            f"were given; pass one name per output unit."
        )


def _output_classes(model: keras.Model) -> int | None:
    """C when the model's first output is N×C class scores (C >= 2) by its shape, else None."""
    try:
        shape = tuple(model.outputs[0].shape)
    except (AttributeError, ValueError):
        return None
    return shape[1] if len(shape) == 2 and shape[1] is not None and shape[1] >= 2 else None


def _class_layer(model: keras.Model, probe: Probe, classes: int | None) -> str | None:
    """The full name of the Dense layer whose kernel is the class embedding, or None (with a note for a subclassed
    model, whose class-score layer can only be named)."""
    dense = class_score_layer(model, probe.class_layer)
    if dense is None:
        if not has_layer_graph(model):
            warnings.warn(f"No class embedding for the subclassed model {model.name!r}: which layer computes its class "
                          f"scores cannot be read; pass `class_layer='<name of that Dense layer>'`.", stacklevel=4)
        return None
    if has_layer_graph(model) and dense.units != classes:
        return None  # the scores are not N×C with C = its units (e.g. a sequence of scores)
    return next(full for full, layer in named_layers(model).items() if layer is dense)


def _embedding_layers(model: keras.Model, vocabularies: Mapping[str, tuple[str, ...] | None]) -> dict:
    """{full layer name: vocabulary rows} of each named `keras.layers.Embedding` (row numbers for None)."""
    checked: dict[str, tuple[str, ...]] = {}
    for name, vocabulary in vocabularies.items():
        full = resolve_layer(model, name)
        layer = named_layers(model)[full]
        if not isinstance(layer, keras.layers.Embedding):
            raise ValueError(f"Layer {full!r} is a {type(layer).__name__}, not a keras.layers.Embedding; "
                             f"`embedding_layers` exports Embedding weight matrices (use `layers` for others).")
        rows = tuple(str(i) for i in range(layer.input_dim)) if vocabulary is None else vocabulary
        if len(rows) != layer.input_dim:
            raise ValueError(f"The vocabulary of Embedding layer {full!r} has {len(rows)} entries but the layer "
                             f"has input_dim={layer.input_dim} rows; pass one entry per row (or None).")
        checked[full] = rows
    return checked
