"""Where a training runs: a `tf.distribute` strategy, and whether this process is the chief that writes the run.

`--strategy default` is one device; `mirrored` is `tf.distribute.MirroredStrategy` over the local GPUs, or over
`--cpu-replicas N` logical CPU devices; `multi-worker` is `tf.distribute.MultiWorkerMirroredStrategy` configured
by the standard `TF_CONFIG` environment variable. Only the chief writes into the run directory (scalars,
snapshots, pictures, checkpoints, `model.keras`); the other workers run the same training steps and write
nothing, and the chief's snapshot and picture callbacks run on the chief alone.

Keras 3 `fit` does not run under `MultiWorkerMirroredStrategy` as shipped (keras-team/keras#20585,
tensorflow/tensorflow#72388: its per-step metric reduction and its first-batch build call `strategy.reduce` in
ways that strategy rejects). `prepare_multi_worker` gives the model train and test functions that run the step
with `strategy.run` and average the scalars with `strategy.reduce(MEAN, axis=None)`, and `fit` receives
datasets distributed by `strategy.experimental_distribute_dataset` (TensorFlow's documented input pipeline).
`fit` itself then runs outside the strategy's scope, so whatever the chief's callbacks compute (`predict`,
sub-models) runs locally on the chief, without collective operations that would wait for the other workers.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping

STRATEGIES = ("default", "mirrored", "multi-worker")
TF_CONFIG = "TF_CONFIG"
_TF_CONFIG_EXAMPLE = (
    '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'
)


@dataclasses.dataclass(frozen=True)
class Cluster:
    """This process's place in the training: its task and whether it is the chief (the one that writes)."""

    task_type: str | None
    task_index: int
    num_workers: int

    @property
    def is_chief(self) -> bool:
        """Keras' rule: the `chief` task if the cluster has one, else worker 0."""
        if self.task_type in (None, "chief"):
            return True
        return self.task_type == "worker" and self.task_index == 0 and not self._has_chief

    _has_chief: bool = False


def check_strategy(strategy: str, cpu_replicas: int, environ: Mapping[str, str] | None = None) -> Cluster:
    """Checks the strategy flags and `TF_CONFIG` before anything is written; returns this process's place.

    Raises ValueError with one line naming the fix: an unknown strategy, `cpu_replicas` with a strategy other
    than `mirrored`, `multi-worker` without `TF_CONFIG`, or a `TF_CONFIG` that is not valid JSON of a cluster
    and a task in it.
    """
    environ = os.environ if environ is None else environ
    if strategy not in STRATEGIES:
        raise ValueError(f"Unknown strategy {strategy!r}. Expected one of: {', '.join(STRATEGIES)}.")
    if cpu_replicas and strategy != "mirrored":
        raise ValueError(
            f"--cpu-replicas {cpu_replicas} needs --strategy mirrored (received --strategy {strategy}). "
            "Fix: add --strategy mirrored, or drop --cpu-replicas."
        )
    if strategy != "multi-worker":
        return Cluster(None, 0, 1)
    text = environ.get(TF_CONFIG, "")
    if not text.strip():
        raise ValueError(
            f"--strategy multi-worker needs the environment variable {TF_CONFIG} describing the cluster. "
            f"Fix: set it on every worker, e.g. {TF_CONFIG}='{_TF_CONFIG_EXAMPLE}' (index: this worker's)."
        )
    return _parse_tf_config(text)


def _parse_tf_config(text: str) -> Cluster:
    fix = f"Fix: set {TF_CONFIG} to JSON such as '{_TF_CONFIG_EXAMPLE}'."
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{TF_CONFIG} is not valid JSON ({error}). {fix}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not cluster or not all(
        isinstance(v, list) and v and all(isinstance(a, str) and ":" in a for a in v) for v in cluster.values()
    ):
        raise ValueError(f"{TF_CONFIG} has no \"cluster\" mapping task types to lists of \"host:port\". {fix}")
    if not isinstance(task, dict) or task.get("type") not in cluster:
        raise ValueError(
            f"{TF_CONFIG}'s \"task\" must name a type of its cluster ({', '.join(cluster)}), received "
            f"{task!r}. {fix}"
        )
    index = task.get("index")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(cluster[task["type"]]):
        raise ValueError(
            f"{TF_CONFIG}'s task index {index!r} is not one of the {len(cluster[task['type']])} "
            f"{task['type']!r} addresses. {fix}"
        )
    workers = len(cluster.get("chief", [])) + len(cluster.get("worker", []))
    return Cluster(task["type"], index, workers, _has_chief="chief" in cluster)


def make_strategy(strategy: str, cpu_replicas: int = 0):
    """The `tf.distribute.Strategy` named `strategy` (after `check_strategy`).

    `cpu_replicas` splits the CPU into that many logical devices first, which TensorFlow allows only before it
    initialises its devices: call this before any other TensorFlow work of the process.
    """
    import tensorflow as tf

    if strategy == "default":
        return tf.distribute.get_strategy()
    if strategy == "multi-worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if not cpu_replicas:
        return tf.distribute.MirroredStrategy()
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_replicas)
    except RuntimeError:  # devices already initialised: fine if they are already split this way
        if len(tf.config.list_logical_devices("CPU")) != cpu_replicas:
            raise RuntimeError(
                f"--cpu-replicas {cpu_replicas}: TensorFlow's devices were initialised before the CPU could be "
                "split. Fix: create the strategy first in the process (a fresh `projector-train`)."
            ) from None
    return tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(cpu_replicas)])


def describe(strategy, batch_size: int) -> str:
    """One line for the terminal: the strategy, its replicas, and each replica's share of the global batch."""
    replicas = strategy.num_replicas_in_sync
    share = f"{batch_size // replicas}" if batch_size % replicas == 0 else f"about {batch_size / replicas:.1f}"
    return (f"Strategy {type(strategy).__name__}: {replicas} replica(s) in sync, global batch {batch_size} "
            f"= {share} per replica")


def is_multi_worker(strategy) -> bool:
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def prepare_multi_worker(model, strategy) -> None:
    """Train and test functions for `fit` under `MultiWorkerMirroredStrategy` (see the module docstring).

    `model` was built and compiled in `strategy.scope()`; `fit` is then called outside it, with datasets from
    `distribute_dataset`.
    """
    import tensorflow as tf

    def make(step):
        @tf.function(reduce_retracing=True)
        def function(iterator):
            outputs = strategy.run(step, args=(next(iterator),))
            return {key: strategy.reduce("MEAN", value, axis=None) for key, value in outputs.items()}

        return function

    model._distribute_strategy = None  # skips Keras' first-batch build, the model is built already
    model.train_function = make(model.train_step)
    model.test_function = make(model.test_step)


def distribute_dataset(strategy, dataset):
    """`dataset` (of global batches) split across the workers by data, as TensorFlow documents for in-memory data."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(dataset.with_options(options))
