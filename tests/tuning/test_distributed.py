"""Distributed search: a chief oracle and two workers on 127.0.0.1, each its own process."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tests.processes import stop_all, wait_for

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Whole-test bound: three TensorFlow processes start on 2 cores, 4 tiny trials, and the
# chief's exit check (KerasTuner polls every 20 s).
DEADLINE_S = 300
TINY = {
    "model": "nin",
    "image_size": 8,
    "max_trials": 4,
    "epochs": 1,
    "search_space": {"mlpconv1_filters": [16, 32], "mlpconv2_filters": 16, "mlpconv3_filters": 16},
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(tuner_id, definition, run_dir, port, log):
    env = {
        **os.environ,
        "KERASTUNER_TUNER_ID": tuner_id,
        "KERASTUNER_ORACLE_IP": "127.0.0.1",
        "KERASTUNER_ORACLE_PORT": str(port),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONPATH": REPO,
    }
    command = [sys.executable, "-m", "keras_ninception", "tune", "--config", str(definition), "--run-dir", str(run_dir)]
    # Own session: the test can end the process and anything it started, by its id.
    return subprocess.Popen(command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


@pytest.mark.slow
@pytest.mark.alone
def test_chief_and_two_workers_run_every_trial_exactly_once(tmp_path):
    definition = tmp_path / "tiny.json"
    definition.write_text(json.dumps(TINY))
    run_dir = tmp_path / "run"
    port = free_port()
    processes = {}
    logs = {}
    try:
        for tuner_id in ("chief", "tuner0", "tuner1"):
            logs[tuner_id] = open(tmp_path / f"{tuner_id}.log", "w")
            processes[tuner_id] = start(tuner_id, definition, run_dir, port, logs[tuner_id])
        deadline = time.monotonic() + DEADLINE_S
        for process in processes.values():
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        stop_all(processes, logs)
    outputs = {name: (tmp_path / f"{name}.log").read_text()[-3000:] for name in processes}
    assert {name: p.returncode for name, p in processes.items()} == {"chief": 0, "tuner0": 0, "tuner1": 0}, outputs
    for process in processes.values():  # nothing left behind: each session is gone
        with pytest.raises(ProcessLookupError):
            os.killpg(process.pid, 0)

    rows = json.loads((run_dir / "trials.json").read_text())
    assert len(rows) == 4 and all(r["status"] == "COMPLETED" and r["val_main_accuracy"] is not None for r in rows)
    assert sorted(p.name for p in (run_dir / "search").glob("trial_*")) == sorted(f"trial_{r['trial_id']}" for r in rows)
    for row in rows:  # each trial ran once: one execution folder, one HParams session
        trial_logs = run_dir / "search" / "logs" / row["trial_id"]
        assert [p.name for p in trial_logs.iterdir()] == ["execution0"]
        accumulator = EventAccumulator(str(trial_logs / "execution0"))
        accumulator.Reload()
        assert len(accumulator.Tensors(hparams_metadata.SESSION_START_INFO_TAG)) == 1
    assert "Best model saved in" in outputs["chief"]
    assert (run_dir / "model.keras").is_file()
    assert "the chief writes the results" in outputs["tuner0"] + outputs["tuner1"]


@pytest.mark.slow
@pytest.mark.alone
def test_a_dead_worker_is_bounded_and_its_trial_reruns_on_resume(tmp_path):
    from keras_ninception.tuning.run import TuneConfig, tune

    definition = tmp_path / "tiny.json"
    definition.write_text(json.dumps(TINY))
    run_dir = tmp_path / "run"
    port = free_port()
    processes, logs = {}, {}
    try:
        for tuner_id in ("chief", "tuner0", "tuner1"):
            logs[tuner_id] = open(tmp_path / f"{tuner_id}.log", "w")
            processes[tuner_id] = start(tuner_id, definition, run_dir, port, logs[tuner_id])
        # tuner1 dies in the middle of its first trial (its first progress line is out).
        assert wait_for(lambda: "main_accuracy" in (tmp_path / "tuner1.log").read_text(), DEADLINE_S / 2)
        os.killpg(processes["tuner1"].pid, signal.SIGKILL)
        processes["tuner1"].wait()
        # The other worker runs the remaining trials and is told to stop.
        assert processes["tuner0"].wait(timeout=DEADLINE_S / 2) == 0
        # KerasTuner's chief waits for the dead worker's trial: it is still up, and is ended here.
        assert processes["chief"].poll() is None
    finally:
        stop_all(processes, logs)
    for process in processes.values():
        with pytest.raises(ProcessLookupError):
            os.killpg(process.pid, 0)

    # Resuming (here in one process) runs the dead trial again and completes the search.
    result = tune(TuneConfig(**TINY, run_dir=str(run_dir)), resume=True, verbose=0)
    assert result["new_trials"] <= 1  # 1, unless tuner1 died between two trials
    assert [r["status"] for r in result["trials"]] == ["COMPLETED"] * 4
    assert (run_dir / "model.keras").is_file()
