"""Multi-worker runs on a prepared folder shard by file: two workers on 127.0.0.1 each read
their own record shards, and together every image once."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.processes import stop_all
from tests.training.test_distributed import free_ports

pytestmark = pytest.mark.xdist_group("prepared-folder")  # one pytest-xdist worker: the shared fixtures

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NUM_IMAGES = 60  # 4x4 PNGs of the values 0..59 (lossless), 30 per class
NUM_SHARDS = 4


@pytest.fixture(scope="module")
def prepared_folder(tmp_path_factory):
    from keras_ninception.data import prepared

    root = tmp_path_factory.mktemp("file_sharding")
    for value in range(NUM_IMAGES):
        path = root / "images" / "train" / f"class{value % 2}" / f"{value:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        tf.io.write_file(str(path), tf.io.encode_png(tf.fill((4, 4, 3), tf.constant(value, tf.uint8))))
    out = root / "prepared"
    prepared.prepare_image_folder(str(root / "images"), str(out), num_shards=NUM_SHARDS)
    return str(out)


def shard_values(prepared_dir):
    """`{shard file: set of pixel values}` of the training shards."""
    from keras_ninception.data import prepared

    files, features = prepared.split_files(prepared_dir, prepared.read_index(prepared_dir), "train")
    shards = {}
    for path in files:
        images = [features.deserialize_example(r)["image"].numpy() for r in tf.data.TFRecordDataset(path)]
        shards[os.path.basename(path)] = {int(image[0, 0, 0]) for image in images}
    return shards


def test_file_policy_gives_each_worker_whole_shards(prepared_folder):
    """The rewrite `MultiWorkerMirroredStrategy` applies to a worker's dataset
    (`_AutoShardDataset`, tf.data's auto-shard op, with the policy set by `distribute.shard`),
    run in this process for worker 0 and worker 1 of 2."""
    from tensorflow.python.data.experimental.ops.distribute import _AutoShardDataset

    from keras_ninception.data import load_dataset
    from keras_ninception.training import distribute

    splits = load_dataset(prepared_folder, image_size=4, batch_size=8, augment="none", cache="none")
    dataset = distribute.shard(splits.train, splits.file_sharded)
    values = {}
    for index in range(2):
        sharded = _AutoShardDataset(dataset, num_workers=2, index=index, num_replicas=2)
        values[index] = [
            int(v) for images, _ in sharded for v in np.round((images.numpy().mean(axis=(1, 2, 3)) + 1.0) * 127.5)
        ]
    shards = shard_values(prepared_folder)
    assert not set(values[0]) & set(values[1])
    assert len(values[0]) + len(values[1]) == 54
    assert set(values[0]) | set(values[1]) == set().union(*shards.values())
    names = sorted(shards)
    assert set(values[0]) == set().union(*(shards[name] for name in names[0::2]))
    assert set(values[1]) == set().union(*(shards[name] for name in names[1::2]))
    # DATA sharding, for comparison, reads every file on both workers.
    by_data = _AutoShardDataset(distribute.shard_by_data(splits.train), num_workers=2, index=0, num_replicas=2)
    assert sum(int(labels.shape[0]) for _, labels in by_data) < 54


@pytest.mark.slow
@pytest.mark.alone
def test_two_workers_read_disjoint_shards_covering_every_image(prepared_folder, tmp_path):
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    processes, logs = {}, {}
    try:
        for index in range(2):
            env = {
                **os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "",
                "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
            }
            logs[index] = open(tmp_path / f"worker{index}.log", "w")
            processes[index] = subprocess.Popen(
                [sys.executable, "-m", "tests.training.file_shard_worker", prepared_folder],
                env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=logs[index], text=True,
                start_new_session=True,
            )
        outputs = {index: process.communicate(timeout=900)[0] for index, process in processes.items()}
    finally:
        stop_all(processes, logs)
    assert [p.returncode for p in processes.values()] == [0, 0], [
        (tmp_path / f"worker{i}.log").read_text()[-3000:] for i in range(2)
    ]
    read = {i: json.loads(out.strip().splitlines()[-1]) for i, out in outputs.items()}
    assert read[0]["file_sharded"] and read[1]["file_sharded"]
    values = {i: read[i]["values"] for i in read}
    # Each image once: no worker reads another's, together they read all 54 training images.
    assert len(values[0]) == len(set(values[0])) and len(values[1]) == len(set(values[1]))
    assert not set(values[0]) & set(values[1])
    shards = shard_values(prepared_folder)
    everything = set().union(*shards.values())
    assert len(everything) == 54  # 60 - ceil(0.1 * 60) carved for validation
    assert set(values[0]) | set(values[1]) == everything
    # By file: each shard's images all went to one worker, and each worker got whole shards.
    owners = {name: {i for i in values if images & set(values[i])} for name, images in shards.items()}
    assert all(len(owner) == 1 for owner in owners.values()), owners
    assert {next(iter(owner)) for owner in owners.values()} == {0, 1}
    # tf.data's FILE policy: worker i of 2 reads the files i, i + 2 (in the sorted list).
    assert sorted(name for name, owner in owners.items() if owner == {0}) == sorted(shards)[0::2]
    assert np.sum([len(v) for v in values.values()]) == 54
