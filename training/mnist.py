"""MNIST input: the four standard IDX files, read and checked before any training starts.

Where the files come from, in order: an explicit directory (`--data-dir`), the directory in the environment
variable `MNIST_DATA_DIR`, else Keras' own download and cache (`keras.utils.get_file`, hash-checked). Any
directory holding the four standard file names (gzipped or not) is accepted, so MNIST-format drop-ins such as
Fashion-MNIST work too; an optional `classes.txt` (one name per line) names their classes.

Every problem (missing directory or file, truncated or corrupt gzip, wrong magic number, wrong dimensions,
images/labels disagreement, a file that differs from the official MNIST while its siblings match) raises
`MnistFormatError`, a `ValueError` whose message names the file and the fix.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import math
import os
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ENV_VAR = "MNIST_DATA_DIR"
CLASSES_FILE = "classes.txt"
# The Google-hosted mirror that TensorFlow's own MNIST tutorials downloaded from.
MIRROR_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"
CACHE_SUBDIR = "datasets/mnist-idx"

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
FILE_NAMES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

# SHA-256 of the official MNIST files *after* decompression: the same whatever gzip level a copy was
# compressed with (the copies in shared/data/mnist are recompressed; their content hashes are these).
OFFICIAL_IDX_SHA256 = {
    TRAIN_IMAGES: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    TRAIN_LABELS: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    TEST_IMAGES: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    TEST_LABELS: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
# SHA-256 of the .gz files as MIRROR_URL serves them (the checksums TensorFlow Datasets pins for MNIST).
MIRROR_GZ_SHA256 = {
    TRAIN_IMAGES: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    TRAIN_LABELS: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    TEST_IMAGES: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    TEST_LABELS: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}

_GZIP_MAGIC = b"\x1f\x8b"
_UBYTE = 0x08  # IDX type code of unsigned bytes, the only one MNIST uses.
_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions: count, rows, columns
_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension: count
_FIX = (
    f"Fix: pass --data-dir (or set {ENV_VAR}) to a directory holding {', '.join(FILE_NAMES)} "
    f"(each may be gzipped as NAME.gz), or leave both unset to let Keras download MNIST."
)


class MnistFormatError(ValueError):
    """The MNIST files are missing, unreadable or inconsistent; the message says which file and the fix."""


@dataclasses.dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value
class MnistData:
    """MNIST (or an MNIST-format data set) in memory.

    Args:
        train_images: uint8 array N×H×W.
        train_labels: uint8 array N, values in [0, len(class_names)).
        test_images: uint8 array M×H×W (same H×W as the training images).
        test_labels: uint8 array M.
        class_names: one display name per label value.
        directory: where the files were read from.
        official: True when all four files are the official MNIST (SHA-256 of their content).
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: tuple[str, ...]
    directory: Path
    official: bool

    @property
    def image_shape(self) -> tuple[int, ...]:
        """Shape of one image, H×W."""
        return tuple(self.train_images.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def load_mnist(
    data_dir: str | os.PathLike | None = None,
    *,
    class_names: Sequence[str] | None = None,
    require_official: bool = False,
) -> MnistData:
    """Reads and checks the four IDX files, from `data_dir`, else `$MNIST_DATA_DIR`, else Keras' cache.

    Args:
        data_dir: directory with the four standard files (gzipped or not); None to use the fallbacks.
        class_names: names of the label values; default: the lines of `classes.txt` in the directory if
            present, else the label values themselves ("0", "1", ...).
        require_official: raise unless the files are the official MNIST (SHA-256 of their content).
    """
    directory, origin = resolve_data_dir(data_dir)
    arrays, digests = {}, {}
    for name in FILE_NAMES:
        path = _find_file(directory, name, origin)
        content = _read_bytes(path)
        digests[name] = hashlib.sha256(content).hexdigest()
        arrays[name] = _parse_idx(content, path, images=name in (TRAIN_IMAGES, TEST_IMAGES))

    matches = {name: digests[name] == OFFICIAL_IDX_SHA256[name] for name in FILE_NAMES}
    official = all(matches.values())
    if not official and (require_official or any(matches.values())):
        bad = ", ".join(name for name, ok in matches.items() if not ok)
        reason = "MNIST was required" if require_official else "the other files are the official MNIST"
        raise MnistFormatError(
            f"{bad} in {directory} ({origin}) differ from the official MNIST files (SHA-256 of their "
            f"content) and {reason}: the file is corrupt or from another data set. Re-download it from "
            f"{MIRROR_URL}, or delete the directory's files and let Keras download them. {_FIX}"
        )

    for images, labels in ((TRAIN_IMAGES, TRAIN_LABELS), (TEST_IMAGES, TEST_LABELS)):
        if len(arrays[images]) != len(arrays[labels]):
            raise MnistFormatError(
                f"{images} holds {len(arrays[images])} images but {labels} holds {len(arrays[labels])} "
                f"labels in {directory}; expected one label per image. One of the two files is from another "
                f"data set or incomplete. {_FIX}"
            )
    if arrays[TRAIN_IMAGES].shape[1:] != arrays[TEST_IMAGES].shape[1:]:
        raise MnistFormatError(
            f"{TRAIN_IMAGES} has images of {arrays[TRAIN_IMAGES].shape[1:]} pixels but {TEST_IMAGES} has "
            f"{arrays[TEST_IMAGES].shape[1:]} in {directory}; expected the same size. {_FIX}"
        )

    names = _class_names(directory, class_names, arrays[TRAIN_LABELS], arrays[TEST_LABELS])
    return MnistData(
        train_images=arrays[TRAIN_IMAGES],
        train_labels=arrays[TRAIN_LABELS],
        test_images=arrays[TEST_IMAGES],
        test_labels=arrays[TEST_LABELS],
        class_names=names,
        directory=directory,
        official=official,
    )


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> tuple[Path, str]:
    """Returns the directory to read and a phrase saying where it came from (for error messages)."""
    if data_dir is not None and str(data_dir) != "":
        return _existing_dir(Path(data_dir), "from --data-dir / data_dir"), "from --data-dir / data_dir"
    env_value = os.environ.get(ENV_VAR, "")
    if env_value:
        origin = f"from the environment variable {ENV_VAR}={env_value}"
        return _existing_dir(Path(env_value), origin), origin
    return download(), "downloaded by keras.utils.get_file into Keras' cache"


def download() -> Path:
    """Downloads (once) the four .gz files from MIRROR_URL into Keras' cache; returns their directory.

    A failed download (no network, say) is one `MnistFormatError` saying where the files were looked for and the fix.
    """
    from keras.utils import get_file  # imported here: Keras start-up costs seconds and is needed only here

    try:
        paths = [
            Path(
                get_file(
                    fname=f"{name}.gz",
                    origin=f"{MIRROR_URL}{name}.gz",
                    file_hash=MIRROR_GZ_SHA256[name],
                    hash_algorithm="sha256",
                    cache_subdir=CACHE_SUBDIR,
                )
            )
            for name in FILE_NAMES
        ]
    except Exception as error:  # get_file raises a bare Exception for a failed download, ValueError for a bad hash
        cache = Path(os.environ.get("KERAS_HOME") or Path("~/.keras").expanduser(), CACHE_SUBDIR)
        reason = " ".join(str(error).split())
        raise MnistFormatError(
            f"No MNIST files: neither --data-dir nor {ENV_VAR} is set, Keras' cache {cache} does not hold them, and "
            f"downloading them from {MIRROR_URL} failed ({reason}). Fix: pass --data-dir (or set {ENV_VAR}) to a "
            f"directory holding {', '.join(FILE_NAMES)} (each may be gzipped as NAME.gz), or run again with internet "
            "access to let Keras download them."
        ) from None
    return paths[0].parent


def _existing_dir(path: Path, origin: str) -> Path:
    if not path.is_dir():
        what = "is not a directory" if path.exists() else "does not exist"
        raise MnistFormatError(f"MNIST directory {path} ({origin}) {what}. {_FIX}")
    return path


def _find_file(directory: Path, name: str, origin: str) -> Path:
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise MnistFormatError(
        f"MNIST file {name} (or {name}.gz) not found in {directory} ({origin}). {_FIX}"
    )


def _read_bytes(path: Path) -> bytes:
    """The file's content, decompressed when it is gzipped (recognised by its magic bytes, not its name)."""
    try:
        raw = path.read_bytes()
    except OSError as error:  # e.g. no read permission
        raise MnistFormatError(
            f"Cannot read {path}: {error.strerror or error}. Fix: make it readable (chmod a+r), or pass another "
            f"--data-dir. {_FIX}"
        ) from None
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except EOFError as error:
        problem = f"is a truncated gzip file ({error})"
    except (gzip.BadGzipFile, zlib.error) as error:
        problem = f"is a corrupt gzip file ({error})"
    raise MnistFormatError(f"{path} {problem}. Re-download or re-copy it. {_FIX}")


def _parse_idx(content: bytes, path: Path, *, images: bool) -> np.ndarray:
    """Checks an IDX header (magic number, dimensions, size) and returns the uint8 array it describes."""
    expected_magic = _IMAGES_MAGIC if images else _LABELS_MAGIC
    kind = "images (magic 0x00000803: unsigned bytes, N×rows×columns)" if images else (
        "labels (magic 0x00000801: unsigned bytes, N)"
    )
    if len(content) < 4:
        raise MnistFormatError(f"{path} is {len(content)} bytes long: too short for an IDX file of {kind}. {_FIX}")
    magic = int.from_bytes(content[:4], "big")
    if magic != expected_magic:
        raise MnistFormatError(
            f"{path} has magic number 0x{magic:08x}; expected 0x{expected_magic:08x} for IDX {kind}. "
            f"It is not an MNIST-format file, or images and labels files were swapped. {_FIX}"
        )
    ndim = content[3]
    header_size = 4 + 4 * ndim
    if len(content) < header_size:
        raise MnistFormatError(f"{path} is truncated inside its header ({len(content)} bytes). {_FIX}")
    dims = tuple(int.from_bytes(content[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if images and (dims[1] == 0 or dims[2] == 0):
        raise MnistFormatError(f"{path} declares images of {dims[1]}×{dims[2]} pixels; expected both > 0. {_FIX}")
    expected_size = header_size + math.prod(dims)  # Python ints: a header's huge dimensions cannot overflow
    if len(content) != expected_size:
        state = "truncated" if len(content) < expected_size else "longer than its header says"
        raise MnistFormatError(
            f"{path} is {state}: its header declares {'×'.join(map(str, dims))} values, i.e. "
            f"{expected_size} bytes, but it has {len(content)} bytes. Re-download or re-copy it. {_FIX}"
        )
    return np.frombuffer(content, dtype=np.uint8, offset=header_size).reshape(dims)


def _class_names(
    directory: Path, given: Sequence[str] | None, *labels: np.ndarray
) -> tuple[str, ...]:
    num_labels = max(int(array.max(initial=0)) for array in labels) + 1
    if given is None and (directory / CLASSES_FILE).is_file():
        try:
            lines = (directory / CLASSES_FILE).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise MnistFormatError(
                f"Cannot read {directory / CLASSES_FILE}: {error}. Expected a UTF-8 text file with one class name "
                "per line; fix or delete it (the label values are then the names)."
            ) from None
        given, source = [line.strip() for line in lines if line.strip()], f"{directory / CLASSES_FILE}"
    else:
        source = "class_names"
    if given is None:
        return tuple(str(label) for label in range(num_labels))
    if isinstance(given, str):
        raise TypeError(f"class_names must be a sequence of strings, received the string {given!r}.")
    names = tuple(str(name) for name in given)
    if len(names) < num_labels:
        raise MnistFormatError(
            f"{source} names {len(names)} classes but the labels go up to {num_labels - 1}; "
            f"expected at least {num_labels} names, one per label value."
        )
    return names
