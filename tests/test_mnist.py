"""IDX reading and every error path of `training.mnist`, on tiny files written here (and the real MNIST)."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
from _idx_files import idx_bytes, tiny_set

from training.mnist import (
    CACHE_SUBDIR,
    ENV_VAR,
    FILE_NAMES,
    MIRROR_GZ_SHA256,
    MIRROR_URL,
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    MnistFormatError,
    load_mnist,
)


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    """Each test chooses its own source; none may fall back to a real download."""
    monkeypatch.delenv(ENV_VAR, raising=False)

    def _refuse_download(**kwargs):
        raise AssertionError(f"unexpected download: {kwargs}")

    monkeypatch.setattr("keras.utils.get_file", _refuse_download)


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzipped"])
def test_readstiny_set(tmp_path, gz):
    arrays = tiny_set(tmp_path, gz=gz)
    data = load_mnist(tmp_path)
    np.testing.assert_array_equal(data.train_images, arrays[TRAIN_IMAGES])
    np.testing.assert_array_equal(data.train_labels, arrays[TRAIN_LABELS])
    np.testing.assert_array_equal(data.test_images, arrays[TEST_IMAGES])
    np.testing.assert_array_equal(data.test_labels, arrays[TEST_LABELS])
    assert data.train_images.dtype == np.uint8 and data.train_labels.dtype == np.uint8
    assert data.image_shape == (5, 3)
    assert data.class_names == ("0", "1", "2") and data.num_classes == 3
    assert data.directory == tmp_path and data.official is False


def test_gzip_recognised_by_content_not_name(tmp_path):
    arrays = tiny_set(tmp_path)
    path = tmp_path / TRAIN_IMAGES
    path.write_bytes(gzip.compress(path.read_bytes()))
    np.testing.assert_array_equal(load_mnist(tmp_path).train_images, arrays[TRAIN_IMAGES])


def test_class_names_from_file_and_argument(tmp_path):
    tiny_set(tmp_path)
    (tmp_path / "classes.txt").write_text("zero\none\n\ntwo\nthree\n", encoding="utf-8")
    assert load_mnist(tmp_path).class_names == ("zero", "one", "two", "three")
    assert load_mnist(tmp_path, class_names=["a", "b", "c"]).class_names == ("a", "b", "c")


def test_too_few_class_names(tmp_path):
    tiny_set(tmp_path)
    with pytest.raises(MnistFormatError, match=r"names 2 classes but the labels go up to 2"):
        load_mnist(tmp_path, class_names=["a", "b"])
    (tmp_path / "classes.txt").write_text("a\n", encoding="utf-8")
    with pytest.raises(MnistFormatError, match=r"classes\.txt names 1 classes"):
        load_mnist(tmp_path)


def test_class_names_string_is_type_error(tmp_path):
    tiny_set(tmp_path)
    with pytest.raises(TypeError, match="sequence of strings"):
        load_mnist(tmp_path, class_names="abc")


def test_source_order_argument_then_environment(tmp_path, monkeypatch):
    first, second = tiny_set(tmp_path / "arg", train=6), tiny_set(tmp_path / "env", train=8)
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env"))
    assert len(load_mnist(tmp_path / "arg").train_images) == len(first[TRAIN_IMAGES])
    assert len(load_mnist().train_images) == len(second[TRAIN_IMAGES])


def test_download_uses_keras_get_file_with_hashes(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    arrays = tiny_set(cache, gz=True)
    calls = []

    def fake_get_file(**kwargs):
        calls.append(kwargs)
        return str(cache / kwargs["fname"])

    monkeypatch.setattr("keras.utils.get_file", fake_get_file)
    data = load_mnist()
    np.testing.assert_array_equal(data.test_images, arrays[TEST_IMAGES])
    assert [call["fname"] for call in calls] == [f"{name}.gz" for name in FILE_NAMES]
    for call, name in zip(calls, FILE_NAMES, strict=True):
        assert call["origin"] == f"{MIRROR_URL}{name}.gz"
        assert call["file_hash"] == MIRROR_GZ_SHA256[name] and len(call["file_hash"]) == 64
        assert call["hash_algorithm"] == "sha256" and call["cache_subdir"] == CACHE_SUBDIR
    assert MIRROR_URL.startswith("https://")


def test_missing_directory_names_argument_and_fix(tmp_path):
    with pytest.raises(MnistFormatError) as error:
        load_mnist(tmp_path / "nowhere")
    message = str(error.value)
    assert str(tmp_path / "nowhere") in message and "does not exist" in message
    assert "--data-dir" in message and ENV_VAR in message and "Fix:" in message


def test_missing_directory_from_environment_names_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(MnistFormatError, match=rf"environment variable {ENV_VAR}=.*nowhere.*does not exist"):
        load_mnist()


def test_directory_is_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(MnistFormatError, match="is not a directory"):
        load_mnist(tmp_path / "file")


@pytest.mark.parametrize("missing", FILE_NAMES)
def test_missing_file_named(tmp_path, missing):
    tiny_set(tmp_path)
    (tmp_path / missing).unlink()
    with pytest.raises(MnistFormatError) as error:
        load_mnist(tmp_path)
    message = str(error.value)
    assert f"MNIST file {missing} (or {missing}.gz) not found in {tmp_path}" in message
    assert "--data-dir" in message and ENV_VAR in message


def test_truncated_gzip(tmp_path):
    tiny_set(tmp_path, gz=True)
    path = tmp_path / f"{TRAIN_IMAGES}.gz"
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(MnistFormatError, match=rf"{TRAIN_IMAGES}\.gz is a truncated gzip file"):
        load_mnist(tmp_path)


def test_corrupt_gzip(tmp_path):
    tiny_set(tmp_path, gz=True)
    path = tmp_path / f"{TEST_LABELS}.gz"
    content = bytearray(path.read_bytes())
    content[-8:-4] = bytes(4 * [0xFF])  # the CRC-32 of the content
    path.write_bytes(bytes(content))
    with pytest.raises(MnistFormatError, match=rf"{TEST_LABELS}\.gz is a corrupt gzip file"):
        load_mnist(tmp_path)


def test_swapped_files_wrong_magic(tmp_path):
    tiny_set(tmp_path)
    images, labels = tmp_path / TRAIN_IMAGES, tmp_path / TRAIN_LABELS
    images_bytes, labels_bytes = images.read_bytes(), labels.read_bytes()
    images.write_bytes(labels_bytes)
    labels.write_bytes(images_bytes)
    with pytest.raises(MnistFormatError, match=r"has magic number 0x00000801; expected 0x00000803"):
        load_mnist(tmp_path)


def test_not_an_idx_file(tmp_path):
    tiny_set(tmp_path)
    (tmp_path / TEST_IMAGES).write_bytes(b"<html>Not Found</html>")
    with pytest.raises(MnistFormatError, match=rf"{TEST_IMAGES} has magic number 0x3c68746d"):
        load_mnist(tmp_path)


def test_too_short(tmp_path):
    tiny_set(tmp_path)
    (tmp_path / TEST_LABELS).write_bytes(b"\x00\x00")
    with pytest.raises(MnistFormatError, match="is 2 bytes long: too short"):
        load_mnist(tmp_path)


def test_truncated_header(tmp_path):
    tiny_set(tmp_path)
    (tmp_path / TRAIN_IMAGES).write_bytes(idx_bytes(np.zeros((2, 2, 2)))[:9])
    with pytest.raises(MnistFormatError, match="truncated inside its header"):
        load_mnist(tmp_path)


def test_truncated_pixels(tmp_path):
    tiny_set(tmp_path)
    path = tmp_path / TRAIN_IMAGES
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(MnistFormatError, match=r"is truncated: its header declares 6×5×3 values"):
        load_mnist(tmp_path)


def test_trailing_bytes(tmp_path):
    tiny_set(tmp_path)
    path = tmp_path / TEST_LABELS
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(MnistFormatError, match="longer than its header says"):
        load_mnist(tmp_path)


def test_empty_images(tmp_path):
    tiny_set(tmp_path, shape=(0, 3))
    with pytest.raises(MnistFormatError, match=r"declares images of 0×3 pixels"):
        load_mnist(tmp_path)


def test_count_mismatch(tmp_path):
    tiny_set(tmp_path)
    (tmp_path / TEST_LABELS).write_bytes(idx_bytes(np.zeros(3)))
    with pytest.raises(MnistFormatError, match=rf"{TEST_IMAGES} holds 4 images but {TEST_LABELS} holds 3 labels"):
        load_mnist(tmp_path)


def test_train_test_image_size_mismatch(tmp_path):
    tiny_set(tmp_path)
    (tmp_path / TEST_IMAGES).write_bytes(idx_bytes(np.zeros((4, 3, 5))))
    with pytest.raises(MnistFormatError, match=r"\(5, 3\) pixels but .* has \(3, 5\)"):
        load_mnist(tmp_path)


def test_require_official_refuses_other_data(tmp_path):
    tiny_set(tmp_path)
    with pytest.raises(MnistFormatError, match="differ from the official MNIST.*MNIST was required"):
        load_mnist(tmp_path, require_official=True)


@pytest.mark.integration
def test_real_mnist(mnist):
    assert mnist.official
    assert mnist.train_images.shape == (60000, 28, 28) and mnist.test_images.shape == (10000, 28, 28)
    assert mnist.train_labels.shape == (60000,) and mnist.test_labels.shape == (10000,)
    assert mnist.class_names == tuple("0123456789")
    assert np.bincount(mnist.test_labels).tolist()[:2] == [980, 1135]  # known class counts of the test set


@pytest.mark.integration
def test_one_file_replaced_in_real_mnist(mnist_dir, tmp_path):
    """Official labels beside other images: the odd files are named as corrupt or foreign."""
    for name in (TRAIN_LABELS, TEST_LABELS):
        source = next(mnist_dir.glob(f"{name}*"))
        shutil.copy(source, tmp_path / source.name)
    (tmp_path / TRAIN_IMAGES).write_bytes(idx_bytes(np.zeros((60000, 28, 28))))
    (tmp_path / TEST_IMAGES).write_bytes(idx_bytes(np.zeros((10000, 28, 28))))
    with pytest.raises(MnistFormatError) as error:
        load_mnist(tmp_path)
    message = str(error.value)
    assert f"{TRAIN_IMAGES}, {TEST_IMAGES} in {tmp_path}" in message
    assert "the other files are the official MNIST" in message



def test_unreadable_file_named_with_fix(tmp_path, monkeypatch):
    tiny_set(tmp_path)
    unreadable = tmp_path / TEST_LABELS
    read_bytes = Path.read_bytes

    def refuse(path):  # tests run as root, for whom chmod 000 does not stop reading
        if path == unreadable:
            raise PermissionError(13, "Permission denied", str(path))
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(MnistFormatError, match=rf"Cannot read {unreadable}: Permission denied\. Fix: make it readable"):
        load_mnist(tmp_path)


def test_classes_file_not_utf8_named(tmp_path):
    tiny_set(tmp_path)
    (tmp_path / "classes.txt").write_bytes(b"zero\n\xff\xfeone\ntwo\n")
    with pytest.raises(MnistFormatError, match=r"Cannot read .*classes\.txt: 'utf-8' codec can't decode.*UTF-8 text"):
        load_mnist(tmp_path)


def test_header_dimensions_that_overflow_int64(tmp_path):
    tiny_set(tmp_path)
    huge = 0xFFFFFFFF  # 3 such dimensions multiply to more than 2**63: numpy's int64 product would wrap
    header = (0x0803).to_bytes(4, "big") + huge.to_bytes(4, "big") * 3
    (tmp_path / TRAIN_IMAGES).write_bytes(header + bytes(10))
    with pytest.raises(MnistFormatError, match=r"is truncated: its header declares 4294967295×4294967295×4294967295 "
                       r"values, i\.e\. 79228162458924105385300197391 bytes, but it has 26 bytes"):
        load_mnist(tmp_path)
