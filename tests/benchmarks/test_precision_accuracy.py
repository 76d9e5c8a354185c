"""`benchmarks/precision_accuracy.py` summarizes runs by hand-checkable numbers (no training here)."""

import pytest

from tests.benchmarks import load_benchmark


def run(seed, precision, main, aux1, seconds):
    policy = "mixed_bfloat16" if precision == "auto" else "float32"
    return {"seed": seed, "precision": precision, "policy": policy,
            "test_accuracy": {"main": main, "aux1": aux1}, "seconds": seconds}


def test_report_means_spread_and_difference_by_hand():
    script = load_benchmark("precision_accuracy")
    runs = [
        run(0, "auto", 0.90, 0.80, 10.0), run(0, "float32", 0.92, 0.81, 30.0),
        run(1, "auto", 0.94, 0.84, 12.0), run(1, "float32", 0.93, 0.82, 34.0),
    ]
    report = script.build_report(runs, "digits", "googlenet", [0, 1], {"epochs": 3})
    auto, fp32 = report["summary"]["auto"], report["summary"]["float32"]
    assert auto["main"]["mean"] == pytest.approx(0.92)
    assert fp32["main"]["mean"] == pytest.approx(0.925)
    # Sample standard deviation of two values a, b: |a - b| / sqrt(2).
    assert auto["main"]["std"] == pytest.approx(0.04 / 2**0.5)
    assert fp32["aux1"]["std"] == pytest.approx(0.01 / 2**0.5)
    assert report["difference_of_means_auto_minus_float32"]["main"] == pytest.approx(-0.005)
    assert report["difference_of_means_auto_minus_float32"]["aux1"] == pytest.approx(0.005)
    assert report["default_policy"] == "mixed_bfloat16"
    text = script.markdown(report)
    assert "| auto | main | 0.9000 | 0.9400 | 0.9200 | 0.0283 |" in text
    assert "| main | -0.0050 |" in text
    assert "default 11 s, float32 32 s (2.91x)" in text
    # The CPU and its bf16/AMX flags beside the figures.
    cpu = report["machine"]
    assert {"model", "cores", "flags", "bf16", "amx"} <= set(cpu)
    assert f"CPU: {cpu['model']}, {cpu['cores']} cores, flags " in text
