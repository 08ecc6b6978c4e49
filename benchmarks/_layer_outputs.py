"""Real layer outputs of a short MNIST training, for the layout benchmarks (cached as one .npz file).

Trains a seed network (Adam, batch 64, the `projector-train` model) for `steps` steps and, at each of `snapshot_steps`,
runs `rows` training images through it and keeps each chosen layer's output as the exporter writes it: layers
wider than `PCA_THRESHOLD_DIM` reduced to their top `DEFAULT_PCA_COMPONENTS` principal components. Arrays are
`<layer>/step_<N>` (float32 rows × D) and `labels`.
"""

from __future__ import annotations

import os

import numpy as np

from projector_export import DEFAULT_PCA_COMPONENTS, PCA_THRESHOLD_DIM, pca
from projector_export.naming import snapshot_name


def layer_outputs(cache: str, *, model_name: str = "lenet", layers: tuple[str, ...] = ("conv2", "fc1"),
                  snapshot_steps: tuple[int, ...] = (100, 300), rows: int = 50_000, seed: int = 0) -> dict:
    """{`<layer>/step_<N>`: rows×D float32, "labels": rows int64}, read from `cache` or computed and saved there."""
    if os.path.exists(cache):
        with np.load(cache) as saved:
            return dict(saved)
    import keras

    from training.mnist import load_mnist
    from training.models import build_model, compile_model

    keras.utils.set_random_seed(seed)
    data = load_mnist()
    model = compile_model(build_model(model_name, data.image_shape, data.num_classes), 1e-4)
    probe = keras.Model(model.inputs, [model.get_layer(name).output for name in layers])
    images, labels = data.train_images[:rows], data.train_labels[:rows].astype(np.int64)
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {"labels": labels}
    done = 0
    for step in snapshot_steps:
        order = rng.integers(0, len(data.train_images), size=(step - done) * 64)
        if step > done:
            model.fit(data.train_images[order], data.train_labels[order], batch_size=64, epochs=1, verbose=0)
        done = step
        outputs = probe.predict(images, batch_size=500, verbose=0)
        for name, array in zip(layers, outputs, strict=True):
            flat = array.reshape(len(images), -1).astype(np.float32)
            if flat.shape[1] > PCA_THRESHOLD_DIM:
                flat = pca(flat, DEFAULT_PCA_COMPONENTS).coordinates
            out[snapshot_name(name, step)] = flat
    np.savez(cache, **out)
    return out
