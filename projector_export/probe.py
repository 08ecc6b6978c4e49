"""The probe: the fixed examples a layer snapshot runs through a model, and everything shown beside them.

`check_probe` is the one function that checks a probe's arguments and the one place they are declared; it returns
a frozen `Probe`, which `EmbeddingSnapshots`, `export_model_layers` and the sidecar (`watch.snapshot_checkpoints`)
all take. What needs the model as well (layer names, the class-score layer, class counts) is checked by
`snapshot_plan.plan_snapshots`, when the probe meets a model.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping, Sequence

import keras
import numpy as np

from .defaults import MIN_PROBE_SIZE
from .error_metadata import RESERVED_COLUMNS
from .metadata_tsv import check_metadata
from .prediction import num_rows
from .sprite import check_images

Features = Callable[[keras.Model, object], Mapping[str, np.ndarray]]
"""`features(model, inputs) -> {name: N×... array}`: the tensors of a model whose layers cannot be read by name."""


@dataclasses.dataclass(frozen=True)
class Probe:
    """A checked probe (made by `check_probe`; its fields are the arguments described there, as checked).

    `n` is the number of probe rows (0 without inputs); `labels` are int64 class ids; `metadata` holds the user's
    columns as strings; `embedding_layers` maps each layer name as given to its vocabulary (None: row numbers).
    """

    inputs: object
    labels: np.ndarray | None
    n: int
    layers: tuple[str, ...] | None
    thumbnails: np.ndarray | None
    metadata: Mapping[str, list[str]] | None
    class_names: tuple[str, ...] | None
    embedding_layers: Mapping[str, tuple[str, ...] | None]
    features: Features | None
    class_layer: str | None

    def class_name_list(self, classes: int) -> list[str]:
        """The names of `classes` classes: the given ones, else "0", "1", ..."""
        return list(self.class_names) if self.class_names else [str(i) for i in range(classes)]


def check_probe(
    inputs: object,
    labels: np.ndarray | None,
    *,
    layers: Sequence[str] | None = None,
    thumbnails: np.ndarray | None = None,
    metadata: Mapping[str, Sequence] | None = None,
    class_names: Sequence[str] | None = None,
    embedding_layers: Mapping[str, Sequence[str] | None] | None = None,
    features: Features | None = None,
    class_layer: str | None = None,
) -> Probe:
    """Checks a probe's arguments (those that need no model) and returns them as a `Probe`.

    Args:
        inputs: the probe exactly as the model takes it (an image batch, token ids, tabular rows, or a dict/list
            of arrays for a multi-input model), N rows; None with `embedding_layers` alone (no probe needed).
        labels: N integer class ids, or None (then no error-case columns, class embedding or separability).
        layers: layer names (a nested model's layer also as ``<outer>/<inner>``); None: every convolution and
            dense layer (none when `features` is given).
        thumbnails: N images for the sprite (N×H×W or N×H×W×C with C = 1 or 3, uint8 or float in [0, 1]);
            default: the inputs when they are such an image batch, else no sprite.
        metadata: extra columns {name: N values}, written after ours.
        class_names: a name per class (default "0", "1", ...).
        embedding_layers: {Embedding layer name: vocabulary (input_dim strings) or None (row numbers)}: each
            layer's weight matrix, exported at every snapshot as ``<layer>/step_<step>`` with the vocabulary.
        features: `(model, inputs) -> {name: N×... array}` for models whose layers cannot be read by name
            (subclassed models, which are refused without it).
        class_layer: for a subclassed model, the name of the Dense layer that computes its class scores, whose
            kernel is then the class embedding (without it such a model gets none). A functional or Sequential
            model's class-score layer is read from its graph.

    Raises:
        TypeError, ValueError: an argument of the wrong type, or lengths that disagree; the message names it.
    """
    vocabularies = _check_embedding_layers(embedding_layers)
    if inputs is None:
        given = dict(labels=labels, layers=layers, thumbnails=thumbnails, metadata=metadata, features=features)
        extra = [name for name, value in given.items() if value is not None]
        if not vocabularies or extra:
            raise ValueError(
                "Invalid inputs: received inputs=None, which exports only `embedding_layers` (no probe), but "
                + (f"also {', '.join(extra)}; pass the probe inputs for those." if extra else
                   "`embedding_layers` is empty. Pass the probe inputs, or name Embedding layers.")
            )
        return Probe(None, None, 0, (), None, None, _names(class_names), vocabularies, None, class_layer)
    if features is not None and not callable(features):
        raise TypeError(f"Invalid value for argument `features`: expected a callable (model, inputs) -> "
                        f"{{name: N×... array}}, received {type(features).__name__}.")
    if isinstance(layers, str):
        raise TypeError(f"`layers` must be a sequence of layer names, received the string {layers!r}; "
                        f"split it first, e.g. {layers.split(',')!r}.")
    n = num_rows(inputs)
    checked_labels = _check_labels(labels, n)
    columns = None if metadata is None else check_metadata(metadata, n)
    taken = sorted(set(columns or ()) & set(RESERVED_COLUMNS)) if checked_labels is not None else []
    if taken:
        raise ValueError(f"Metadata column(s) {', '.join(taken)} are written by the snapshots themselves; "
                         f"rename yours (e.g. 'my_{taken[0]}').")
    names = _names(class_names)
    if names is not None and checked_labels is None:
        raise ValueError("`class_names` name the classes of `labels`, but labels=None; pass labels or drop them.")
    if names is not None and checked_labels.max() >= len(names):
        raise ValueError(f"Labels go up to {checked_labels.max()} but {len(names)} class names were given; pass one "
                         f"name per class.")
    return Probe(
        inputs=inputs, labels=checked_labels, n=n, layers=None if layers is None else tuple(layers),
        thumbnails=default_thumbnails(inputs) if thumbnails is None else check_images(thumbnails, n, "thumbnails"),
        metadata=columns, class_names=names, embedding_layers=vocabularies, features=features,
        class_layer=class_layer,
    )


def as_probe(inputs: object, labels: np.ndarray | None, options: Mapping[str, object]) -> Probe:
    """`inputs` itself when it is a `Probe` (then with no labels or options beside it), else `check_probe`'s."""
    if not isinstance(inputs, Probe):
        return check_probe(inputs, labels, **options)
    if labels is not None or options:
        given = ", ".join(["labels"] * (labels is not None) + list(options))
        raise TypeError(f"A `Probe` holds its labels and options already; received also {given}. Pass them to "
                        f"`check_probe` instead.")
    return inputs


def take_probe(images: np.ndarray, labels: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `size` images and labels (the fixed probe set), refusing a probe larger than the data."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise TypeError(f"Probe size must be an int, received {type(size).__name__} {size!r}.")
    if len(images) != len(labels):
        raise ValueError(f"Expected one label per probe image, received {len(images)} images, {len(labels)} labels.")
    if not MIN_PROBE_SIZE <= size <= len(images):
        raise ValueError(
            f"Probe size {size} is not available: the data has {len(images)} examples and a probe needs at least "
            f"{MIN_PROBE_SIZE}. Choose a probe size between {MIN_PROBE_SIZE} and {len(images)}."
        )
    return images[:size], labels[:size]


def default_thumbnails(inputs: object) -> np.ndarray | None:
    """The inputs themselves when they are an image batch the sprite can show (N×H×W or N×H×W×C with C = 1 or 3,
    uint8 or float in [0, 1]); None otherwise (token ids, tabular rows, several inputs: no sprite)."""
    if not isinstance(inputs, np.ndarray) or inputs.ndim not in (3, 4):
        return None
    if inputs.ndim == 4 and inputs.shape[3] not in (1, 3):
        return None
    if inputs.dtype == np.uint8:
        return inputs
    if not np.issubdtype(inputs.dtype, np.floating):
        return None
    if inputs.size and 0.0 <= float(inputs.min()) and float(inputs.max()) <= 1.0:
        return inputs
    warnings.warn(
        f"The inputs look like images ({inputs.shape}) but lie outside [0, 1], so they make no sprite; pass "
        f"`thumbnails=` the same images as uint8 or floats in [0, 1] to see them in the PROJECTOR.",
        stacklevel=4,
    )
    return None


def _check_labels(labels: object, n: int) -> np.ndarray | None:
    if labels is None:
        return None
    array = np.asarray(labels)
    if array.shape != (n,) or not np.issubdtype(array.dtype, np.integer) or n < MIN_PROBE_SIZE:
        raise ValueError(
            f"Invalid labels: expected {n} integer class ids (one per probe row, at least {MIN_PROBE_SIZE} rows "
            f"for the k-NN separability), received {array.dtype} labels of shape {array.shape}. "
            f"For one-hot labels pass labels.argmax(axis=1); for no labels pass labels=None."
        )
    if n and array.min() < 0:
        raise ValueError(f"Invalid labels: class ids must be >= 0, received {array.min()}.")
    return array.astype(np.int64)


def _check_embedding_layers(embedding_layers: object) -> dict[str, tuple[str, ...] | None]:
    """{layer name: vocabulary rows as strings, or None} of `embedding_layers`."""
    if embedding_layers is None:
        return {}
    if not isinstance(embedding_layers, Mapping):
        raise TypeError(f"Invalid value for argument `embedding_layers`: expected a mapping {{layer name: "
                        f"vocabulary or None}}, received {type(embedding_layers).__name__}.")
    return {name: None if vocabulary is None else tuple(str(v) for v in vocabulary)
            for name, vocabulary in embedding_layers.items()}


def _names(class_names: Sequence[str] | None) -> tuple[str, ...] | None:
    return None if class_names is None else tuple(str(name) for name in class_names)
