"""export_embeddings end to end: what TensorBoard's real projector plugin serves equals what went in."""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest
from _projector_client import ProjectorClient, sprite_cell
from _tensorboard_reader import Served

from projector_export import export_embeddings
from projector_export.metadata import ASSETS_DIRNAME
from projector_export.metadata_tsv import BLANK_VALUE

N = 7


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return {
        "a": rng.standard_normal((N, 5)),                      # float64 in, float32 out
        "b": rng.integers(-3, 3, size=(N, 3)).astype(np.int16),  # ints are real numbers too
        "images": rng.integers(0, 256, size=(N, 5, 4, 3), dtype=np.uint8),
    }


def test_tensors_metadata_and_sprite_are_served_exactly(tmp_path, data):
    result = export_embeddings(
        tmp_path, {"conv2/step_000001": data["a"], "dense": data["b"]}, run="run1",
        images=data["images"], metadata={"label": list(range(N)), "name": [f"x{i}" for i in range(N)]},
    )
    served = ProjectorClient(tmp_path)
    assert served.runs() == ["run1"]
    assert [e["tensorName"] for e in served.info("run1")["embeddings"]] == ["conv2/step_000001", "dense"]
    np.testing.assert_array_equal(served.tensor("run1", "conv2/step_000001"), data["a"].astype(np.float32))
    np.testing.assert_array_equal(served.tensor("run1", "dense"), data["b"].astype(np.float32))
    lines = served.metadata("run1", "dense").split("\n")
    assert lines == ["label\tname"] + [f"{i}\tx{i}" for i in range(N)] + [""]
    info = served.embedding_info("run1", "dense")
    cell = tuple(info["sprite"]["singleImageDim"])
    assert cell == (4, 5)  # (width, height)
    sprite = served.sprite("run1", "dense")
    for i in range(N):
        np.testing.assert_array_equal(sprite_cell(sprite, i, cell), data["images"][i])
    assert [t.shape for t in result.tensors] == [(N, 5), (N, 3)]
    assert result.sprite_path and os.path.isfile(result.sprite_path)


def test_single_column_has_no_header_and_values_cannot_break_rows(tmp_path, data):
    values = ["tab\there", "new\nline", "cr\rlf", "日本語 ünïcode", "", "   ", "plain"]
    export_embeddings(tmp_path, {"e": data["a"]}, run="r", metadata=values)
    text = ProjectorClient(tmp_path).metadata("r", "e")
    expected = ["tab here", "new line", "cr lf", "日本語 ünïcode", BLANK_VALUE, BLANK_VALUE, "plain", ""]
    assert text.split("\n") == expected


def test_grayscale_float_images_dark_on_white(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.random((5, 3, 2, 1))
    export_embeddings(tmp_path, {"e": rng.random((5, 2))}, run="r", images=images, dark_on_white=True)
    served = ProjectorClient(tmp_path)
    sprite = served.sprite("r", "e")
    assert sprite.ndim == 2  # grayscale PNG
    expected = 255 - np.rint(images[..., 0] * 255).astype(np.uint8)
    for i in range(5):
        np.testing.assert_array_equal(sprite_cell(sprite, i, (2, 3)), expected[i])


def test_incremental_exports_append_without_rewriting(tmp_path, data, monkeypatch):
    from projector_export import checkpoint

    monkeypatch.setattr(checkpoint, "GRACE_SECONDS", 0.0)  # superseded bundles go at once (see the next test)
    served = None
    for step in range(1, 4):
        result = export_embeddings(tmp_path, {f"conv2/step_{step:06d}": data["a"] * step}, run="r",
                                   images=data["images"], metadata=list(range(N)))
        if served is None:
            served = ProjectorClient(tmp_path)
        # The same plugin instance picks up every new export (it watches the checkpoint state).
        names = [e["tensorName"] for e in served.info("r")["embeddings"]]
        assert names == [f"conv2/step_{s:06d}" for s in range(1, step + 1)]
        for s in range(1, step + 1):
            np.testing.assert_array_equal(served.tensor("r", f"conv2/step_{s:06d}"), (data["a"] * s).astype(np.float32))
        if step > 1:
            # The sprite and metadata already existed: only the bundle and the config were written.
            assert [os.path.basename(p) for p in result.files_written] == [
                os.path.basename(result.checkpoint_prefix) + ".index", "projector_config.pbtxt",
                "projector_config.pbtxt"]
    assets = sorted(os.listdir(tmp_path / "r" / ASSETS_DIRNAME))
    # Generation 3 holds three shards (one per export); generation 2 is kept, generation 1 deleted.
    assert [a for a in assets if a.startswith("embeddings-000003.data")] == [
        f"embeddings-000003.data-0000{i}-of-00003" for i in range(3)]
    assert not any(a.startswith("embeddings-000001") for a in assets)
    # Nothing earlier was copied: generation 3's first two shards are generation 2's files (hard links).
    projector_dir = tmp_path / "r" / ASSETS_DIRNAME
    assert {os.stat(projector_dir / f"embeddings-000003.data-0000{i}-of-00003").st_ino for i in range(2)} == {
        os.stat(projector_dir / f"embeddings-000002.data-0000{i}-of-00002").st_ino for i in range(2)}
    assert not any(a.startswith((".staging-", ".tmp-")) for a in assets)
    assert len([a for a in assets if a.startswith("sprite-")]) == 1


def test_a_superseded_bundle_stays_for_the_grace_period(tmp_path, data, monkeypatch):
    """A reader that read an older config just before an export still finds its bundle."""
    from projector_export import checkpoint

    for step in range(1, 4):
        export_embeddings(tmp_path, {f"e/{step}": data["a"]}, run="r")
    bundles = _bundles(tmp_path / "r")
    assert bundles == ["embeddings-000001", "embeddings-000002", "embeddings-000003"]
    monkeypatch.setattr(checkpoint, "GRACE_SECONDS", 0.0)
    export_embeddings(tmp_path, {"e/4": data["a"]}, run="r")
    bundles = _bundles(tmp_path / "r")
    assert bundles == ["embeddings-000003", "embeddings-000004"]


def test_reexporting_a_name_replaces_it(tmp_path, data):
    export_embeddings(tmp_path, {"e": data["a"], "keep": data["b"]}, run="r", metadata=["old"] * N)
    export_embeddings(tmp_path, {"e": data["a"] * 10}, run="r", metadata=["new"] * N)
    served = ProjectorClient(tmp_path)
    assert sorted(e["tensorName"] for e in served.info("r")["embeddings"]) == ["e", "keep"]
    np.testing.assert_array_equal(served.tensor("r", "e"), (data["a"] * 10).astype(np.float32))
    np.testing.assert_array_equal(served.tensor("r", "keep"), data["b"].astype(np.float32))
    assert served.metadata("r", "e") == "new\n" * N
    assert served.metadata("r", "keep") == "old\n" * N
    export_embeddings(tmp_path, {"keep": data["b"]}, run="r", metadata=["newer"] * N)
    # The metadata only the previous config refers to is kept one export longer (a reader may have
    # read that config a moment ago), then deleted.
    metadata_files = glob.glob(str(tmp_path / "r" / ASSETS_DIRNAME / "metadata-*"))
    assert len(metadata_files) == 3
    export_embeddings(tmp_path, {"other": data["b"]}, run="r", metadata=["newer"] * N)
    metadata_files = glob.glob(str(tmp_path / "r" / ASSETS_DIRNAME / "metadata-*"))
    assert len(metadata_files) == 2


def test_wide_tensor_is_reduced_with_pca(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((40, 300)) @ np.diag(np.linspace(3, 0.1, 300))
    result = export_embeddings(tmp_path, {"wide": x}, run="r", pca_components=10)
    (tensor,) = result.tensors
    assert tensor.shape == (40, 10) and tensor.input_shape == (40, 300)
    centered = x - x.mean(axis=0)
    u, s, _ = np.linalg.svd(centered, full_matrices=False)
    served = ProjectorClient(tmp_path).tensor("r", "wide")
    # Principal-component coordinates, each up to its sign.
    np.testing.assert_allclose(np.abs(served), np.abs(u[:, :10] * s[:10]), rtol=1e-4, atol=1e-4)
    assert tensor.explained_variance_ratio == pytest.approx(np.sum(s[:10] ** 2) / np.sum(s**2), rel=1e-5)


def test_reduce_none_keeps_wide_tensor(tmp_path):
    x = np.random.default_rng(3).random((4, 300))
    export_embeddings(tmp_path, {"wide": x}, run="r", reduce="none")
    np.testing.assert_array_equal(ProjectorClient(tmp_path).tensor("r", "wide"), x.astype(np.float32))


def test_several_runs_and_the_logdir_itself(tmp_path, data):
    export_embeddings(tmp_path, {"e": data["a"]}, run="one")
    export_embeddings(tmp_path, {"e": data["a"] * 2}, run="two")
    served = ProjectorClient(tmp_path)
    assert sorted(served.runs()) == ["one", "two"]
    np.testing.assert_array_equal(served.tensor("two", "e"), (data["a"] * 2).astype(np.float32))
    alone = tmp_path / "alone"
    export_embeddings(alone, {"e": data["b"]})
    assert ProjectorClient(alone).runs() == ["."]


def test_event_file_is_created_only_when_missing(tmp_path, data):
    export_embeddings(tmp_path, {"e": data["a"]}, run="r")
    events = glob.glob(str(tmp_path / "r" / "events.out.tfevents.*"))
    assert len(events) == 1
    export_embeddings(tmp_path, {"f": data["a"]}, run="r")
    assert glob.glob(str(tmp_path / "r" / "events.out.tfevents.*")) == events


def test_an_export_interrupted_before_publishing_leaves_the_previous_state(tmp_path, data, monkeypatch):
    """The bundle is complete before the config is written; an interruption before that keeps the old export and
    removes the new one's files at once."""
    from projector_export import checkpoint

    export_embeddings(tmp_path, {"first": data["a"]}, run="r", metadata=list(range(N)))
    served = ProjectorClient(tmp_path)
    assert [e["tensorName"] for e in served.info("r")["embeddings"]] == ["first"]
    files = sorted(os.listdir(tmp_path / "r" / ASSETS_DIRNAME))

    def interrupted(*args):
        raise KeyboardInterrupt("interrupted before the config is written")

    monkeypatch.setattr(checkpoint, "publish", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_embeddings(tmp_path, {"second": data["b"]}, run="r", metadata=list(range(N)),
                          images=data["images"])
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path / "r" / ASSETS_DIRNAME)) == files  # no bundle, sprite or staging left
    # The running TensorBoard still serves the previous export, intact (the merge hard-linked the
    # previous bundle's files instead of moving them).
    assert [e["tensorName"] for e in served.info("r")["embeddings"]] == ["first"]
    np.testing.assert_array_equal(served.tensor("r", "first"), data["a"].astype(np.float32))
    np.testing.assert_array_equal(ProjectorClient(tmp_path).tensor("r", "first"), data["a"].astype(np.float32))
    # The next export goes on from the previous one: the unpublished "second" is not in its config.
    export_embeddings(tmp_path, {"third": data["a"] * 3}, run="r")
    served.reload()
    assert [e["tensorName"] for e in served.info("r")["embeddings"]] == ["first", "third"]
    np.testing.assert_array_equal(served.tensor("r", "first"), data["a"].astype(np.float32))
    np.testing.assert_array_equal(served.tensor("r", "third"), (data["a"] * 3).astype(np.float32))
    bundles = _bundles(tmp_path / "r")
    assert bundles == ["embeddings-000001", "embeddings-000002"]


@pytest.mark.integration
def test_real_mnist_test_images(tmp_path, mnist):
    images, labels = mnist.test_images, mnist.test_labels
    pixels = images.reshape(len(images), -1)
    result = export_embeddings(tmp_path, {"pixels": pixels}, run="mnist", images=images,
                               metadata={"label": labels, "index": np.arange(len(images))}, dark_on_white=True)
    served = ProjectorClient(tmp_path)
    (tensor,) = result.tensors
    assert tensor.input_shape == (10_000, 784) and tensor.shape == (10_000, 128)
    # The tensor served is what the export says it wrote, and a PCA of the pixels by its own properties (checked
    # with plain numpy, not by running the exporter's PCA again): centred, uncorrelated coordinates of decreasing
    # variance, whose total is the reported share of the pixels' variance.
    coordinates = served.tensor("mnist", "pixels").astype(np.float64)
    np.testing.assert_array_equal(coordinates, result.arrays["pixels"])
    np.testing.assert_allclose(coordinates.mean(axis=0), 0, atol=1e-2)
    variances = coordinates.var(axis=0)
    assert (np.diff(variances) <= 1e-6 * variances[0]).all()
    covariance = np.cov(coordinates, rowvar=False)
    assert np.abs(covariance - np.diag(np.diag(covariance))).max() < 1e-3 * variances[0]
    kept = variances.sum() / pixels.astype(np.float64).var(axis=0).sum()
    assert tensor.explained_variance_ratio == pytest.approx(kept, rel=1e-4)
    rows = served.metadata("mnist", "pixels").split("\n")
    assert rows[0] == "label\tindex" and len(rows) == 10_002 and rows[-1] == ""
    assert rows[1:4] == [f"{labels[i]}\t{i}" for i in range(3)]
    sprite = served.sprite("mnist", "pixels")
    assert sprite.shape == (2800, 2800)
    for i in (0, 1, 4321, 9999):
        np.testing.assert_array_equal(sprite_cell(sprite, i, (28, 28)), 255 - images[i])


def test_explained_variance_is_written_as_a_text_summary(tmp_path):
    x = np.random.default_rng(4).standard_normal((30, 300))
    result = export_embeddings(tmp_path, {"conv/step_000001": x}, run="r", pca_components=5)
    (text,) = Served(tmp_path).texts["r"]["projector/reduction"].values()
    ratio = result.tensors[0].explained_variance_ratio
    assert f"| conv/step_000001 | 300 | 5 | {ratio:.1%} |" in text


def test_a_pca_computed_by_the_caller_is_written_as_it_is_and_reported(tmp_path):
    """A `PCAResult` (a snapshot's PCA, streamed while the forward pass ran) is written unchanged, and the export
    reports it exactly as its own PCA: input width, components and share of variance."""
    from projector_export import PCAResult

    coordinates = np.random.default_rng(5).standard_normal((30, 5)).astype(np.float32)
    given = PCAResult(coordinates, 0.8125, "randomized", input_dim=25088)
    result = export_embeddings(tmp_path, {"conv/step_000001": given, "fc": coordinates[:, :2]}, run="r")
    reduced, plain = result.tensors
    assert reduced.shape == (30, 5) and reduced.input_shape == (30, 25088)
    assert reduced.explained_variance_ratio == 0.8125 and plain.explained_variance_ratio is None
    np.testing.assert_array_equal(ProjectorClient(tmp_path).tensor("r", "conv/step_000001"), coordinates)
    (text,) = Served(tmp_path).texts["r"]["projector/reduction"].values()
    assert "| conv/step_000001 | 25088 | 5 | 81.2% |" in text
    with pytest.raises(ValueError, match="'bad'.*NaN or infinite"):
        export_embeddings(tmp_path, {"bad": PCAResult(np.full((30, 5), np.nan, np.float32), 1.0, "exact", 9)},
                          run="r")


def test_a_given_summary_writer_carries_every_reduction_summary_in_one_event_file(tmp_path):
    import tensorflow as tf

    rng = np.random.default_rng(5)
    writer = tf.summary.create_file_writer(str(tmp_path / "r"))  # a training run's own writer
    for step in (1, 2, 3):
        export_embeddings(tmp_path, {f"conv/step_00000{step}": rng.standard_normal((30, 300))}, run="r",
                          pca_components=5, summary_writer=writer)
    writer.close()
    assert len(glob.glob(str(tmp_path / "r" / "events.out.tfevents.*"))) == 1
    assert Served(tmp_path).steps("r", "text") == {"projector/reduction": [1, 2, 3]}


def test_concurrent_exports_into_one_run_are_serialised(tmp_path, data):
    """Two threads exporting into one run at once: both exports end up in the run, intact."""
    from concurrent.futures import ThreadPoolExecutor

    names = [f"layer/step_{i:06d}" for i in range(6)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(lambda i: export_embeddings(tmp_path, {names[i]: data["a"] * i}, run="r",
                                                  metadata=list(range(N))), range(6)))
    served = ProjectorClient(tmp_path)
    assert sorted(e["tensorName"] for e in served.info("r")["embeddings"]) == names
    for i, name in enumerate(names):
        np.testing.assert_array_equal(served.tensor("r", name), (data["a"] * i).astype(np.float32))


@pytest.mark.parametrize("umask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)])
def test_files_get_their_modes_from_the_umask(tmp_path, data, umask, file_mode, dir_mode):
    """A TensorBoard running as another user must be able to read every file (mkstemp would give 0600)."""
    previous = os.umask(umask)
    try:
        for step in (1, 2):
            export_embeddings(tmp_path / "logs", {f"e{step}": data["a"]}, run="r", images=data["images"],
                              metadata=list(range(N)))
    finally:
        os.umask(previous)
    modes = {}
    for folder, dirs, files in os.walk(tmp_path / "logs" / "r"):
        for name in dirs + files:
            path = os.path.join(folder, name)
            modes[os.path.relpath(path, tmp_path)] = os.stat(path).st_mode & 0o777
    assert {path: mode for path, mode in modes.items() if mode != (dir_mode if os.path.isdir(
        tmp_path / path) else file_mode)} == {}
    assert any(p.endswith("projector_config.pbtxt") for p in modes) and any(p.endswith("checkpoint") for p in modes)


def test_a_constant_wide_tensor_exports(tmp_path, data):
    """Zero variance is valid data: the PCA gives zeros, and sprite and metadata are written with it."""
    images = np.zeros((500, 2, 2), dtype=np.uint8)
    result = export_embeddings(tmp_path, {"flat": np.ones((500, 300))}, run="r", images=images,
                               metadata=list(range(500)))
    (tensor,) = result.tensors
    assert tensor.shape == (500, 128) and tensor.explained_variance_ratio == 1.0
    served = ProjectorClient(tmp_path)
    np.testing.assert_array_equal(served.tensor("r", "flat"), np.zeros((500, 128), dtype=np.float32))
    assert served.metadata("r", "flat") == "".join(f"{i}\n" for i in range(500))


def test_more_rows_than_the_projector_loads_warn(tmp_path):
    x = np.zeros((100_001, 2), dtype=np.float32)
    with pytest.warns(UserWarning, match=r"100,001 rows: TensorBoard's PROJECTOR loads only the first 100,000"):
        result = export_embeddings(tmp_path, {"big": x}, run="r")
    assert result.rows_shown == 100_000
    assert export_embeddings(tmp_path, {"small": x[:7]}, run="s").rows_shown == 7


def test_shards_are_compacted_into_one_past_the_limit(tmp_path, data, monkeypatch):
    """Each export adds a shard; once the previous bundle has MAX_SHARDS, the new one is rewritten as one."""
    from projector_export import checkpoint

    monkeypatch.setattr(checkpoint, "MAX_SHARDS", 3)
    counts = []
    for step in range(6):
        result = export_embeddings(tmp_path, {f"e/{step}": data["a"] + step}, run="r")
        counts.append(checkpoint.shard_count(result.checkpoint_prefix))
    assert counts == [1, 2, 3, 1, 2, 3]
    served = ProjectorClient(tmp_path)
    for step in range(6):
        np.testing.assert_array_equal(served.tensor("r", f"e/{step}"), (data["a"] + step).astype(np.float32))


def _bundles(run_dir) -> list[str]:
    """The checkpoint bundles in the run's projector folder, by prefix."""
    return sorted({f.split(".")[0] for f in os.listdir(run_dir / ASSETS_DIRNAME) if f.startswith("embeddings-")})


def test_a_mistyped_kill_point_is_refused_not_ignored(tmp_path, monkeypatch):
    from projector_export.kill_points import ENV_VAR

    monkeypatch.setenv(ENV_VAR, "config-writen")
    with pytest.raises(ValueError, match=r"Unknown kill point 'config-writen' in \$PROJECTOR_EXPORT_KILL_AT.*"
                                         r"config-written"):
        export_embeddings(tmp_path, {"a": np.ones((3, 2), np.float32)})
