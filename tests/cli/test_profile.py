"""`ninception profile`: the numbers the README quotes (in-process: `main` is what the
console script runs)."""

import json

import pytest

from keras_ninception.cli.main import main


@pytest.fixture
def profile(capsys):
    def run(*args):
        assert main(["profile", *args]) == 0, capsys.readouterr().err[-2000:]
        return capsys.readouterr().out

    return run


def test_profile_json_for_googlenet_bn(profile):
    report = json.loads(profile("googlenet", "--variant", "bn", "--json"))
    assert report["macs"] == pytest.approx(1.498e9, rel=0.01)
    assert report["trainable_params"] == 6_624_904
    assert report["claims"]["bottleneck_inception_3a"]["mac_ratio"] == pytest.approx(2.37, abs=0.01)
    assert {row["name"] for row in report["layers"]} >= {"inception_5b_output", "main_classifier"}


def test_profile_table_for_nin(profile):
    out = profile("nin", "--top", "3")
    assert "966,986 parameters" in out and "0.2225 G MACs" in out
    assert "Global average pooling: classifier 1,930 parameters vs 122,890" in out
