"""Every head measured (evaluate_run), the report files, and runs pruned to one head."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_ninception import TrainConfig, build_googlenet, train
from keras_ninception.cli.main import main
from keras_ninception.models import prune_to_head
from keras_ninception.models.googlenet import INCEPTION_MODULES
from keras_ninception.models.profile import profile_model
from keras_ninception.training.evaluate import evaluate_run, load_run, load_run_splits
from keras_ninception.training.heads import plot_heads, prune_run, save_evaluation, select_head
from tests.data.images import write_image

pytestmark = pytest.mark.xdist_group("heads-runs")  # one pytest-xdist worker: the shared fixtures

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


# --- choosing a head: pure -------------------------------------------------------------

HEADS = {
    "main": {"accuracy": 0.990, "params": 5_996_810},
    "aux2": {"accuracy": 0.985, "params": 2_831_178},
    "aux1": {"accuracy": 0.970, "params": 1_258_442},
}


@pytest.mark.parametrize(
    "tolerance, chosen",
    [(0.0, "main"), (0.004, "main"), (0.005, "aux2"), (0.01, "aux2"), (0.02, "aux1"), (1.0, "aux1")],
)
def test_select_head_takes_the_smallest_head_within_tolerance(tolerance, chosen):
    assert select_head(HEADS, tolerance) == chosen


def test_select_head_edge_cases():
    # Exactly `tolerance` below the best still qualifies, also where float rounding puts
    # 0.07 - 0.01 above 0.06 (and float32 0.05 - 0.01 above float32 0.04).
    assert 0.07 - 0.01 > 0.06
    assert select_head({"main": {"accuracy": 0.07, "params": 3}, "aux1": {"accuracy": 0.06, "params": 1}}, 0.01) == "aux1"
    heads = {
        "main": {"accuracy": float(np.float32(0.05)), "params": 3},
        "aux1": {"accuracy": float(np.float32(0.04)), "params": 1},
    }
    assert select_head(heads, 0.01) == "aux1"
    # An aux head better than main wins at tolerance 0 when it is smaller.
    assert select_head({"main": {"accuracy": 0.5, "params": 9}, "aux2": {"accuracy": 0.6, "params": 5}}, 0.0) == "aux2"
    assert select_head({"main": {"accuracy": 0.7, "params": 9}}, 0.5) == "main"


@pytest.mark.parametrize(
    "heads, tolerance, message",
    [
        (HEADS, -0.1, "Received: tolerance=-0.1"),
        (HEADS, float("nan"), "Received: tolerance=nan"),
        ({}, 0.01, "`heads` is empty"),
        ({"main": {"accuracy": 0.9}}, 0.01, "needs 'accuracy' and 'params'"),
    ],
)
def test_select_head_bad_input(heads, tolerance, message):
    with pytest.raises(ValueError, match=message):
        select_head(heads, tolerance)


# --- a tiny trained GoogLeNet run --------------------------------------------------------


@pytest.fixture(scope="module")
def googlenet_run(tmp_path_factory):
    """`train` of a GoogLeNet (cifar variant, both aux heads) on the digits at 20 px for one
    epoch, narrowed to a quarter of the channels so the test stays in CPU seconds."""
    from keras_ninception.training import run as run_module

    def narrow(config, input_shape, num_classes):
        return build_googlenet(
            input_shape=input_shape, num_classes=num_classes, variant="cifar", width_multiplier=0.25
        )

    run_dir = str(tmp_path_factory.mktemp("runs") / "googlenet")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(run_module, "build_model", narrow)
        train(TrainConfig(model="googlenet", image_size=20, epochs=1, batch_size=64, run_dir=run_dir), verbose=0)
    return run_dir


@pytest.fixture(scope="module")
def three_class_nin_run(tmp_path_factory):
    """A NIN run on an image folder with 3 classes (fewer than 5: top-5 is top-3)."""
    root = tmp_path_factory.mktemp("three")
    rng = np.random.default_rng(0)
    for split, count in (("train", 6), ("val", 3), ("test", 3)):
        for index, name in enumerate(("a", "b", "c")):
            for i in range(count):
                image = np.clip(index * 100 + rng.integers(0, 40, (8, 8, 1)), 0, 255).astype(np.uint8)
                write_image(str(root / "data" / split / name / f"{i}.png"), image)
    run_dir = str(root / "nin")
    config = TrainConfig(model="nin", dataset=str(root / "data"), image_size=8, epochs=1, batch_size=4, run_dir=run_dir)
    train(config, verbose=0)
    return run_dir


@pytest.mark.slow
def test_evaluate_without_a_test_split_falls_back_to_validation_and_says_so(three_class_nin_run, tmp_path, capsys):
    import shutil

    data = json.load(open(os.path.join(three_class_nin_run, "config.json")))["train_config"]["dataset"]
    no_test = tmp_path / "no-test"
    for split in ("train", "val"):
        shutil.copytree(os.path.join(data, split), no_test / split)
    result = evaluate_run(three_class_nin_run, dataset=str(no_test), latency_repeats=0, verbose=0)
    assert (result["split"], result["num_examples"]) == ("validation", 9)
    with pytest.raises(ValueError, match=r"has no 'test' split; it has \['train', 'validation'\]: pass split='validation'"):
        evaluate_run(three_class_nin_run, dataset=str(no_test), split="test", latency_repeats=0, verbose=0)
    argv = ["evaluate", three_class_nin_run, "--dataset", str(no_test), "--latency-repeats", "0",
            "--output-dir", str(tmp_path / "report")]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "has no test split; evaluated on 'validation' (choose with --split)" in captured.err
    assert os.listdir(tmp_path / "report") and all(n.startswith("no-test-validation") for n in os.listdir(tmp_path / "report"))


def hand_top_k(probabilities, labels, k):
    top = np.argsort(-probabilities, axis=1)[:, :k]
    return float(np.mean(np.any(top == labels[:, None], axis=1)))


@pytest.mark.slow
def test_evaluate_reports_top5_params_and_latency_of_every_head(googlenet_run, tmp_path):
    result = evaluate_run(googlenet_run, split="test", latency_repeats=2, latency_warmup=1, verbose=0)
    assert list(result["heads"]) == ["main", "aux1", "aux2"] and result["top_k"] == 5

    model, config = load_run(googlenet_run)
    splits = load_run_splits(model, config)
    predictions = dict(zip(model.output_names, model.predict(splits.test, verbose=0)))
    labels = np.concatenate([y["main"].numpy() for _, y in splits.test])
    assert len(labels) == result["num_examples"] == 360
    for name, head in result["heads"].items():
        assert head["top5_accuracy"] == pytest.approx(hand_top_k(predictions[name], labels, 5), abs=1e-6)
        assert head["accuracy"] == pytest.approx(hand_top_k(predictions[name], labels, 1), abs=1e-6)
        assert head["top5_accuracy"] >= head["accuracy"]
        assert head["params"] == prune_to_head(model, name).count_params()
        assert head["macs_per_image"] == profile_model(prune_to_head(model, name)).macs
        assert head["latency_ms_per_batch"] > 0
        assert head["latency_ms_per_image"] == pytest.approx(head["latency_ms_per_batch"] / 64)
    for key in ("params", "macs_per_image"):
        assert result["heads"]["aux1"][key] < result["heads"]["aux2"][key] < result["heads"]["main"][key]
    assert result["latency"]["batch_size"] == 64 and result["latency"]["repeats"] == 2

    paths = save_evaluation(result, str(tmp_path / "report"))
    assert paths == {"json": str(tmp_path / "report" / "test.json"), "png": str(tmp_path / "report" / "test.png")}
    with open(paths["json"]) as f:
        assert json.load(f) == json.loads(json.dumps(result))
    import matplotlib.image

    image = matplotlib.image.imread(paths["png"])
    assert image.shape == (400, 1200, 4)
    assert image[..., :3].std() > 0.05  # bars and text, not a blank canvas
    assert not [p for p in os.listdir(tmp_path / "report") if p.startswith(".tmp-")]


@pytest.mark.slow
def test_single_head_run_with_three_classes(three_class_nin_run):
    result = evaluate_run(three_class_nin_run, split="test", latency_repeats=0, verbose=0)
    assert list(result["heads"]) == ["main"] and result["top_k"] == 3
    head = result["heads"]["main"]
    assert head["top5_accuracy"] == 1.0  # top-3 of 3 classes holds every label
    model, _ = load_run(three_class_nin_run)
    assert head["params"] == model.count_params()
    assert head["latency_ms_per_batch"] is None and result["latency"]["repeats"] == 0
    # Not measured: no empty latency panel, two panels of 8 x 4 inches.
    figure = plot_heads(result, os.path.join(three_class_nin_run, "chart.png"))
    assert [axes.get_title() for axes in figure.axes] == ["accuracy", "parameters (millions); MACs per image"]
    assert tuple(figure.get_size_inches()) == (8.0, 4.0)
    with pytest.raises(ValueError, match="must be a GoogLeNet"):
        prune_run(three_class_nin_run, head="auto", verbose=0)
    assert not os.path.exists(three_class_nin_run + "-auto")


@pytest.mark.slow
def test_evaluate_a_folder_with_only_test_and_some_classes(three_class_nin_run, tmp_path, capsys):
    """`ninception evaluate RUN --dataset D --split test`, D holding only test/a and test/c:
    the folder names map to the run's classes (a=0, c=2), nothing else is needed."""
    import shutil

    run_data = json.load(open(os.path.join(three_class_nin_run, "config.json")))["train_config"]["dataset"]
    only_test = tmp_path / "only_test"
    for name in ("a", "c"):
        shutil.copytree(os.path.join(run_data, "test", name), only_test / "test" / name)
    argv = ["evaluate", three_class_nin_run, "--dataset", str(only_test), "--split", "test", "--json",
            "--latency-repeats", "0", "--output-dir", str(tmp_path / "report")]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["num_examples"] == 6

    model, config = load_run(three_class_nin_run)
    splits = load_run_splits(model, config, dataset=str(only_test), splits=("test",))
    assert splits.class_names == ("a", "b", "c") and splits.train is None
    labels = np.concatenate([y.numpy() for _, y in splits.test])
    assert sorted(labels.tolist()) == [0, 0, 0, 2, 2, 2]
    probabilities = model.predict(splits.test, verbose=0)
    assert result["heads"]["main"]["accuracy"] == pytest.approx(hand_top_k(probabilities, labels, 1), abs=1e-6)

    shutil.copytree(only_test / "test" / "a", only_test / "test" / "zebra")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "ninception evaluate: error: The image folder" in err
    assert "class folders that are not classes of the model: test/zebra/. Its classes: a, b, c." in err


@pytest.mark.slow
def test_pruned_aux1_run_equals_the_head_and_reloads_in_a_fresh_interpreter(googlenet_run, tmp_path):
    out_dir = str(tmp_path / "aux1")
    result = prune_run(googlenet_run, head="aux1", out_dir=out_dir, verbose=0)
    assert result["head"] == "aux1" and result["selection"] is None
    assert sorted(os.listdir(out_dir)) == ["config.json", "inference.keras", "metrics.json", "model.keras"]

    source, source_config = load_run(googlenet_run)
    pruned, config = load_run(out_dir)
    assert pruned.output_names == ["main"]
    names = [layer.name for layer in pruned.layers]
    modules = [row[0] for row in INCEPTION_MODULES]
    later = modules[modules.index("inception_4a") + 1:]  # inception_4b ... inception_5b
    assert not [n for n in names if n.startswith(tuple(later) + ("aux2", "main_", "global_average_pooling"))]
    x = next(iter(load_run_splits(source, source_config).test))[0]
    expected = keras.ops.convert_to_numpy(source(x, training=False)[source.output_names.index("aux1")])
    np.testing.assert_allclose(pruned.predict(x, verbose=0), expected, atol=1e-5)

    for key in ("class_names", "preprocessing", "input_shape", "variant"):
        assert config[key] == source_config[key]
    assert config["output_names"] == ["main"] and config["train_config"]["run_dir"] == out_dir
    note = config["pruned_from"]
    assert (note["head"], note["branch_point"]) == ("aux1", "inception_4a")
    assert note["run_dir"] == os.path.abspath(googlenet_run)
    assert note["params"] == pruned.count_params() == prune_to_head(source, "aux1").count_params()
    with open(os.path.join(out_dir, "metrics.json")) as f:
        metrics = json.load(f)
    with open(os.path.join(googlenet_run, "metrics.json")) as f:
        source_metrics = json.load(f)
    for split in ("validation", "test"):
        assert metrics[split]["heads"]["main"]["accuracy"] == pytest.approx(
            source_metrics[split]["heads"]["aux1"]["accuracy"], abs=1e-6
        )

    code = (
        "import json, sys\n"
        "from keras_ninception import to_inference_model\n"
        "from keras_ninception.training.evaluate import evaluate_run, load_run\n"
        "model, config = load_run(sys.argv[1])\n"
        "to_inference_model(model)\n"
        "r = evaluate_run(sys.argv[1], split='test', latency_repeats=1, latency_warmup=0, verbose=0)\n"
        "print(json.dumps(r))\n"
    )
    process = subprocess.run(
        [sys.executable, "-c", code, out_dir], capture_output=True, text=True, timeout=300, env=ENV
    )
    assert process.returncode == 0, process.stderr[-3000:]
    assert "Skipping variable loading" not in process.stderr
    report = json.loads(process.stdout.strip().splitlines()[-1])
    assert list(report["heads"]) == ["main"]
    assert report["heads"]["main"]["accuracy"] == pytest.approx(metrics["test"]["heads"]["main"]["accuracy"])
    assert report["heads"]["main"]["params"] == note["params"]
    assert report["pruned_from"]["head"] == "aux1"


@pytest.mark.slow
def test_auto_picks_the_smallest_head_within_tolerance(googlenet_run):
    result = prune_run(googlenet_run, head="auto", tolerance=0.05, verbose=0)
    selection = result["selection"]
    assert selection["chosen"] == result["head"] == select_head(selection["heads"], 0.05)
    assert result["run_dir"] == f"{googlenet_run}-{result['head']}"
    with open(os.path.join(googlenet_run, "metrics.json")) as f:
        validation = json.load(f)["validation"]["heads"]
    for name, head in selection["heads"].items():
        assert head["accuracy"] == pytest.approx(validation[name]["accuracy"], abs=1e-6)
    with open(os.path.join(result["run_dir"], "config.json")) as f:
        assert json.load(f)["pruned_from"]["selection"]["chosen"] == result["head"]


@pytest.mark.slow
def test_cli_evaluate_json_and_prune_never_overwrites_silently(googlenet_run, tmp_path, capsys):
    report_dir = str(tmp_path / "report")
    assert main(["evaluate", googlenet_run, "--split", "validation", "--json", "--latency-repeats", "1",
                 "--output-dir", report_dir]) == 0
    report = json.loads(capsys.readouterr().out)  # pure JSON on stdout
    assert set(report["heads"]["aux2"]) >= {"top5_accuracy", "params", "latency_ms_per_image"}
    assert os.path.isfile(report["files"]["png"]) and report["files"]["json"].endswith("validation.json")

    assert main(["evaluate", googlenet_run, "--split", "validation", "--latency-repeats", "0",
                 "--output-dir", report_dir]) == 0
    table = capsys.readouterr().out
    assert "top-1   top-5" in table and "latency not measured" in table
    assert [line.split()[0] for line in table.splitlines() if line.split()[:1] in (["main"], ["aux1"], ["aux2"])] == [
        "main", "aux1", "aux2"]

    out_dir = str(tmp_path / "aux2")
    assert main(["prune", googlenet_run, "--head", "aux2", "--out-dir", out_dir]) == 0
    assert "Pruned run saved in" in capsys.readouterr().err  # a log message, on stderr
    before = {p: os.stat(os.path.join(out_dir, p)).st_mtime_ns for p in os.listdir(out_dir)}
    assert main(["prune", googlenet_run, "--head", "aux1", "--out-dir", out_dir]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert {p: os.stat(os.path.join(out_dir, p)).st_mtime_ns for p in os.listdir(out_dir)} == before
    assert main(["prune", googlenet_run, "--head", "aux1", "--out-dir", out_dir, "--overwrite"]) == 0
    with open(os.path.join(out_dir, "config.json")) as f:
        assert json.load(f)["pruned_from"]["head"] == "aux1"

    assert main(["prune", googlenet_run, "--head", "aux1", "--out-dir", googlenet_run, "--overwrite"]) == 2
    assert "must not be the source run's folder" in capsys.readouterr().err
    assert os.path.isfile(os.path.join(googlenet_run, "history.json"))
    with pytest.raises(SystemExit):
        main(["prune", googlenet_run])  # --head or --auto is required
    with pytest.raises(SystemExit):
        main(["prune", googlenet_run, "--head", "aux1", "--auto"])
    assert main(["prune", googlenet_run, "--auto", "--tolerance", "-1"]) == 2
    assert "Received: tolerance=-1" in capsys.readouterr().err


def test_an_evaluated_run_can_still_be_overwritten(tmp_path):
    """The `evaluation/` reports belong to the run: `--overwrite` may replace them."""
    from keras_ninception.training.heads import PRUNED_RUN_FILES
    from keras_ninception.training.run_folder import RUN_FILES, check_run_folder

    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.keras").write_text("old")
    (tmp_path / "evaluation").mkdir()
    for own_files in (RUN_FILES, PRUNED_RUN_FILES):
        assert check_run_folder(str(tmp_path), False, True, ("config.json", "model.keras"), own_files) is False
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="notes.txt"):
        check_run_folder(str(tmp_path), False, True, ("config.json", "model.keras"), PRUNED_RUN_FILES)
