"""Multi-worker training: two `train()` processes on 127.0.0.1 against one single-worker run.

The single-worker run uses `strategy="mirrored"` on one device, not `"none"`: under any
`tf.distribute` strategy, Keras' `fit` reads one batch to build the model and then restarts
the dataset iterator, which moves the seeded reshuffle on by one epoch. A `"none"` run sees
the same batches in another order, so its weights differ by far more than rounding.
"""

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from tests.processes import stop_all

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEADLINE_S = 240
# 1437 non-test digits, 0.109 of them (157) for validation: 1280 training images, 20 global
# batches of 64 (32 per worker) with no partial batch, since a partial batch split over two
# workers is averaged as two half-batch means, not as one mean.
CONFIG = {
    "model": "nin", "image_size": 8, "epochs": 2, "batch_size": 64, "validation_fraction": 0.109,
    "augment": "none", "seed": 3, "run_dir": os.path.join("saved_models", "run"),
}


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def start(cwd, log, tf_config=None, **fields):
    cwd.mkdir()
    (cwd / "tmp").mkdir()
    env = {
        **os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": REPO, "TMPDIR": str(cwd / "tmp"),
        "CUDA_VISIBLE_DEVICES": "",  # one CPU device per process, whatever the machine has
    }
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    command = [sys.executable, "-m", "tests.training.distributed_worker", json.dumps({**CONFIG, **fields})]
    # Own session: the test can end the process and anything it started, by its id.
    return subprocess.Popen(command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def weights(path):
    import keras

    return keras.saving.load_model(path).get_weights()


@pytest.mark.slow
@pytest.mark.alone
def test_two_workers_train_like_one_and_only_the_chief_writes(tmp_path):
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    roles = {"chief": 0, "worker": 1}
    processes, logs = {}, {}
    try:
        for name, index in roles.items():
            logs[name] = open(tmp_path / f"{name}.log", "w")
            tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
            processes[name] = start(tmp_path / name, logs[name], tf_config)
        logs["single"] = open(tmp_path / "single.log", "w")
        processes["single"] = start(tmp_path / "single", logs["single"], strategy="mirrored")
        deadline = time.monotonic() + DEADLINE_S
        for process in processes.values():
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        stop_all(processes, logs)
    outputs = {name: (tmp_path / f"{name}.log").read_text() for name in processes}
    assert {name: p.returncode for name, p in processes.items()} == {"chief": 0, "worker": 0, "single": 0}, {
        name: text[-3000:] for name, text in outputs.items()
    }
    for process in processes.values():  # nothing left behind: each session is gone
        with pytest.raises(ProcessLookupError):
            os.killpg(process.pid, 0)

    assert "multiworker: 2 replica(s), global batch 64 (32 per replica)" in outputs["chief"]
    assert "mirrored: 1 replica(s), global batch 64 (64 per replica)" in outputs["single"]
    assert "20/20" in outputs["chief"] and "20/20" in outputs["single"]  # 1280 images / 64
    assert "Worker worker 1: the chief writes saved_models/run." in outputs["worker"]
    chief_run = tmp_path / "chief" / "saved_models" / "run"
    for name in ("model.keras", "inference.keras", "config.json", "metrics.json", "history.json", "history.csv",
                 "checkpoints/last.keras"):
        assert (chief_run / name).is_file(), name
    assert not (chief_run / "checkpoints" / "backup").exists()
    # The worker wrote nothing where it was started, and removed its temporary folder.
    assert sorted(p.name for p in (tmp_path / "worker").iterdir()) == ["tmp"]
    assert not list((tmp_path / "worker" / "tmp").iterdir())

    # Same global batches, same averaged gradients. Measured: the per-epoch losses agree to
    # ~2e-6 (relative), the weights to 3.4e-4 at most after 40 Adam steps (the all-reduce
    # adds floats in another order, and Adam, which divides by the gradient's RMS, grows
    # that for weights with tiny gradients). The same run with the batches in another order
    # (a "none" run, see above) differs by 2.5e-2 in the weights and 1.5e-3 in the loss.
    single_run = tmp_path / "single" / "saved_models" / "run"
    history = json.loads((chief_run / "history.json").read_text())
    single_history = json.loads((single_run / "history.json").read_text())
    assert len(history["loss"]) == 2
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(history[key], single_history[key], rtol=1e-4)
    for distributed, single in zip(weights(str(chief_run / "model.keras")), weights(str(single_run / "model.keras"))):
        np.testing.assert_allclose(distributed, single, rtol=0, atol=2e-3)
