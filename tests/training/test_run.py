"""Training runs in-process: configuration checks and run folders that never lose a run."""

import json
import os
import pathlib

import keras
import numpy as np
import pytest

from keras_ninception import TrainConfig, compile_model, evaluate_run, train
from tests.data.images import write_image

# A few seconds on 2 cores: NIN on the 8-px digits for one epoch.
TINY = dict(model="nin", image_size=8, epochs=1, batch_size=128)


def fake_run(path, extra=()):
    os.makedirs(path)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump({"train_config": TrainConfig(**TINY).__dict__}, f)
    with open(os.path.join(path, "model.keras"), "w") as f:
        f.write("old model")
    for name in extra:
        with open(os.path.join(path, name), "w") as f:
            f.write("not ours")
    return {p: open(os.path.join(path, p)).read() for p in os.listdir(path)}


def contents(path):
    return {p: open(os.path.join(path, p)).read() for p in os.listdir(path)}


@pytest.mark.parametrize(
    "field, value",
    [
        ("learning_rate", float("inf")), ("learning_rate", float("nan")), ("learning_rate", True),
        ("weight_decay", float("nan")), ("weight_decay", -1.0), ("aux_loss_weight", float("inf")),
        ("epochs", 0), ("batch_size", 2.5), ("image_size", 0), ("seed", -1), ("seed", 2**40),
        ("model", "resnet"), ("run_dir", ""), ("dataset", 3), ("check_images", "fast"),
        ("on_bad_image", "ignore"),
    ],
)
def test_bad_configuration_is_refused_before_anything_is_written(tmp_path, field, value):
    run_dir = tmp_path / "run"
    with pytest.raises(ValueError, match=rf"`{field}`.*Received: {field}="):
        train(TrainConfig(**{**TINY, "run_dir": str(run_dir), field: value}))
    assert not run_dir.exists()


def test_paths_are_accepted_and_stored_as_strings():
    config = TrainConfig(dataset=pathlib.Path("some/folder"), run_dir=pathlib.Path("r")).validate()
    assert (config.dataset, config.run_dir) == ("some/folder", "r")


def test_failed_overwrite_keeps_the_old_run(tmp_path):
    run_dir = str(tmp_path / "run")
    before = fake_run(run_dir)
    # Fails while building the model (24 px is too small for the paper variant's aux heads).
    with pytest.raises(ValueError, match="at least 79×79"):
        train(TrainConfig(model="googlenet", variant="paper", image_size=24, run_dir=run_dir), overwrite=True)
    assert contents(run_dir) == before


def test_overwrite_refuses_a_folder_with_files_that_are_not_a_runs(tmp_path):
    run_dir = str(tmp_path / "project")
    before = fake_run(run_dir, extra=("thesis.txt",))
    with pytest.raises(FileExistsError, match="thesis.txt"):
        train(TrainConfig(**TINY, run_dir=run_dir), overwrite=True)
    assert contents(run_dir) == before


def test_run_dir_that_is_a_file_is_refused(tmp_path):
    path = tmp_path / "afile"
    path.write_text("keep me")
    with pytest.raises(FileExistsError, match="is a file"):
        train(TrainConfig(**TINY, run_dir=str(path)))
    assert path.read_text() == "keep me"


def test_resume_with_a_broken_config_is_a_clear_error(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="config.json"):
        train(TrainConfig(**TINY, run_dir=str(run_dir)), resume=True)
    (run_dir / "config.json").write_text('{"a": 1}')
    with pytest.raises(ValueError, match="not a run configuration"):
        train(TrainConfig(**TINY, run_dir=str(run_dir)), resume=True)


@pytest.mark.slow
def test_run_files_are_complete_and_readable(tiny_nin_run):
    run_dir, result = tiny_nin_run
    assert result["metrics"]["test"]["num_examples"] == 360
    for name in ("model.keras", "inference.keras", "metrics.json", "config.json", "history.json"):
        mode = os.stat(os.path.join(run_dir, name)).st_mode & 0o777
        assert mode & 0o044, f"{name} is not readable by others: {oct(mode)}"
    assert not [p for p in os.listdir(run_dir) if p.startswith(".tmp-")]


@pytest.mark.slow
def test_resume_writes_into_the_folder_given_now(tiny_nin_run, tmp_path):
    import shutil

    run_dir, _ = tiny_nin_run
    moved = str(tmp_path / "moved")
    shutil.copytree(run_dir, moved)
    for name in ("model.keras", "inference.keras", "metrics.json", "history.json"):
        os.remove(os.path.join(moved, name))  # as if killed before the end
    original = os.stat(os.path.join(run_dir, "model.keras")).st_mtime_ns
    train(TrainConfig(run_dir=moved), resume=True, verbose=0)
    assert os.path.exists(os.path.join(moved, "model.keras"))
    assert os.stat(os.path.join(run_dir, "model.keras")).st_mtime_ns == original


@pytest.mark.slow
def test_evaluate_refuses_a_dataset_with_other_class_names(tiny_nin_run, tmp_path):
    run_dir, _ = tiny_nin_run
    for index, name in enumerate("abcdefghij"):
        for i in range(2):
            write_image(str(tmp_path / "letters" / "train" / name / f"{i}.png"),
                        np.full((8, 8, 1), index * 20, np.uint8))
    with pytest.raises(ValueError, match=r"class folders that are not classes of the model: train/a/, train/b/"):
        evaluate_run(run_dir, dataset=str(tmp_path / "letters"), split="validation")
    with pytest.raises(ValueError, match="Received: batch_size=0"):
        evaluate_run(run_dir, batch_size=0)


def test_evaluate_on_junk_model_file_is_a_clear_error(tmp_path):
    run_dir = tmp_path / "run"
    fake_run(str(run_dir))
    with pytest.raises(ValueError, match="not a readable .keras model file"):
        evaluate_run(str(run_dir))


def test_compile_model_on_models_without_named_activations():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="from_logits"):
        compile_model(model)
    compile_model(model, from_logits=True)
    assert model.loss.from_logits is True
