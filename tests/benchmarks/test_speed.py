"""`benchmarks/speed.py --quick` runs end to end and writes its JSON and Markdown (no timing checks)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.benchmarks import benchmark_path, load_benchmark
from tests.data.images import write_image

pytestmark = pytest.mark.slow

SCRIPT = benchmark_path("speed")


def test_quick_run_writes_every_figure(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        for i in range(6):
            write_image(str(tmp_path / "data" / "train" / name / f"{i}.jpg"),
                        rng.integers(0, 256, (12, 12, 3), dtype=np.uint8), image_format="jpeg")
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, SCRIPT, "--quick", "--models", "nin", "--precisions", "float32,mixed_bfloat16",
         "--inference", "keras", "--nin-size", "8", "--nin-batch", "4", "--matmul-size", "64",
         "--data", str(tmp_path / "data"), "--no-peer", "--out-dir", str(out)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "speed.json").read_text())
    assert report["errors"] == {}
    medians = report["medians"]
    for case in ("matmul/float32", "matmul/bfloat16", "nin/float32/train", "nin/float32/infer_keras",
                 "nin/mixed_bfloat16/train", "nin/mixed_bfloat16/infer_keras", "pipeline/nin"):
        assert medians[case], case
        assert all(v > 0 for v in medians[case].values()), case
    assert set(report["ratios"]) == {"pipeline_vs_train_nin"}
    # Utilization = 2 x MACs x (3 for training) x images/s / peak of the same precision.
    util = report["utilization"]["nin/float32/train"]
    expected = 2 * report["macs_per_image"]["nin"]["train"] * 3 * medians["nin/float32/train"]["images_per_s"] / 1e9
    assert util["gflops"] == pytest.approx(expected)
    assert util["fraction_of_peak"] == pytest.approx(expected / medians["matmul/float32"]["gflops"])
    assert report["inference_check"]["nin/float32/infer_keras"]["max_abs_diff_vs_keras"] == 0.0
    assert "| nin/mixed_bfloat16/train |" in (out / "speed.md").read_text()


@pytest.mark.parametrize("variant, size, classes, stem_layer", [
    ("cifar", 32, 10, "conv1_3x3"),  # the small-image stem: a 3x3 convolution, no stride
    ("bn", 64, 1000, "conv1_7x7_s2"),  # the paper's stem
])
def test_googlenet_variant_reaches_the_benchmarked_model(variant, size, classes, stem_layer):
    speed = load_benchmark("speed")
    model, inference, x, y = speed.build_models("googlenet", "float32", size, 2, variant=variant)
    assert inference.output_shape == (None, classes)
    assert set(y) == set(model.output_names) and len(y) == 3
    assert all(int(labels.max()) < classes for labels in y.values())
    assert x.shape == (2, size, size, 3)
    assert stem_layer in [layer.name for layer in model.layers]
    assert speed.parse_args(["--googlenet-variant", variant]).googlenet_variant == variant
