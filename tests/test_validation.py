"""Every bad input gets its own clear error, raised before anything is written."""

from __future__ import annotations

import os

import numpy as np
import pytest

from projector_export import export_embeddings, export_standalone

N = 4


def good(n=N, d=3):
    return np.arange(n * d, dtype=np.float32).reshape(n, d)


def assert_nothing_written(logdir):
    assert not os.path.exists(logdir) or os.listdir(logdir) == []


def rejects(tmp_path, error, match, embeddings=None, **kwargs):
    logdir = kwargs.pop("logdir", tmp_path / "logs")
    with pytest.raises(error, match=match):
        export_embeddings(logdir, {"e": good()} if embeddings is None else embeddings, run="r", **kwargs)
    assert_nothing_written(tmp_path / "logs")


def test_tensor_not_2d(tmp_path):
    rejects(tmp_path, ValueError, r"expected a 2-D array N×D, received shape \(4, 3, 2\)", {"e": np.zeros((4, 3, 2))})


def test_tensor_1d(tmp_path):
    rejects(tmp_path, ValueError, r"received shape \(4,\)", {"e": np.zeros(4)})


def test_tensor_without_rows(tmp_path):
    rejects(tmp_path, ValueError, r"expected N ≥ 1 rows and D ≥ 1 columns, received shape \(0, 3\)",
            {"e": np.zeros((0, 3))})


def test_tensor_without_columns(tmp_path):
    rejects(tmp_path, ValueError, r"received shape \(4, 0\)", {"e": np.zeros((4, 0))})


def test_embeddings_disagree_on_n(tmp_path):
    rejects(tmp_path, ValueError, r"'a' has 4 rows, 'b' has 5", {"a": good(), "b": good(5)})


def test_images_disagree_on_n(tmp_path):
    rejects(tmp_path, ValueError, r"received 5 images for 4 embedding rows", images=np.zeros((5, 2, 2), np.uint8))


def test_metadata_disagrees_on_n(tmp_path):
    rejects(tmp_path, ValueError, r"column 'label': received 3 values for 4 embedding rows",
            metadata={"label": [1, 2, 3]})


def test_single_metadata_column_disagrees_on_n(tmp_path):
    rejects(tmp_path, ValueError, r"received 5 values for 4 embedding rows", metadata=list(range(5)))


def test_nan_values_report_count_and_first_row(tmp_path):
    x = good()
    x[2, 1] = np.nan
    x[3, 0] = np.nan
    rejects(tmp_path, ValueError, r"2 value\(s\) are NaN or infinite .* in 2 row\(s\), the first at row 2", {"e": x})


def test_infinite_values(tmp_path):
    x = good()
    x[1, 2] = np.inf
    rejects(tmp_path, ValueError, r"1 value\(s\) are NaN or infinite .* first at row 1", {"e": x})


def test_values_overflowing_float32(tmp_path):
    x = good().astype(np.float64)
    x[0, 0] = 1e300
    rejects(tmp_path, ValueError, r"NaN or infinite \(after conversion to float32\)", {"e": x})


def test_non_numeric_tensor(tmp_path):
    rejects(tmp_path, TypeError, r"expected real numbers .* received dtype <U1", {"e": np.array([["a"], ["b"]])})


def test_object_tensor(tmp_path):
    rejects(tmp_path, TypeError, r"received dtype object", {"e": np.array([[None], [1]], dtype=object)})


def test_boolean_tensor(tmp_path):
    rejects(tmp_path, TypeError, r"received dtype bool", {"e": np.ones((2, 2), bool)})


def test_tensor_that_is_not_an_array(tmp_path):
    rejects(tmp_path, TypeError, r"expected an N×D numeric array, received str", {"e": "abc"})


def test_ragged_tensor(tmp_path):
    rejects(tmp_path, ValueError, r"ragged rows", {"e": [[1, 2], [3]]})


def test_embeddings_not_a_mapping(tmp_path):
    rejects(tmp_path, TypeError, r"expected a mapping of name to an N×D array", good())


def test_embeddings_empty_mapping(tmp_path):
    rejects(tmp_path, ValueError, r"received an empty mapping", {})


def test_images_wrong_rank(tmp_path):
    rejects(tmp_path, ValueError, r"expected rank 3 \(N×H×W\) or 4 \(N×H×W×C\), received shape \(4, 9\)",
            images=np.zeros((4, 9), np.uint8))


def test_images_wrong_channel_count(tmp_path):
    rejects(tmp_path, ValueError, r"expected 1 \(grayscale\) or 3 \(RGB\) channels",
            images=np.zeros((4, 2, 2, 2), np.uint8))


def test_images_wrong_dtype(tmp_path):
    rejects(tmp_path, TypeError, r"expected dtype uint8 \(0..255\) or float in \[0, 1\], received dtype int64",
            images=np.zeros((4, 2, 2), np.int64))


def test_float_images_out_of_range(tmp_path):
    rejects(tmp_path, ValueError, r"float images must lie in \[0, 1\], received values in \[0.0, 255.0\]",
            images=np.linspace(0, 255, 16).reshape(4, 2, 2))


def test_images_not_an_array(tmp_path):
    rejects(tmp_path, TypeError, r"Invalid images: expected a numpy array", images=[[1]])


@pytest.mark.parametrize(
    "name", ["", "a/../b", "..", "a//b", "/abs", "a\\b", "a&b", "a#b", "a+b", "a%b", "a?b", "a:0", "tab\tname"]
)
def test_invalid_tensor_name(tmp_path, name):
    rejects(tmp_path, ValueError, r"Invalid embedding name", {name: good()})


def test_tensor_name_not_a_string(tmp_path):
    rejects(tmp_path, TypeError, r"Invalid embedding name: expected a str, received int", {3: good()})


@pytest.mark.parametrize("run", ["", "a/b", "..", "a\\b", "x&y", "x?y"])
def test_invalid_run_name(tmp_path, run):
    with pytest.raises(ValueError, match="Invalid run"):
        export_embeddings(tmp_path / "logs", {"e": good()}, run=run)
    assert_nothing_written(tmp_path / "logs")


def test_logdir_is_a_file(tmp_path):
    path = tmp_path / "logs"
    path.write_text("not a dir")
    with pytest.raises(ValueError, match=r"is a file, expected a directory"):
        export_embeddings(path, {"e": good()}, run="r")
    assert path.read_text() == "not a dir"


def test_logdir_below_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"is a file"):
        export_embeddings(tmp_path / "file" / "logs", {"e": good()})


def test_run_dir_is_a_file(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "r").write_text("x")
    with pytest.raises(ValueError, match=r"Invalid run directory .* is a file"):
        export_embeddings(tmp_path / "logs", {"e": good()}, run="r")


def test_metadata_wrong_type(tmp_path):
    rejects(tmp_path, TypeError, r"Invalid metadata: expected a mapping of column name to N values", metadata="abcd")


def test_metadata_column_not_1d(tmp_path):
    rejects(tmp_path, ValueError, r"expected one value per example \(1-D\), received shape \(4, 2\)",
            metadata={"m": np.zeros((4, 2))})


def test_metadata_bad_column_name(tmp_path):
    rejects(tmp_path, ValueError, r"Invalid metadata column name 'a\\tb'", metadata={"a\tb": [1] * N, "c": [1] * N})


def test_invalid_reduce_option(tmp_path):
    rejects(tmp_path, ValueError, r"Received: reduce='tsne'. Expected one of 'auto', 'pca', 'none'", reduce="tsne")


def test_invalid_pca_components(tmp_path):
    rejects(tmp_path, ValueError, r"Received: pca_components=0\. Expected an int >= 1\.", pca_components=0)


def test_pca_components_not_an_int(tmp_path):
    rejects(tmp_path, TypeError, r"Received: pca_components=2\.5 \(float\)\. Expected an int >= 1\.",
            pca_components=2.5)


def test_corrupt_existing_config(tmp_path):
    run_dir = tmp_path / "logs" / "r"
    run_dir.mkdir(parents=True)
    (run_dir / "projector_config.pbtxt").write_text("embeddings { nonsense: 1 }")
    with pytest.raises(ValueError, match=r"not a valid ProjectorConfig"):
        export_embeddings(tmp_path / "logs", {"e": good()}, run="r")
    assert sorted(os.listdir(run_dir)) == ["projector_config.pbtxt"]


def test_foreign_checkpoint_in_run_dir(tmp_path):
    run_dir = tmp_path / "logs" / "r"
    run_dir.mkdir(parents=True)
    (run_dir / "checkpoint").write_text('model_checkpoint_path: "ckpt-5"\n')
    with pytest.raises(ValueError, match=r"projector_export did not write"):
        export_embeddings(tmp_path / "logs", {"e": good()}, run="r")
    assert sorted(os.listdir(run_dir)) == ["checkpoint"]


def test_standalone_rejects_the_same_input(tmp_path):
    with pytest.raises(ValueError, match=r"2 value\(s\) are NaN"):
        export_standalone(tmp_path / "out", {"e": np.full((1, 2), np.nan)})
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("char", ["[", "]", "*", "?"])
def test_glob_characters_in_the_run_name(tmp_path, char):
    """TensorFlow's checkpoint lookups glob: such a run would never be listed. Refused before anything is written."""
    with pytest.raises(ValueError, match=r"(glob pattern|break TensorBoard's URLs)"):
        export_embeddings(tmp_path / "logs", {"e": good()}, run=f"run{char}1")
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize("folder", ["logs[1]", "a*b", "what?"])
def test_glob_characters_in_the_logdir_path(tmp_path, folder):
    with pytest.raises(ValueError, match=r"read as a glob pattern.*"
                                         r"Choose a log dir whose path has none of \[ \] \* \?"):
        export_embeddings(tmp_path / folder / "logs", {"e": good()}, run="r")
    assert os.listdir(tmp_path) == []


# What os.listdir gives for a Latin-1 file name (b"caf\xe9.png"): a lone surrogate, which UTF-8 cannot encode.
LATIN1_NAME = os.fsdecode(b"caf\xe9.png")


def test_metadata_text_utf8_cannot_hold_is_refused_naming_column_row_and_fix(tmp_path):
    """Before: a UnicodeEncodeError naming neither, after the run folder, the lock and the sprite were written."""
    rejects(tmp_path, ValueError, r"^Invalid metadata column 'file', row 2: 'caf\\udce9\.png' cannot be written to the "
                                  r"metadata file \(UTF-8\): it holds the lone surrogate U\+DCE9 .* Decode such text "
                                  r"first, e\.g\. os\.fsencode\(name\)\.decode\('latin-1'\)",
            metadata={"label": [0, 1, 2, 3], "file": ["a", "b", LATIN1_NAME, "d"]},
            images=np.zeros((N, 2, 2), np.uint8))


def test_a_metadata_column_name_utf8_cannot_hold_is_refused(tmp_path):
    rejects(tmp_path, ValueError, r"^Invalid metadata column name 'caf\\udce9\.png': it holds the lone surrogate",
            metadata={"label": [0, 1, 2, 3], LATIN1_NAME: list("abcd")})


@pytest.mark.parametrize("what", ["tensor", "run", "logdir"])
def test_names_utf8_cannot_hold_are_refused_before_anything_is_written(tmp_path, what):
    """Before: TensorFlow's "Error converting unicode string", after the run folder and the lock were written."""
    logdir = tmp_path / (LATIN1_NAME if what == "logdir" else "logs")
    with pytest.raises(ValueError, match=r"^Invalid (embedding name|run|logdir) .*the lone surrogate U\+DCE9"):
        export_embeddings(logdir, {LATIN1_NAME if what == "tensor" else "e": good()},
                          run=LATIN1_NAME if what == "run" else "r")
    assert os.listdir(tmp_path) == []
