"""The examples' `main` on tiny data made here (no download), read back through TensorBoard's projector plugin."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from _projector_client import ProjectorClient, sprite_cell

from projector_export import tensorboard_command
from projector_export.error_metadata import COLUMNS, DYNAMICS_COLUMNS

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PROBE = 8


def _example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tensors(client: ProjectorClient, run: str) -> dict[str, list[int]]:
    return {e["tensorName"]: [int(s) for s in e["tensorShape"]] for e in client.info(run)["embeddings"]}


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_text_embeddings(tmp_path, rng, capsys):
    example = _example("text_embeddings")
    vocabulary = [*example.RESERVED, *(f"word{i}" for i in range(12))]
    tokens = rng.integers(1, len(vocabulary), (24, 6))
    labels = np.arange(24) % 2
    example.main(str(tmp_path), data=(tokens[:16], labels[:16], tokens[16:], labels[16:], vocabulary), epochs=1,
                 every=2, batch_size=4, probe_size=PROBE)
    assert capsys.readouterr().out.rstrip().endswith(tensorboard_command(str(tmp_path)))
    client = ProjectorClient(tmp_path)
    steps = (0, 2, 4)
    assert _tensors(client, "text") == {
        **{f"review/step_{s:06d}": [PROBE, 16] for s in steps},
        **{f"words/step_{s:06d}": [len(vocabulary), 16] for s in steps},
        **{f"class_weights/step_{s:06d}": [2, 16] for s in steps},
    }
    assert client.metadata_columns("text", "words/step_000004") == {"label": vocabulary}
    columns = client.metadata_columns("text", "review/step_000004")
    assert list(columns) == [*COLUMNS, *DYNAMICS_COLUMNS, "text"]
    assert columns["label"] == [("negative", "positive")[y] for y in labels[16:]]
    assert columns["text"][0] == " ".join(vocabulary[t] for t in tokens[16])


def test_cifar10_cnn_draws_rgb_thumbnails(tmp_path, rng, capsys):
    example = _example("cifar10_cnn")
    images = rng.integers(0, 256, (20, 8, 8, 3), dtype=np.uint8)
    labels = np.arange(20) % 3
    example.main(str(tmp_path), data=(images[:12], labels[:12], images[12:], labels[12:]), epochs=1, every=1000,
                 batch_size=4, probe_size=PROBE)
    assert capsys.readouterr().out.rstrip().endswith(tensorboard_command(str(tmp_path)))
    client = ProjectorClient(tmp_path)
    assert _tensors(client, "cifar10") == {
        **{f"conv1/step_{s:06d}": [PROBE, PROBE] for s in (0, 3)},  # 8×8×32 reduced by PCA to N components
        **{f"conv2/step_{s:06d}": [PROBE, PROBE] for s in (0, 3)},
        **{f"fc1/step_{s:06d}": [PROBE, 64] for s in (0, 3)},
        **{f"logits/step_{s:06d}": [PROBE, 10] for s in (0, 3)},
        **{f"class_weights/step_{s:06d}": [10, 64] for s in (0, 3)},
    }
    sprite = client.sprite("cifar10", "fc1/step_000003")
    assert sprite.shape[2] == 3
    for i in range(PROBE):
        np.testing.assert_array_equal(sprite_cell(sprite, i, (8, 8)), images[12 + i])
    assert client.metadata_columns("cifar10", "fc1/step_000003")["label"] == [
        ("airplane", "automobile", "bird")[y] for y in labels[12:]]


def test_mnist_mlp_shows_the_digits_beside_flat_inputs(tmp_path, rng, capsys):
    example = _example("mnist_mlp")
    digits = rng.integers(0, 256, (20, 5, 5), dtype=np.uint8)
    labels = np.arange(20) % 10
    example.main(str(tmp_path), data=(digits[:12], labels[:12], digits[12:], labels[12:]), epochs=1, every=1000,
                 batch_size=4, probe_size=PROBE)
    assert capsys.readouterr().out.rstrip().endswith(tensorboard_command(str(tmp_path)))
    client = ProjectorClient(tmp_path)
    assert _tensors(client, "mnist-mlp") == {
        **{f"hidden1/step_{s:06d}": [PROBE, 128] for s in (0, 3)},
        **{f"hidden2/step_{s:06d}": [PROBE, 64] for s in (0, 3)},
        **{f"logits/step_{s:06d}": [PROBE, 10] for s in (0, 3)},
        **{f"class_weights/step_{s:06d}": [10, 64] for s in (0, 3)},
    }
    sprite = client.sprite("mnist-mlp", "hidden1/step_000003")
    for i in range(PROBE):
        np.testing.assert_array_equal(sprite_cell(sprite, i, (5, 5)).reshape(5, 5, -1)[..., 0], digits[12 + i])
