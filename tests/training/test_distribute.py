"""Strategy choice from --strategy, TF_CONFIG and the GPU count, and each process's role."""

import json

import pytest

from keras_ninception import TrainConfig, train
from keras_ninception.training import distribute

TWO_WORKERS = {"cluster": {"worker": ["127.0.0.1:2000", "127.0.0.1:2001"]}, "task": {"type": "worker", "index": 1}}
ONE_WORKER = {"cluster": {"worker": ["127.0.0.1:2000"]}, "task": {"type": "worker", "index": 0}}


@pytest.mark.parametrize(
    "name, tf_config, num_gpus, expected",
    [
        ("auto", {}, 0, "none"),
        ("auto", {}, 1, "none"),
        ("auto", {}, 2, "mirrored"),
        ("auto", ONE_WORKER, 2, "mirrored"),  # a one-task cluster is one machine
        ("auto", TWO_WORKERS, 0, "multiworker"),
        ("none", TWO_WORKERS, 4, "none"),
        ("mirrored", {}, 0, "mirrored"),  # MirroredStrategy on the CPU
        ("multiworker", ONE_WORKER, 0, "multiworker"),
    ],
)
def test_resolve_strategy(name, tf_config, num_gpus, expected):
    assert distribute.resolve_strategy(name, tf_config, num_gpus) == expected


def test_multiworker_without_tf_config_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    run_dir = tmp_path / "run"
    with pytest.raises(ValueError, match="reads the cluster from the TF_CONFIG environment variable"):
        train(TrainConfig(model="nin", strategy="multiworker", run_dir=str(run_dir)))
    assert not run_dir.exists()
    with pytest.raises(ValueError, match=r"`strategy` must be one of .*Received: strategy='tpu'"):
        train(TrainConfig(model="nin", strategy="tpu", run_dir=str(run_dir)))


def test_tf_config_that_is_not_json_is_named(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{cluster: x}")
    with pytest.raises(ValueError, match=r"TF_CONFIG environment variable is not a JSON object. Received: TF_CONFIG='\{cluster: x\}'"):
        distribute.read_tf_config()
    monkeypatch.setenv("TF_CONFIG", json.dumps(TWO_WORKERS))
    assert distribute.read_tf_config() == TWO_WORKERS


@pytest.mark.parametrize(
    "cluster, task, expected",
    [
        ({"worker": ["a:1", "b:1"]}, {"type": "worker", "index": 0}, ("worker", 0, True)),
        ({"worker": ["a:1", "b:1"]}, {"type": "worker", "index": 1}, ("worker", 1, False)),
        ({"chief": ["c:1"], "worker": ["a:1"]}, {"type": "chief", "index": 0}, ("chief", 0, True)),
        ({"chief": ["c:1"], "worker": ["a:1"]}, {"type": "worker", "index": 0}, ("worker", 0, False)),
    ],
)
def test_the_chief_is_the_chief_task_or_worker_0(cluster, task, expected):
    role = distribute.worker_role("multiworker", {"cluster": cluster, "task": task})
    assert (role.task_type, role.task_id, role.is_chief) == expected
    assert distribute.worker_role("mirrored", {"cluster": cluster, "task": task}).is_chief


@pytest.mark.parametrize(
    "task", [{"type": "ps", "index": 0}, {"type": "worker", "index": 2}, {"type": "worker", "index": "0"}, {}]
)
def test_a_task_outside_the_cluster_is_refused(task):
    with pytest.raises(ValueError, match="TF_CONFIG's task must be one of its cluster's chief or worker tasks"):
        distribute.worker_role("multiworker", {"cluster": {"worker": ["a:1", "b:1"], "ps": ["p:1"]}, "task": task})


def test_datasets_are_sharded_by_data():
    import tensorflow as tf

    dataset = distribute.shard_by_data(tf.data.Dataset.range(4).batch(2))
    assert dataset.options().experimental_distribute.auto_shard_policy == tf.data.experimental.AutoShardPolicy.DATA
    assert distribute.shard_by_data(None) is None


def test_shard_picks_the_policy():
    import tensorflow as tf

    from keras_ninception.training import distribute

    dataset = tf.data.Dataset.range(4)
    policy = tf.data.experimental.AutoShardPolicy
    assert distribute.shard(dataset, True).options().experimental_distribute.auto_shard_policy == policy.FILE
    assert distribute.shard(dataset, False).options().experimental_distribute.auto_shard_policy == policy.DATA
    assert distribute.shard(None, True) is None
