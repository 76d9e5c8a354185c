"""`benchmarks/cifar_accuracy.py` keeps the committed forms a new report has no run folder for."""

import json
import warnings

from tests.benchmarks import load_benchmark


def test_a_new_report_keeps_forms_trained_elsewhere_with_their_own_cpu(tmp_path):
    script = load_benchmark("cifar_accuracy")
    old_cpu = {"model": "Old CPU", "cores": 2, "flags": ["amx_bf16"]}
    old = {"cpu": old_cpu, "forms": {
        "nin-bn": {"epochs_done": 30, "test_accuracy": {"main": 0.85}},
        "nin-paper": {"epochs_done": 3, "test_accuracy": {"main": 0.40}, "cpus": ["Older CPU, 2 cores, flags none"]},
    }}
    (tmp_path / "cifar_accuracy.json").write_text(json.dumps(old))
    fresh = {"nin-paper": {"epochs_done": 5, "test_accuracy": {"main": 0.55}, "cpus": ["New CPU, 2 cores, flags avx512_bf16"]}}
    merged = script.merge_with_report(str(tmp_path), fresh)
    assert list(merged) == ["nin-bn", "nin-paper"]
    # The run on disk replaces the committed entry of its form; the other form is kept, with the
    # machine the old report recorded for the whole report.
    assert merged["nin-paper"] == fresh["nin-paper"]
    assert merged["nin-bn"]["test_accuracy"] == {"main": 0.85}
    assert merged["nin-bn"]["cpus"] == ["Old CPU, 2 cores, flags amx_bf16"]
    assert script.merge_with_report(str(tmp_path / "none"), fresh) == fresh


def test_the_report_gives_each_form_the_command_that_trained_it(tmp_path):
    script = load_benchmark("cifar_accuracy")
    runs = {
        "nin-paper": {"complete": True, "epochs_done": 30, "epochs_planned": 30, "train_seconds": 60.0, "test_accuracy": {"main": 0.76},
                      "config": {"batch_size": 128, "recipe": "nin-paper"}, "target": 0.85, "curve": []},
        "nin-bn": {"complete": False, "epochs_done": 2, "epochs_planned": 30, "train_seconds": 10.0, "test_accuracy": {"main": 0.5},
                   "config": {"batch_size": 64, "recipe": "cifar"}, "target": 0.896, "curve": []},
    }
    assert script.form_command("nin-paper", runs["nin-paper"]) == (
        "python3.11 benchmarks/cifar_accuracy.py --forms nin-paper --epochs 30 --batch-size 128")
    assert script.form_command("nin-bn", {"epochs_planned": 30}) == (
        "python3.11 benchmarks/cifar_accuracy.py --forms nin-bn --epochs 30")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        script.write_report(str(tmp_path), runs, "python3.11 benchmarks/cifar_accuracy.py --report-only")
    # No form has a curve yet: the plot is empty, and says nothing of a legend without labels.
    assert not [w for w in caught if "legend" in str(w.message)], [str(w.message) for w in caught]
    assert (tmp_path / "time_to_accuracy.png").exists()
    report = json.loads((tmp_path / "cifar_accuracy.json").read_text())
    markdown = (tmp_path / "cifar_accuracy.md").read_text()
    for form, batch in (("nin-paper", 128), ("nin-bn", 64)):
        command = f"python3.11 benchmarks/cifar_accuracy.py --forms {form} --epochs 30 --batch-size {batch}"
        assert report["forms"][form]["command"] == command
        assert f"{form}: `{command}`" in markdown
