"""Distribution strategies of a train run: one device, all local GPUs, or several machines.

`--strategy` picks a `tf.distribute` strategy:

- `"none"`: TensorFlow's default strategy (one device).
- `"mirrored"`: `tf.distribute.MirroredStrategy()`, every local GPU (the CPU when there is
  none); one replica per GPU, gradients all-reduced after each step.
- `"multiworker"`: `tf.distribute.MultiWorkerMirroredStrategy()`, synchronous training over
  several processes or machines. Each worker reads its place in the cluster from the
  standard `TF_CONFIG` environment variable, e.g. `{"cluster": {"worker": ["host1:2222",
  "host2:2222"]}, "task": {"type": "worker", "index": 0}}`; this package reads
  `TF_CONFIG`, never sets it.
- `"auto"` (default): `"multiworker"` when `TF_CONFIG` names more than one chief/worker
  task, else `"mirrored"` when there is more than one GPU, else `"none"`.

The batch size of a run is the global batch: the `tf.data` pipeline batches at that size
and `tf.distribute` splits each batch between the replicas (with 2 replicas and
`--batch-size 64`, each computes its gradient on 32 images and the gradients are averaged,
as one device would do on the 64). Datasets read
from a prepared folder (`ninception prepare`: record shards) get `AutoShardPolicy.FILE`:
each worker reads its own shard files. The others get `AutoShardPolicy.DATA`: every worker
runs the whole input pipeline and keeps its share of each global batch (`FILE` sharding
needs one file per worker at least and does not apply to in-memory sources such as the
embedded digits, nor to an image folder, which TFDS reads as one list of examples).

The chief (task `chief`, or `worker` 0 when the cluster has no `chief` job) is the only one
that writes the run folder; see `train`.

TensorFlow backend only (`tf.distribute`): on another Keras backend `make_strategy` raises
`RuntimeError` naming it for `"mirrored"` and `"multiworker"`.
"""

import dataclasses
import json
import os

import tensorflow as tf

from keras_ninception.checks import check_tensorflow_backend
from keras_ninception.options import STRATEGIES  # noqa: F401 (re-exported)

CLUSTER_JOBS = ("chief", "worker")


def read_tf_config(environ=None):
    """The `TF_CONFIG` environment variable as a dict (`{}` when unset or empty).

    Raises:
        ValueError: `TF_CONFIG` is not a JSON object.
    """
    text = (os.environ if environ is None else environ).get("TF_CONFIG", "")
    if not text.strip():
        return {}
    try:
        tf_config = json.loads(text)
    except ValueError:
        tf_config = None
    if not isinstance(tf_config, dict):
        raise ValueError(f"The TF_CONFIG environment variable is not a JSON object. Received: TF_CONFIG={text[:200]!r}")
    return tf_config


def cluster_size(tf_config):
    """The number of chief and worker tasks in a parsed `TF_CONFIG` (0 without a cluster)."""
    cluster = tf_config.get("cluster") or {}
    return sum(len(cluster.get(job) or ()) for job in CLUSTER_JOBS)


def resolve_strategy(name, tf_config, num_gpus):
    """`"none"`, `"mirrored"` or `"multiworker"` for a `--strategy` (see the module docstring).

    Args:
        name: one of `STRATEGIES`.
        tf_config: the parsed `TF_CONFIG` (`read_tf_config`).
        num_gpus: the number of local GPUs.

    Raises:
        ValueError: an unknown name, or `"multiworker"` without a `TF_CONFIG` cluster.
    """
    if name not in STRATEGIES:
        raise ValueError(f"`strategy` must be one of {list(STRATEGIES)}. Received: strategy={name!r}")
    if name == "auto":
        if cluster_size(tf_config) > 1:
            return "multiworker"
        return "mirrored" if num_gpus > 1 else "none"
    if name == "multiworker" and not cluster_size(tf_config):
        raise ValueError(
            "--strategy multiworker reads the cluster from the TF_CONFIG environment variable, "
            "which names no chief or worker task; set it on every machine, e.g. "
            '{"cluster": {"worker": ["host1:2222", "host2:2222"]}, "task": {"type": "worker", '
            f'"index": 0}}. Received: TF_CONFIG={json.dumps(tf_config)[:200]!r}'
        )
    return name


@dataclasses.dataclass(frozen=True)
class Role:
    """This process's place in a run.

    Attributes:
        task_type: `"chief"` or `"worker"` in a multi-worker run, else None.
        task_id: the task's index in its job.
        is_chief: whether this process writes the run folder.
    """

    task_type: str | None = None
    task_id: int = 0
    is_chief: bool = True


def worker_role(strategy_name, tf_config):
    """The `Role` of this process for a resolved strategy name.

    Only `"multiworker"` has several processes; its chief is the `chief` task, or `worker`
    0 when the cluster has no `chief` job (TensorFlow's rule).

    Raises:
        ValueError: a `TF_CONFIG` task that is not one of the cluster's chief/worker tasks.
    """
    if strategy_name != "multiworker":
        return Role()
    task = tf_config.get("task") or {}
    task_type, index = task.get("type"), task.get("index", 0)
    cluster = tf_config.get("cluster") or {}
    tasks = cluster.get(task_type) or ()
    if task_type not in CLUSTER_JOBS or not isinstance(index, int) or not 0 <= index < len(tasks):
        raise ValueError(
            "TF_CONFIG's task must be one of its cluster's chief or worker tasks, e.g. "
            '{"type": "worker", "index": 0}. Received: '
            f"TF_CONFIG task={json.dumps(task)!r}, cluster jobs={sorted(cluster)}"
        )
    is_chief = task_type == "chief" or (task_type == "worker" and index == 0 and not cluster.get("chief"))
    return Role(task_type, index, is_chief)


class _MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """`MultiWorkerMirroredStrategy` whose `reduce` accepts what Keras 3's `fit` passes it.

    Keras 3.15's TensorFlow trainer calls `strategy.reduce("MEAN", batch, axis=None)` on a
    whole nested batch (to build the model's metrics from its shapes), and
    `strategy.reduce("MEAN", logs, axis=0)` on scalar logs after each step. The collective
    strategy refuses both ("Attempt to convert a value (PerReplica...)" and "Invalid
    reduction dimension 0 for input with 0 dimensions"; tensorflow/tensorflow#72388), so
    `fit` fails on more than one worker. This reduces each tensor of a nest on its own (as
    `MirroredStrategy` does) and a scalar across the replicas only. The epoch's logs that
    callbacks see are Keras' metric results, aggregated over all workers either way.
    """

    def reduce(self, reduce_op, value, axis):
        base = super().reduce

        def reduce_one(v):
            scalar = self.experimental_local_results(v)[0].shape.rank == 0
            return base(reduce_op, v, axis=None if scalar else axis)

        return tf.nest.map_structure(reduce_one, value)


def make_strategy(strategy_name):
    """The `tf.distribute.Strategy` of a resolved name (`"none"`, `"mirrored"`, `"multiworker"`).

    Create it before any other TensorFlow work: `MultiWorkerMirroredStrategy` configures the
    collective ops, which is refused once TensorFlow's runtime is initialized, and connects
    to the other workers (it waits until every worker of `TF_CONFIG` has started).

    Raises:
        RuntimeError: `"mirrored"` or `"multiworker"` when Keras does not run on TensorFlow.
    """
    if strategy_name in ("mirrored", "multiworker"):
        check_tensorflow_backend(f"--strategy {strategy_name} (tf.distribute)")
    if strategy_name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if strategy_name == "multiworker":
        return _MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def shard(dataset, by_file):
    """`shard_by_file(dataset)` when `by_file` (splits read from record files), else
    `shard_by_data(dataset)`."""
    return shard_by_file(dataset) if by_file else shard_by_data(dataset)


def shard_by_file(dataset):
    """`dataset` with `AutoShardPolicy.FILE`: each worker reads its own share of the files.

    For splits read from record files (a prepared folder): tf.data finds the list of files
    the reader starts from and gives worker `i` of `n` the files `i, i + n, ...`, so no
    worker reads or decodes another's images. A worker's number of examples then depends
    on its files' sizes; `tf.distribute` ends the epoch for all workers together.
    """
    if dataset is None:
        return None
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.FILE
    return dataset.with_options(options)


def shard_by_data(dataset):
    """`dataset` with `AutoShardPolicy.DATA` (each worker keeps its share of every batch)."""
    if dataset is None:
        return None
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def describe(strategy_name, strategy, batch_size):
    """`mirrored: 2 replica(s), global batch 64 (32 per replica)`, for the run's log."""
    replicas = strategy.num_replicas_in_sync
    return f"{strategy_name}: {replicas} replica(s), global batch {batch_size} ({batch_size // replicas} per replica)"
