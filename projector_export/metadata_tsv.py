"""Metadata TSV: one row per example, in embedding-row order, as the PROJECTOR parses it.

The PROJECTOR reads a header row only when the first line contains a tab, so a single
column is written without a header (it is shown as "label") and several columns with one.
It skips lines that are blank after trimming, which would shift every later row, and it reads
an empty field as null, on which its search throws (it calls `toString()` on every value of the
searched column) and finds nothing. So every blank value, not only a wholly blank row, is
written as `BLANK_VALUE`: e.g. the `error` of a right row, so that searching `4→9` in `error` works.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from projector_export.validation import unencodable

# Written in place of a value that is empty or only whitespace.
BLANK_VALUE = "(blank)"
# Tab and line breaks would split a value into columns or rows; they become one space.
# Besides \t \n \r this covers the other characters that Python's str.splitlines() or
# JavaScript's String.trim() treat as line breaks or whitespace in a way that could matter.
_BREAKING_CHARS = "\t\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_SANITIZE = str.maketrans({c: " " for c in _BREAKING_CHARS})
# JavaScript's trim() also strips U+FEFF, which Python's str.strip() keeps.
_JS_EXTRA_WHITESPACE = "\ufeff"

Columns = dict[str, list[str]]
COLOR_BY_MAX_VALUES = 50
"""The PROJECTOR offers a non-numeric column in "Color by" only with at most this many distinct values."""
_ENCODING_FIX = ("Decode such text first, e.g. os.fsencode(name).decode('latin-1') for a Latin-1 file name, or "
                 "os.fsencode(name).decode('utf-8', 'replace').")


def check_metadata(metadata: object, n_rows: int | None) -> Columns:
    """Checks `metadata` (a mapping of column name to N values, or one sequence of N values).

    Returns the columns as lists of clean strings; a single unnamed sequence becomes the
    column "label". Raises TypeError for a wrong type and ValueError for a length that is
    not `n_rows`, an empty mapping, or a column that is not one-dimensional.
    """
    if isinstance(metadata, Mapping):
        if not metadata:
            raise ValueError(
                "Invalid metadata: received an empty mapping, expected at least one column name -> N values."
            )
        raw = dict(metadata)
    elif _is_sequence(metadata):
        raw = {"label": metadata}
    else:
        raise TypeError(
            "Invalid metadata: expected a mapping of column name to N values, e.g. {'label': y}, or one "
            f"sequence of N values, received {type(metadata).__name__}."
        )
    columns: Columns = {}
    for name, values in raw.items():
        if not isinstance(name, str):
            raise TypeError(f"Invalid metadata column name {name!r}: expected a str, received {type(name).__name__}.")
        if not name.strip(_BREAKING_CHARS + " ") or any(c in name for c in _BREAKING_CHARS):
            raise ValueError(
                f"Invalid metadata column name {name!r}: expected non-blank text without tabs or line breaks."
            )
        if unencodable(name):
            raise ValueError(f"Invalid metadata column name {name!r}: {unencodable(name)}, which the metadata file "
                             f"(UTF-8) cannot hold. {_ENCODING_FIX}")
        if not _is_sequence(values):
            raise TypeError(
                f"Invalid metadata column {name!r}: expected a sequence of N values (list, tuple, 1-D array), "
                f"received {type(values).__name__}."
            )
        array = np.asarray(values, dtype=object) if not isinstance(values, np.ndarray) else values
        if array.ndim != 1:
            raise ValueError(
                f"Invalid metadata column {name!r}: expected one value per example (1-D), received shape "
                f"{np.shape(array)}."
            )
        if n_rows is not None and len(array) != n_rows:
            raise ValueError(
                f"Invalid metadata column {name!r}: received {len(array)} values for {n_rows} embedding rows; "
                "metadata row i must describe example i, so both need the same N."
            )
        if isinstance(array, np.ndarray) and (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
            columns[name] = array.astype(str).tolist()  # digits only: nothing to clean
        else:
            columns[name] = [_clean(v) for v in array.tolist()]
            _check_encodable(name, columns[name])
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise ValueError(
            "Invalid metadata: columns have different lengths "
            + ", ".join(f"{k}={len(v)}" for k, v in columns.items())
            + "; every column needs one value per example."
        )
    return columns


def _check_encodable(name: str, values: list[str]) -> None:
    """Raises ValueError, naming the column and the first row, if a value cannot be written as UTF-8."""
    try:
        "".join(values).encode("utf-8")  # one pass over the column; the row is looked for only on failure
    except UnicodeEncodeError:
        row, problem = next((i, unencodable(v)) for i, v in enumerate(values) if unencodable(v))
        raise ValueError(f"Invalid metadata column {name!r}, row {row}: {values[row]!r} cannot be written to the "
                         f"metadata file (UTF-8): {problem}. {_ENCODING_FIX}") from None


def to_tsv(columns: Columns) -> str:
    """Formats checked columns as TSV text (header row only when there are several columns)."""
    names = list(columns)
    rows = zip(*columns.values(), strict=True)
    lines = ["\t".join(row) for row in rows]
    if len(names) > 1:
        lines.insert(0, "\t".join(_clean(n) for n in names))
    return "\n".join(lines) + "\n"


def _clean(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    text = str(value).translate(_SANITIZE)
    if not text.strip().strip(_JS_EXTRA_WHITESPACE).strip():
        return BLANK_VALUE
    return text


def _is_sequence(value: object) -> bool:
    if isinstance(value, (str, bytes)):
        return False
    return isinstance(value, (Sequence, np.ndarray)) or hasattr(value, "__array__")


def is_js_number(value: str) -> bool:
    """JavaScript's `!isNaN(value)` for a metadata cell (the PROJECTOR's test of a numeric column)."""
    text = value.strip()
    if not text:
        return True
    if text in ("Infinity", "+Infinity", "-Infinity"):
        return True
    if text.lower() in ("nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity") or "_" in text:
        return False
    try:
        float(text)
        return True
    except ValueError:
        return text.lower().startswith(("0x", "0o", "0b")) and _is_prefixed_int(text)


def _is_prefixed_int(text: str) -> bool:
    try:
        int(text, 0)
        return True
    except ValueError:
        return False
