"""Runs that survive kills, crashes while saving, NaN losses and unsafe model files."""

import json
import logging
import math
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from keras_ninception import TrainConfig, build_nin, evaluate_run, train
from keras_ninception.cli.main import main
from keras_ninception.training import run, run_folder
from keras_ninception.training.evaluate import load_run
from tests.processes import wait_for

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = dict(model="nin", image_size=8, epochs=1, batch_size=128)


def tmp_files(path):
    return [os.path.join(d, f) for d, _, files in os.walk(path) for f in files if f.startswith(".tmp-")]


# --- A killed run, started again by the same command ----------------------------------


@pytest.mark.slow
@pytest.mark.alone
def test_a_killed_run_is_resumed_by_the_same_command(tmp_path):
    run_dir = tmp_path / "run"
    # 1293 images in batches of 8: 162 steps per epoch, a few seconds each on 2 cores.
    command = [
        sys.executable, "-m", "keras_ninception", "train", "--model", "nin", "--image-size", "8",
        "--epochs", "2", "--batch-size", "8", "--augment", "none", "--run-dir", str(run_dir),
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": REPO, "CUDA_VISIBLE_DEVICES": ""}
    backup = run_dir / "checkpoints" / "backup" / "training_metadata.json"
    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        try:
            assert wait_for(backup.exists, timeout=240), (tmp_path / "first.log").read_text()[-3000:]
            time.sleep(0.5)  # into the second epoch
        finally:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
    assert first.returncode == -signal.SIGKILL
    assert not (run_dir / "model.keras").exists(), "the run ended before it was killed"
    rows_before = len(run_folder.read_history(str(run_dir / "history.csv"))["loss"])
    assert rows_before == 1

    second = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"Resuming the interrupted run in {run_dir} (same configuration)." in second.stderr  # a log message
    assert "Epoch 1/2" not in second.stdout and "Epoch 2/2" in second.stdout  # continued, not restarted
    history = json.loads((run_dir / "history.json").read_text())
    assert len(history["loss"]) == len(history["val_main_accuracy"]) == 2
    assert all(math.isfinite(v) for v in history["loss"])
    assert (run_dir / "model.keras").is_file() and (run_dir / "inference.keras").is_file()
    assert not (run_dir / "checkpoints" / "backup").exists()
    assert not tmp_files(run_dir)


def test_an_interrupted_run_with_another_configuration_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    saved = TrainConfig(**TINY, run_dir=str(run_dir)).validate().resolved()
    (run_dir / "config.json").write_text(json.dumps({"train_config": saved.__dict__}))
    with pytest.raises(FileExistsError, match=r"another configuration \(epochs: 1 saved, 2 now\).*--resume"):
        train(TrainConfig(**{**TINY, "epochs": 2}, run_dir=str(run_dir)))
    assert [p.name for p in run_dir.iterdir()] == ["config.json"]


# --- Crashes while saving --------------------------------------------------------------


def crash_while_saving(path):
    with open(path, "wb") as f:
        f.write(b"PK\x03\x04 half a zip")
    raise OSError("No space left on device")


def test_a_crash_while_saving_keeps_the_previous_file(tmp_path, monkeypatch):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    path = str(tmp_path / "model.keras")
    run_folder.save_model_atomic(model, path)
    before = open(path, "rb").read()
    monkeypatch.setattr(model, "save", crash_while_saving)
    with pytest.raises(OSError, match="No space left"):
        run_folder.save_model_atomic(model, path)
    assert open(path, "rb").read() == before
    assert os.listdir(tmp_path) == ["model.keras"]


@pytest.mark.slow
def test_a_crash_while_saving_the_model_leaves_a_run_that_resumes_without_training(tmp_path, monkeypatch, capsys, caplog):
    run_dir = tmp_path / "run"
    save = run_folder.save_model_atomic

    def save_failing_on_model_keras(model, path):
        if os.path.basename(path) == "model.keras":
            run_folder.replace_atomic(path, crash_while_saving, ".keras")
        save(model, path)

    monkeypatch.setattr(run, "save_model_atomic", save_failing_on_model_keras)
    with pytest.raises(OSError, match="No space left"):
        train(TrainConfig(**TINY, run_dir=str(run_dir)), verbose=2)
    assert not (run_dir / "model.keras").exists() and not tmp_files(run_dir)
    assert (run_dir / "checkpoints" / "backup" / "latest.weights.h5").is_file()  # kept until model.keras
    monkeypatch.setattr(run, "save_model_atomic", save)
    capsys.readouterr()

    with caplog.at_level(logging.INFO, logger="keras_ninception"):
        result = train(TrainConfig(**TINY, run_dir=str(run_dir)), verbose=2)
    assert "Resuming the interrupted run" in caplog.text
    assert "Epoch 1/1" not in capsys.readouterr().out  # no epoch trained again
    assert len(result["history"]["loss"]) == 1
    assert (run_dir / "model.keras").is_file()


# --- NaN loss ------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="tests")
class NanAfter(keras.optimizers.schedules.LearningRateSchedule):
    """1e-3 for the first `steps` updates, then NaN (`where`, so step 1 is not NaN times 0)."""

    def __init__(self, steps):
        self.steps = steps

    def __call__(self, step):
        return keras.ops.where(step < self.steps, 1e-3, float("nan"))

    def get_config(self):
        return {"steps": self.steps}


@pytest.mark.slow
def test_a_nan_loss_in_epoch_2_stops_with_exit_2_and_keeps_epoch_1(tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "run"
    steps_per_epoch = math.ceil(1293 / 128)

    def explodes_in_epoch_2(config, steps):
        assert steps == steps_per_epoch
        # A NaN learning rate from epoch 2 on: the first update makes every weight NaN. (A huge
        # one, 1e30, no longer ends in NaN since batch normalization runs on the fused kernel.)
        return NanAfter(steps)

    monkeypatch.setattr(run, "learning_rate_schedule", explodes_in_epoch_2)
    status = main(["train", "--model", "nin", "--image-size", "8", "--epochs", "3", "--batch-size", "128",
                   "--run-dir", str(run_dir)])
    err = capsys.readouterr().err
    assert status == 2
    assert "ninception train: error: Training stopped on a NaN or inf loss" in err
    assert os.path.join(str(run_dir), "checkpoints", "last.keras") in err
    assert not (run_dir / "model.keras").exists()

    rows = (run_dir / "history.csv").read_text().splitlines()
    assert len(rows) == 3  # header, epoch 1, epoch 2 (stopped)
    history = run_folder.read_history(str(run_dir / "history.csv"))
    assert math.isfinite(history["loss"][0]) and not math.isfinite(history["loss"][1])
    last = keras.saving.load_model(str(run_dir / "checkpoints" / "last.keras"))
    assert all(np.isfinite(w).all() for w in last.get_weights())
    # It is epoch 1's model: its validation loss is the one logged for epoch 1.
    splits = run.load_splits(TrainConfig(**{**TINY, "epochs": 3}).validate().resolved())
    logs = last.evaluate(splits.validation, return_dict=True, verbose=0)
    assert logs["loss"] == pytest.approx(history["val_loss"][0], rel=1e-5)


# --- Safe mode -----------------------------------------------------------------------


@pytest.fixture
def lambda_model_file(tmp_path):
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Lambda(lambda t: t * 2.0, name="code")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax", name="main")(x))
    path = tmp_path / "lambda.keras"
    model.save(path)
    return path


def test_a_model_file_with_code_is_refused(tmp_path, lambda_model_file):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps({"train_config": TrainConfig(**TINY).__dict__}))
    (run_dir / "model.keras").write_bytes(lambda_model_file.read_bytes())
    message = r"model\.keras' holds Python code \(a `Lambda` layer: 'code'\).*safe mode"
    with pytest.raises(ValueError, match=message):
        load_run(str(run_dir))
    with pytest.raises(ValueError, match=message):
        evaluate_run(str(run_dir))
    with pytest.raises(ValueError, match=r"lambda\.keras' holds Python code \(a `Lambda` layer: 'code'\)"):
        build_nin(input_shape=(8, 8, 1), weights=str(lambda_model_file))


def test_history_csv_keeps_the_last_row_of_an_epoch_and_skips_a_cut_row(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text(
        "epoch,loss,val_loss\n"
        "0,2.5,2.25\n"
        "1,2.0,1.75\n"  # epoch 1 finished, killed before its backup: trained again below
        "1,1.5,1.25\n"
        "2,1.0,NA\n"
        "3,0.5\n"  # cut short by a kill
    )
    assert run_folder.read_history(str(path)) == {"loss": [2.5, 1.5, 1.0], "val_loss": [2.25, 1.25, pytest.approx(math.nan, nan_ok=True)]}
    assert run_folder.read_history(str(tmp_path / "missing.csv")) == {}
