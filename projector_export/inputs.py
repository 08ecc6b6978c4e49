"""One export's input, checked as a whole, and its tensors as they will be written.

Shared by `export_embeddings` (TensorBoard run) and `export_standalone` (web-app folder), so
both accept and reject exactly the same input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from projector_export.metadata_tsv import Columns, check_metadata, to_tsv
from projector_export.reduction import DEFAULT_PCA_COMPONENTS, PCAResult, pca, reduced_by_default
from projector_export.sprite import check_images
from projector_export.validation import check_embeddings, check_int

REDUCE_OPTIONS = ("auto", "pca", "none")


@dataclass(frozen=True)
class ExportedTensor:
    """One tensor as written.

    Attributes:
      name: tensor name in the checkpoint and the PROJECTOR.
      shape: (N, D) as written (after PCA, if any).
      input_shape: (N, D) as received.
      explained_variance_ratio: share of variance the PCA kept (0..1), None when not reduced.
    """

    name: str
    shape: tuple[int, int]
    input_shape: tuple[int, int]
    explained_variance_ratio: float | None


@dataclass(frozen=True)
class Inputs:
    """Checked input: float32 tensors of the same N, images and metadata columns of that N.

    `reduced_by_caller`: the tensors given as a `PCAResult` (reduced already, e.g. streamed by a snapshot), by
    name; `tensors` holds their coordinates, written as they are.
    """

    tensors: dict[str, np.ndarray]
    images: np.ndarray | None
    columns: Columns | None
    reduce: str
    pca_components: int
    reduced_by_caller: dict[str, PCAResult]

    @property
    def n_rows(self) -> int:
        return next(iter(self.tensors.values())).shape[0]

    def written_shapes(self) -> dict[str, tuple[int, int]]:
        """The (N, D) each tensor will be written with (after PCA, where `reduce` says), known before the PCA."""
        shapes = {}
        for name, array in self.tensors.items():
            n, d = array.shape
            reduced = name not in self.reduced_by_caller and _should_reduce(self.reduce, d, self.pca_components)
            shapes[name] = (n, min(self.pca_components, n, d)) if reduced else (n, d)
        return shapes

    def metadata_tsv(self) -> bytes | None:
        return None if self.columns is None else to_tsv(self.columns).encode("utf-8")

    def reduced(self) -> tuple[dict[str, np.ndarray], list[ExportedTensor]]:
        """The tensors to write (PCA applied where `reduce` says) and their descriptions."""
        arrays: dict[str, np.ndarray] = {}
        described: list[ExportedTensor] = []
        for name, array in self.tensors.items():
            ratio = None
            out, input_shape = array, tuple(array.shape)
            given = self.reduced_by_caller.get(name)
            if given is not None:
                ratio, input_shape = given.explained_variance_ratio, (array.shape[0], given.input_dim)
            elif _should_reduce(self.reduce, array.shape[1], self.pca_components):
                result = pca(array, self.pca_components)
                out, ratio = result.coordinates, result.explained_variance_ratio
            arrays[name] = out
            described.append(ExportedTensor(name, tuple(out.shape), input_shape, ratio))
        return arrays, described


def check_inputs(
    embeddings: object,
    *,
    images: object = None,
    metadata: object = None,
    reduce: object = "auto",
    pca_components: object = DEFAULT_PCA_COMPONENTS,
) -> Inputs:
    """Checks everything one export receives; raises TypeError/ValueError before any work."""
    mode = _check_reduce(reduce, pca_components)
    given = {}
    if isinstance(embeddings, Mapping):
        given = {name: value for name, value in embeddings.items() if isinstance(value, PCAResult)}
        embeddings = {name: given[name].coordinates if name in given else value for name, value in embeddings.items()}
    tensors = check_embeddings(embeddings)
    n_rows = next(iter(tensors.values())).shape[0]
    return Inputs(
        tensors=tensors,
        images=None if images is None else check_images(images, n_rows),
        columns=None if metadata is None else check_metadata(metadata, n_rows),
        reduce=mode,
        pca_components=int(pca_components),
        reduced_by_caller=given,
    )


def _check_reduce(reduce: object, pca_components: object) -> str:
    mode = "none" if reduce is None else reduce
    if mode not in REDUCE_OPTIONS:
        raise ValueError(
            f"Invalid value for argument `reduce`. Received: reduce={reduce!r}. Expected one of "
            f"{', '.join(map(repr, REDUCE_OPTIONS))} or None."
        )
    check_int("pca_components", pca_components)
    return mode


def _should_reduce(mode: str, width: int, pca_components: int) -> bool:
    if mode == "auto":
        return reduced_by_default(width, pca_components)
    return mode == "pca" and width > pca_components
