"""`benchmarks/cifar_accuracy.py` keeps the committed forms a new report has no run folder for."""

import importlib.util
import json
import os

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks", "cifar_accuracy.py")


def load_script():
    spec = importlib.util.spec_from_file_location("cifar_accuracy", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_new_report_keeps_forms_trained_elsewhere_with_their_own_cpu(tmp_path):
    script = load_script()
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
