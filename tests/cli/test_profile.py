"""`ninception profile`: the numbers the README quotes."""

import json
import os
import subprocess
import sys

import pytest


def profile(*args):
    result = subprocess.run(
        [sys.executable, "-m", "keras_ninception", "profile", *args],
        capture_output=True, text=True, timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_profile_json_for_googlenet_bn():
    report = json.loads(profile("googlenet", "--variant", "bn", "--json"))
    assert report["macs"] == pytest.approx(1.498e9, rel=0.01)
    assert report["trainable_params"] == 6_624_904
    assert report["claims"]["bottleneck_inception_3a"]["mac_ratio"] == pytest.approx(2.37, abs=0.01)
    assert {row["name"] for row in report["layers"]} >= {"inception_5b_output", "main_classifier"}


def test_profile_table_for_nin():
    out = profile("nin", "--top", "3")
    assert "966,986 parameters" in out and "0.2225 G MACs" in out
    assert "Global average pooling: classifier 1,930 parameters vs 122,890" in out
