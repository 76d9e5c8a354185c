"""The main job end to end: `ninception train` and `ninception evaluate` as subprocesses."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_ninception.cli.main import main

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cli-run")]  # one pytest-xdist worker: the shared run

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def ninception(*args, cwd=None, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "keras_ninception.cli.main", *args],
        capture_output=True, text=True, timeout=timeout, env=ENV, cwd=cwd,
    )


def read_scalar_tags(logdir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = set()
    for sub in ("train", "validation"):
        accumulator = EventAccumulator(os.path.join(logdir, sub), size_guidance={"tensors": 0})
        accumulator.Reload()
        tags |= {f"{sub}/{tag}" for tag in accumulator.Tags()["tensors"] + accumulator.Tags()["scalars"]}
    return tags


@pytest.fixture(scope="module")
def googlenet_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "googlenet-digits"
    result = ninception("train", "--epochs", "1", "--image-size", "20", "--run-dir", str(run_dir))
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir, result


def test_one_epoch_run_leaves_a_complete_run_folder(googlenet_run):
    run_dir, result = googlenet_run
    for name in ("model.keras", "inference.keras", "metrics.json", "config.json", "history.json",
                 "checkpoints/last.keras"):
        assert (run_dir / name).is_file(), name
    assert "Final test accuracy (360 images): main " in result.stderr  # a log message
    assert "21/21" in result.stdout  # Keras progress bar: 1293 training images / 64 per batch

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics) == {"validation", "test"}
    assert set(metrics["test"]["heads"]) == {"main", "aux1", "aux2"}
    assert metrics["test"]["num_examples"] == 360
    config = json.loads((run_dir / "config.json").read_text())
    assert config["train_config"]["model"] == "googlenet" and config["variant"] == "cifar"
    assert config["class_names"] == [str(i) for i in range(10)]
    assert config["input_shape"] == [20, 20, 1]
    from keras_ninception.training.precision import resolve_precision

    assert config["train_config"]["precision"] == resolve_precision("auto")  # recorded resolved


def test_tensorboard_logs_have_per_head_scalars_and_learning_rate(googlenet_run):
    run_dir, _ = googlenet_run
    tags = read_scalar_tags(str(run_dir / "logs"))
    for head in ("main", "aux1", "aux2"):
        assert f"train/epoch_{head}_loss" in tags and f"validation/epoch_{head}_accuracy" in tags
    assert "train/epoch_learning_rate" in tags


def test_train_run_writes_an_hparams_session(googlenet_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    run_dir, _ = googlenet_run
    accumulator = EventAccumulator(str(run_dir / "logs"))
    accumulator.Reload()
    content = accumulator.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    session = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    assert session.hparams["model"].string_value == "googlenet"
    assert session.hparams["aux_loss_weight"].number_value == pytest.approx(0.3)
    assert session.hparams["epochs"].number_value == 1
    assert session.group_name == "googlenet-digits"


def test_default_run_shows_the_main_heads_confusion_matrix_and_images_in_tensorboard(googlenet_run):
    import matplotlib.image

    from tests.training.events import decode_image_summary, parse_markdown_matrix, read_summaries

    run_dir, _ = googlenet_run
    summaries = read_summaries(run_dir / "logs" / "validation_images")
    assert {tag: sorted(steps) for tag, steps in summaries.items()} == {
        "confusion_matrix": [0], "confusion_matrix_counts": [0], "predictions": [0]
    }
    counts = parse_markdown_matrix(summaries["confusion_matrix_counts"][0][1])
    metrics = json.loads((run_dir / "metrics.json").read_text())["validation"]
    assert counts.sum() == metrics["num_examples"] == 144
    # The main head's matrix, from the same weights as metrics.json (one epoch, so one model).
    assert np.trace(counts) / 144 == pytest.approx(metrics["heads"]["main"]["accuracy"])
    width, height, _ = decode_image_summary(summaries["predictions"][0][1])
    assert (width, height) == (640, 760)  # 16 images (the default) in 4×4 cells of 160×190 px
    assert matplotlib.image.imread(run_dir / "learning_curves.png").shape == (450, 1200, 4)
    # Histograms and the profiler are off by default.
    train_plugins = {p for steps in read_summaries(run_dir / "logs" / "train").values() for p, _ in steps.values()}
    assert "histograms" not in train_plugins
    assert not (run_dir / "logs" / "train" / "plugins" / "profile").exists()


def test_evaluate_reports_every_head_and_matches_metrics_json(googlenet_run, capsys):
    # In-process (`main` is what the command runs; the train above took the subprocess path).
    run_dir, _ = googlenet_run
    assert main(["evaluate", str(run_dir), "--split", "test", "--json"]) == 0, capsys.readouterr().err[-3000:]
    report = json.loads(capsys.readouterr().out)
    saved = json.loads((run_dir / "metrics.json").read_text())["test"]
    for head in ("main", "aux1", "aux2"):
        assert report["heads"][head]["accuracy"] == pytest.approx(saved["heads"][head]["accuracy"])
        assert report["heads"][head]["loss"] == pytest.approx(saved["heads"][head]["loss"], rel=1e-4)
    assert main(["evaluate", str(run_dir), "--split", "validation"]) == 0
    assert "aux2" in capsys.readouterr().out


def test_existing_run_is_refused_and_left_untouched(googlenet_run, capsys):
    run_dir, _ = googlenet_run
    before = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file()}
    assert main(["train", "--epochs", "1", "--run-dir", str(run_dir)]) == 2
    stderr = capsys.readouterr().err
    assert "already holds a run" in stderr and "--resume" in stderr
    after = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file()}
    assert before == after


def test_saved_models_reload_in_a_fresh_interpreter(googlenet_run):
    run_dir, _ = googlenet_run
    code = (
        "import sys, keras, numpy as np\n"
        "m = keras.saving.load_model(sys.argv[1]); i = keras.saving.load_model(sys.argv[2])\n"
        "x = np.random.default_rng(0).uniform(-1, 1, (4, 20, 20, 1)).astype('float32')\n"
        "np.testing.assert_allclose(i.predict(x, verbose=0), m.predict(x, verbose=0)[0], rtol=1e-5, atol=1e-6)\n"
        "print(m.output_names, i.output_names)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(run_dir / "model.keras"), str(run_dir / "inference.keras")],
        capture_output=True, text=True, timeout=300, env=ENV,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "['main', 'aux1', 'aux2'] ['main']" in result.stdout
