"""Checks on the caller's input, run before anything is written.

Every check raises `TypeError` (wrong type) or `ValueError` (wrong value) with a message
that says what was received, what was expected and how to fix it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

# Characters that break the PROJECTOR's URLs (`/data/plugin/projector/tensor?run=..&name=..`
# is built without escaping in some places) or TensorBoard's tensor-name handling
# (`:` is read as an output index, `name:0`).
URL_UNSAFE_CHARS = "&#+%?:"
# Characters TensorFlow's checkpoint lookups read as a glob pattern (`latest_checkpoint`, and the
# projector's check that a config's checkpoint exists): a run's path must not hold them.
GLOB_CHARS = "[]*?"
# Characters that break a file path or a line of the config/metadata files.
_CONTROL_CHARS = {chr(c) for c in range(32)} | {"\x7f"}
# The longest file name most file systems accept (NAME_MAX), in bytes: a run is one folder.
MAX_NAME_BYTES = 255
# Rows per block when scanning a tensor for NaN/inf.
_BLOCK_ROWS = 1024


def check_int(name: str, value: object, *, minimum: int = 1, hint: str = "") -> int:
    """Returns `value` as an int if it is an integer >= `minimum`, in Keras' wording otherwise.

    A wrong type (a bool, a float, a str) raises TypeError, a value below `minimum` ValueError:
    "Invalid value for argument `every`. Received: every=-1. Expected an int >= 0 (0: off)."
    `hint` is added to what is expected, e.g. "(0: off)".
    """
    expected = f"an int >= {minimum}" + (f" {hint}" if hint else "")
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(
            f"Invalid value for argument `{name}`. Received: {name}={value!r} ({type(value).__name__}). "
            f"Expected {expected}."
        )
    if value < minimum:
        raise ValueError(f"Invalid value for argument `{name}`. Received: {name}={value!r}. Expected {expected}.")
    return int(value)


def check_name(name: object, what: str = "embedding name") -> str:
    """Returns `name` if it is a valid tensor name, else raises.

    Tensor names may contain `/` as a hierarchy separator (`conv2/step_004000`), but no
    empty component, no `.`/`..` component, no backslash, no URL-breaking character.
    """
    if not isinstance(name, str):
        raise TypeError(f"Invalid {what}: expected a str, received {type(name).__name__} {name!r}.")
    problem = _name_problem(name, allow_slash=True)
    if problem:
        raise ValueError(
            f"Invalid {what} {name!r}: {problem}. Use letters, digits, '_', '-', '.', and '/' "
            "between non-empty parts, e.g. 'conv2/step_004000'."
        )
    return name


def check_run_name(run: object) -> str:
    """Returns `run` if it names one directory directly inside the log dir, else raises.

    The one rule for run names (the library and the command lines use it): one folder name, no
    characters that break TensorBoard's URLs or TensorFlow's checkpoint lookups (glob patterns).
    """
    if not isinstance(run, str):
        raise TypeError(f"Invalid run: expected a str or None, received {type(run).__name__} {run!r}.")
    problem = _name_problem(run, allow_slash=False)
    if not problem and len(os.fsencode(run)) > MAX_NAME_BYTES:
        problem = f"it is {len(os.fsencode(run))} bytes long, longer than a file name may be ({MAX_NAME_BYTES})"
    if problem:
        raise ValueError(
            f"Invalid run {run!r}: {problem}. A run is one folder name inside the log dir, "
            "e.g. 'tutorial-20250101-120000'."
        )
    return run


def _name_problem(name: str, *, allow_slash: bool) -> str | None:
    if not name:
        return "it is empty"
    bad = sorted({c for c in name if c in URL_UNSAFE_CHARS})
    if bad:
        return f"it contains {''.join(bad)!r}, which break TensorBoard's URLs"
    if any(c in _CONTROL_CHARS for c in name):
        return "it contains a control character (tab, newline, ...)"
    encoding = unencodable(name)
    if encoding:
        return f"{encoding}, which cannot be written as UTF-8"
    if "\\" in name or (os.sep != "/" and os.sep in name):
        return "it contains a backslash (path separator)"
    if not allow_slash and "/" in name:
        return "it contains '/' (path separator)"
    globbing = sorted({c for c in name if c in GLOB_CHARS})
    if not allow_slash and globbing:
        return f"it contains {''.join(globbing)!r}, which TensorFlow's checkpoint lookups read as a glob pattern"
    parts = name.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "it has an empty, '.' or '..' path component"
    if name != name.strip():
        return "it starts or ends with whitespace"
    return None


def check_embeddings(embeddings: object) -> dict[str, np.ndarray]:
    """Checks the name -> N×D mapping and returns it as float32 arrays.

    Raises when the mapping is empty, a name is invalid, an array is not 2-D, empty,
    non-numeric or not finite, or when the arrays disagree on N.
    """
    if not isinstance(embeddings, Mapping):
        raise TypeError(
            "Invalid embeddings: expected a mapping of name to an N×D array, e.g. "
            f"{{'conv2': activations}}, received {type(embeddings).__name__}."
        )
    if not embeddings:
        raise ValueError("Invalid embeddings: received an empty mapping, expected at least one name -> N×D array.")
    checked: dict[str, np.ndarray] = {}
    n_rows: tuple[str, int] | None = None
    for name, value in embeddings.items():
        check_name(name)
        array = _as_float32_matrix(name, value)
        if n_rows is not None and array.shape[0] != n_rows[1]:
            raise ValueError(
                f"Embeddings disagree on the number of rows N: {n_rows[0]!r} has {n_rows[1]} rows, "
                f"{name!r} has {array.shape[0]}. All embeddings of one call describe the same N examples."
            )
        n_rows = n_rows or (name, array.shape[0])
        checked[name] = array
    return checked


def _as_float32_matrix(name: str, value: object) -> np.ndarray:
    array = None
    if isinstance(value, np.ndarray):
        array = value
    elif _is_array_like(value):
        try:
            array = np.asarray(value)
        except ValueError as e:  # ragged nested lists
            raise ValueError(
                f"Invalid embedding {name!r}: expected an N×D array, received ragged rows ({e})."
            ) from None
    if array is None:
        raise TypeError(
            f"Invalid embedding {name!r}: expected an N×D numeric array, received {type(value).__name__}."
        )
    real = np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    if array.dtype == np.bool_ or not real:
        raise TypeError(
            f"Invalid embedding {name!r}: expected real numbers (integer or float dtype), "
            f"received dtype {array.dtype}. Convert with np.asarray(x, dtype=np.float32)."
        )
    if array.ndim != 2:
        raise ValueError(
            f"Invalid embedding {name!r}: expected a 2-D array N×D, received shape {array.shape}. "
            "Flatten per-example features first, e.g. x.reshape(len(x), -1)."
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(
            f"Invalid embedding {name!r}: expected N ≥ 1 rows and D ≥ 1 columns, received shape {array.shape}."
        )
    with np.errstate(over="ignore"):  # overflow becomes inf, reported just below
        array = np.ascontiguousarray(array, dtype=np.float32)
    # Checked in blocks of rows (no N×D mask for wide tensors); the full mask is built only to
    # say where the bad values are.
    if not all(np.isfinite(array[i:i + _BLOCK_ROWS]).all() for i in range(0, array.shape[0], _BLOCK_ROWS)):
        finite = np.isfinite(array)
        bad_rows = ~finite.all(axis=1)
        count = int((~finite).sum())
        first = int(np.argmax(bad_rows))
        raise ValueError(
            f"Invalid embedding {name!r}: {count} value(s) are NaN or infinite (after conversion to float32), "
            f"in {int(bad_rows.sum())} row(s), the first at row {first}. Expected finite values; "
            "drop or fix those rows (and their images/metadata) first."
        )
    return array


def _is_array_like(value: object) -> bool:
    return hasattr(value, "__array__") or isinstance(value, (list, tuple))


def check_logdir_path(logdir: str) -> None:
    """Raises ValueError if the absolute path of `logdir` holds `[ ] * ?` or cannot be written as UTF-8.

    The projector's config names its checkpoint by absolute path, and TensorFlow and TensorBoard
    look checkpoints up with glob patterns: under such a path the run would never be found. The
    config and TensorFlow's paths are UTF-8 text.
    """
    path = os.path.abspath(logdir)
    bad = sorted({c for c in path if c in GLOB_CHARS})
    if bad:
        raise ValueError(
            f"Invalid logdir {logdir!r}: its path {path!r} contains {''.join(bad)!r}, which TensorFlow's checkpoint "
            "lookups read as a glob pattern, so TensorBoard would never find the run's tensors. "
            "Choose a log dir whose path has none of [ ] * ?."
        )
    problem = unencodable(path)
    if problem:
        raise ValueError(
            f"Invalid logdir {logdir!r}: its path {path!r} cannot be written in TensorBoard's config ({problem}). "
            "Rename that folder to a UTF-8 name, or choose another log dir."
        )


def unencodable(text: str) -> str | None:
    """Why `text` cannot be written as UTF-8, or None if it can.

    Only a lone surrogate cannot: what `os.listdir`, `sys.argv` and `os.environ` give for the bytes of a
    name that is not UTF-8 (a Latin-1 file name, say).
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        char = error.object[error.start]
        return (f"it holds the lone surrogate U+{ord(char):04X} at character {error.start}, as os.listdir and "
                "sys.argv give for bytes that are not UTF-8 (a Latin-1 file name, say)")
    return None


def check_logdir(logdir: object) -> str:
    """Returns `logdir` as a str path if it is (or can become) a directory, else raises."""
    if not isinstance(logdir, (str, os.PathLike)):
        raise TypeError(f"Invalid logdir: expected a path (str or os.PathLike), received {type(logdir).__name__}.")
    path = os.fspath(logdir)
    if not path:
        raise ValueError("Invalid logdir: received an empty path, expected a directory such as 'logs'.")
    probe = path
    while probe and not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if probe and os.path.exists(probe) and not os.path.isdir(probe):
        raise ValueError(
            f"Invalid logdir {path!r}: {probe!r} is a file, expected a directory (or a path that "
            "does not exist yet). Choose another log dir."
        )
    return path


def check_writable_dir(path: str | os.PathLike, what: str) -> str:
    """Returns `path` if it is a directory this process can write into, or one it can create; else raises.

    Checked before anything is written, so that a read-only or misplaced output fails with one line naming
    `what` (a flag such as "--logdir") instead of half-way through. Creates nothing.
    """
    path = os.fspath(path)
    probe = os.path.abspath(path)
    while not os.path.exists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise ValueError(f"Invalid {what} {path!r}: {probe!r} is a file, expected a directory. Choose another {what}.")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(
            f"Invalid {what} {path!r}: {probe!r} is not writable by this user. Choose a writable {what}, "
            "or fix the directory's permissions."
        )
    return path
