"""`tune`: tiny searches on the 8-px digits; trial table, best model, resume and overwrite,
and the per-trial TensorBoard folders with their HParams sessions."""

import csv
import json
import os
import shutil

import keras
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata as hparams_metadata

from keras_ninception import evaluate_run
from keras_ninception.tuning.run import TuneConfig, search_space_from_definition, tune

pytestmark = pytest.mark.xdist_group("searched")  # one pytest-xdist worker: the shared fixtures

# NIN on the 8-px digits, 16 filters per block: a trial takes a few seconds on 2 cores.
TINY_SPACE = {
    "mlpconv1_filters": [16, 32],
    "mlpconv2_filters": 16,
    "mlpconv3_filters": 16,
    "mlpconv1_kernel_size": 3,
}


def tiny(run_dir, **overrides):
    fields = dict(model="nin", image_size=8, max_trials=2, epochs=1, search_space=TINY_SPACE, run_dir=str(run_dir))
    return TuneConfig(**{**fields, **overrides})


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """One 2-trial random search, shared by the read-only tests; copy it to change it."""
    run_dir = tmp_path_factory.mktemp("tune") / "run"
    result = tune(tiny(run_dir), verbose=0)
    keras.backend.clear_session()
    return run_dir, result


@pytest.fixture
def copied(searched, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(searched[0], run_dir)
    return run_dir


@pytest.mark.slow
def test_every_trial_is_completed_with_a_score(searched):
    run_dir, result = searched
    rows = result["trials"]
    assert [row["status"] for row in rows] == ["COMPLETED", "COMPLETED"]
    assert all(0.0 <= row["val_main_accuracy"] <= 1.0 for row in rows)
    assert rows[0]["val_main_accuracy"] >= rows[1]["val_main_accuracy"]
    assert [row["rank"] for row in rows] == [1, 2]
    assert result["new_trials"] == 2
    # The fixed entries are in every trial, as the definition asked.
    assert {row["mlpconv2_filters"] for row in rows} == {16}
    assert {row["mlpconv1_kernel_size"] for row in rows} == {3}
    assert {row["mlpconv1_filters"] for row in rows} <= {16, 32}


@pytest.mark.slow
def test_trial_table_is_written_as_csv_and_json(searched):
    run_dir, result = searched
    with open(run_dir / "trials.json") as f:
        assert json.load(f) == result["trials"]
    with open(run_dir / "trials.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["trial_id"] for r in table] == [r["trial_id"] for r in result["trials"]]
    assert list(table[0])[:5] == ["rank", "trial_id", "status", "val_main_accuracy", "epoch"]
    assert float(table[0]["val_main_accuracy"]) == pytest.approx(result["trials"][0]["val_main_accuracy"])


@pytest.mark.slow
def test_best_model_is_saved_like_a_training_run(searched):
    run_dir, result = searched
    for name in ("model.keras", "inference.keras", "metrics.json", "config.json", "history.json"):
        assert (run_dir / name).is_file(), name
    with open(run_dir / "config.json") as f:
        config = json.load(f)
    best = result["trials"][0]
    assert config["best_trial"]["trial_id"] == best["trial_id"]
    assert config["hyperparameters"] == result["best_hyperparameters"]
    assert config["train_config"]["learning_rate"] == result["best_hyperparameters"]["learning_rate"]
    model = keras.saving.load_model(run_dir / "model.keras")
    assert model.get_layer("mlpconv1_conv").filters == best["mlpconv1_filters"]
    # Restored from the best epoch: the validation score is the trial's.
    assert result["metrics"]["validation"]["heads"]["main"]["accuracy"] == pytest.approx(best["val_main_accuracy"], abs=1e-6)
    evaluated = evaluate_run(str(run_dir), split="validation", verbose=0)
    assert evaluated["heads"]["main"]["accuracy"] == pytest.approx(best["val_main_accuracy"], abs=1e-6)


def _tensors(path):
    accumulator = EventAccumulator(str(path))
    accumulator.Reload()
    return accumulator


@pytest.mark.slow
def test_each_trial_has_its_tensorboard_folder_with_an_hparams_session(searched):
    run_dir, result = searched
    logs = run_dir / "search" / "logs"
    trial_ids = sorted(row["trial_id"] for row in result["trials"])
    assert sorted(p.name for p in logs.iterdir() if p.is_dir()) == trial_ids
    for row in result["trials"]:
        session = logs / row["trial_id"] / "execution0"
        assert "epoch_main_accuracy" in _tensors(session / "validation").Tags()["tensors"]
        assert "epoch_main_accuracy" in _tensors(session / "train").Tags()["tensors"]
        content = _tensors(session).PluginTagToContent(hparams_metadata.PLUGIN_NAME)
        start = hparams_metadata.parse_session_start_info_plugin_data(
            content[hparams_metadata.SESSION_START_INFO_TAG]
        )
        values = {name: value.WhichOneof("kind") and getattr(value, value.WhichOneof("kind")) for name, value in start.hparams.items()}
        expected = {k: v for k, v in row.items() if k not in ("rank", "trial_id", "status", "val_main_accuracy", "epoch")}
        assert values == pytest.approx(expected)
        end = hparams_metadata.parse_session_end_info_plugin_data(content[hparams_metadata.SESSION_END_INFO_TAG])
        assert end.status == 1  # STATUS_SUCCESS


@pytest.mark.slow
def test_hparams_experiment_lists_the_search_space_beside_val_main_accuracy(searched):
    run_dir, result = searched
    content = _tensors(run_dir / "search" / "logs").PluginTagToContent(hparams_metadata.PLUGIN_NAME)
    experiment = hparams_metadata.parse_experiment_plugin_data(content[hparams_metadata.EXPERIMENT_TAG])
    assert {h.name for h in experiment.hparam_infos} == set(result["best_hyperparameters"])
    metrics = [(m.name.group, m.name.tag, m.display_name) for m in experiment.metric_infos]
    assert metrics[0] == ("validation", "epoch_main_accuracy", "val_main_accuracy")


@pytest.mark.slow
def test_an_existing_run_is_refused_without_resume_or_overwrite(copied):
    before = sorted(os.listdir(copied))
    with pytest.raises(FileExistsError, match="already holds a tuning run. Pass --resume"):
        tune(tiny(copied), verbose=0)
    with pytest.raises(ValueError, match="either `resume` or `overwrite`"):
        tune(tiny(copied), resume=True, overwrite=True, verbose=0)
    assert sorted(os.listdir(copied)) == before


def test_resume_without_a_run_and_folders_that_are_not_tuning_runs(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no tuning run"):
        tune(tiny(tmp_path / "none"), resume=True, verbose=0)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty and holds no tuning run"):
        tune(tiny(tmp_path / "other"), overwrite=True, verbose=0)
    assert not (tmp_path / "none").exists()


@pytest.mark.slow
def test_resuming_a_finished_search_adds_no_trials(copied):
    model_time = os.path.getmtime(copied / "model.keras")
    trials_before = sorted(p.name for p in (copied / "search").glob("trial_*"))
    result = tune(tiny(copied), resume=True, verbose=0)
    assert result["new_trials"] == 0
    assert len(result["trials"]) == 2
    assert sorted(p.name for p in (copied / "search").glob("trial_*")) == trials_before
    assert os.path.getmtime(copied / "model.keras") == model_time  # best model kept as it was


@pytest.mark.slow
@pytest.mark.parametrize(
    "change, message",
    [
        (dict(search_space={**TINY_SPACE, "mlpconv1_filters": [16, 48]}), r"search space 'mlpconv1_filters': saved .*16, 32.*now .*16, 48"),
        (dict(search_space={k: v for k, v in TINY_SPACE.items() if k != "mlpconv1_kernel_size"}), r"search space 'mlpconv1_kernel_size'"),
        (dict(epochs=2), r"epochs: saved 1, now 2"),
        (dict(tuner="bayesian"), r"tuner: saved 'random', now 'bayesian'"),
    ],
)
def test_resuming_with_a_changed_definition_fails_and_changes_nothing(copied, change, message):
    definition = (copied / "search" / "definition.json").read_text()
    with pytest.raises(ValueError, match=r"Cannot resume the search .*" + message):
        tune(tiny(copied, **change), resume=True, verbose=0)
    assert (copied / "search" / "definition.json").read_text() == definition


@pytest.mark.slow
def test_resume_with_more_trials_extends_the_search(copied):
    result = tune(tiny(copied, max_trials=3), resume=True, verbose=0)
    assert result["new_trials"] == 1
    assert [row["status"] for row in result["trials"]] == ["COMPLETED"] * 3
    with open(copied / "config.json") as f:
        assert json.load(f)["best_trial"]["trial_id"] == result["trials"][0]["trial_id"]


@pytest.mark.slow
def test_overwrite_starts_a_new_search_and_keeps_foreign_files(copied):
    (copied / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"also holds \['notes.txt'\]"):
        tune(tiny(copied), overwrite=True, verbose=0)
    assert (copied / "search" / "trial_1").is_dir()
    os.remove(copied / "notes.txt")
    result = tune(tiny(copied, max_trials=1, best_model="retrain"), overwrite=True, verbose=0)
    assert len(result["trials"]) == 1 and result["new_trials"] == 1
    assert not (copied / "search" / "trial_1").exists()
    assert (copied / "logs").is_dir() and (copied / "checkpoints" / "last.keras").is_file()  # retrained


@pytest.mark.parametrize(
    "search_space, message",
    [
        ({"width_multiplier": 0.5}, r"names hyperparameters \['width_multiplier'\] that HyperNIN does not have"),
        ({"dropout_rate": {"min_value": 0.1}}, r"entry 'dropout_rate'.*Received: dropout_rate="),
        ({"mlpconv1_filters": 0}, r"`mlpconv1_filters` must be an integer >= 1. Received: mlpconv1_filters=0"),
        ({"mlpconv2_kernel_size": 2.5}, r"`mlpconv2_kernel_size` must be an integer"),
        ([1, 2], r"`search_space` must be a mapping"),
    ],
)
def test_bad_search_spaces_are_refused_before_anything_is_written(tmp_path, search_space, message):
    with pytest.raises(ValueError, match=message):
        tune(tiny(tmp_path / "run", search_space=search_space), verbose=0)
    assert not (tmp_path / "run").exists()


def test_search_space_entries():
    hp = search_space_from_definition(
        {
            "a": 3,
            "b": [1, 2],
            "c": {"values": ["x", "y"], "default": "y"},
            "d": {"min_value": 1e-4, "max_value": 1e-2, "sampling": "log"},
            "e": {"min_value": 1, "max_value": 5},
            "f": {"min_value": 0, "max_value": 1, "type": "float", "step": 0.5},
        }
    )
    assert hp.values == {"a": 3, "b": 1, "c": "y", "d": 1e-4, "e": 1, "f": 0.0}
    assert [type(p).__name__ for p in hp.space] == ["Fixed", "Choice", "Choice", "Float", "Int", "Float"]


@pytest.mark.slow
@pytest.mark.parametrize("tuner", ["bayesian", "hyperband"])
def test_other_tuners_complete_their_trials(tmp_path, tuner):
    result = tune(tiny(tmp_path / "run", tuner=tuner, max_trials=2, epochs=2, hyperband_factor=2), verbose=0)
    assert len(result["trials"]) in (1, 2)
    assert all(row["status"] == "COMPLETED" and row["val_main_accuracy"] is not None for row in result["trials"])


@pytest.mark.slow
def test_googlenet_search_with_aux_heads_and_tuned_batch_size(tmp_path):
    # One trial (GoogLeNet's graph takes ~25 s to trace here); batch 32 re-cuts the pipeline's 64.
    space = {"width_multiplier": 0.125, "batch_size": 32, "optimizer": "adam"}
    config = TuneConfig(
        model="googlenet", image_size=20, max_trials=1, epochs=1, search_space=space, run_dir=str(tmp_path / "run")
    )
    result = tune(config, verbose=0)
    assert [row["status"] for row in result["trials"]] == ["COMPLETED"]
    assert result["trials"][0]["batch_size"] == 32 and result["trials"][0]["aux_loss_weight"] is not None
    assert set(result["metrics"]["test"]["heads"]) == {"main", "aux1", "aux2"}
    validation = _tensors(tmp_path / "run" / "search" / "logs" / result["trials"][0]["trial_id"] / "execution0" / "validation")
    assert {"epoch_main_loss", "epoch_aux1_accuracy", "epoch_aux2_loss", "epoch_main_accuracy"} <= set(validation.Tags()["tensors"])
    inference = keras.saving.load_model(tmp_path / "run" / "inference.keras")
    assert inference.output_names == ["main"]


@pytest.mark.slow
@pytest.mark.parametrize("best_model", ["restore", "retrain"])
def test_mirrored_strategy_builds_each_trial_under_the_strategy(tmp_path, monkeypatch, best_model):
    """`distribution_strategy="mirrored"`: KerasTuner builds and fits every trial's model under
    `tf.distribute.MirroredStrategy` (here over the one CPU device), and the trial scores."""
    import tensorflow as tf

    from keras_ninception.tuning import hypermodels

    strategies = []
    build = hypermodels.HyperNIN.build

    def recording_build(self, hp):
        strategies.append(type(tf.distribute.get_strategy()).__name__)
        return build(self, hp)

    monkeypatch.setattr(hypermodels.HyperNIN, "build", recording_build)
    run_dir = tmp_path / "run"
    result = tune(
        tiny(run_dir, max_trials=1, distribution_strategy="mirrored", best_model=best_model), verbose=0
    )
    assert [row["status"] for row in result["trials"]] == ["COMPLETED"]
    # The last two builds, the trial and the best model (restored or retrained), ran under the
    # strategy; the ones before only read the search space.
    assert strategies[-2:] == ["MirroredStrategy", "MirroredStrategy"], strategies
    assert evaluate_run(str(run_dir), split="test", verbose=0)["heads"]["main"]["accuracy"] >= 0.0
    assert 0.0 <= result["trials"][0]["val_main_accuracy"] <= 1.0


@pytest.mark.slow
def test_two_executions_history_json_is_the_saved_executions_and_both_scores_are_named(tmp_path):
    from keras_ninception.options import TUNERS
    from keras_ninception.tuning.run import EXECUTION_HISTORIES_FILE, TUNERS as TUNER_CLASSES

    assert tuple(TUNER_CLASSES) == TUNERS  # the CLI's choices
    run_dir = tmp_path / "run"
    tune(tiny(run_dir, max_trials=1, epochs=2, executions_per_trial=2), verbose=0)
    config = json.load(open(run_dir / "config.json"))["best_trial"]
    (trial_dir,) = [p for p in (run_dir / "search").iterdir() if p.name.startswith("trial_")]
    executions = json.load(open(trial_dir / EXECUTION_HISTORIES_FILE))
    assert len(executions) == 2 and all(len(e["val_main_accuracy"]) == 2 for e in executions)
    # By hand: the trial's score is the mean of each execution's best epoch; the checkpoint
    # holds the first (execution, epoch) reaching the best value over both.
    bests = [max(e["val_main_accuracy"]) for e in executions]
    assert config["val_main_accuracy_trial_mean"] == pytest.approx(sum(bests) / 2)
    execution = 0 if bests[0] >= bests[1] else 1
    epoch = executions[execution]["val_main_accuracy"].index(bests[execution]) + 1
    assert config["saved_model"] == {"execution": execution, "epoch": epoch, "val_main_accuracy": bests[execution]}
    assert config["executions"] == 2
    # history.json: that execution's per-epoch history, one value per epoch.
    history = json.load(open(run_dir / "history.json"))
    assert history == executions[execution]
    assert set(history) >= {"loss", "val_loss", "main_accuracy", "val_main_accuracy"}
    # The saved weights score what their epoch scored on the validation split.
    metrics = json.load(open(run_dir / "metrics.json"))
    assert metrics["validation"]["heads"]["main"]["accuracy"] == pytest.approx(bests[execution], abs=1e-6)
