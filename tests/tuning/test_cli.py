"""`ninception tune`: run definitions from tuning/, flags over the file, errors in our words."""

import glob
import json
import os

from keras_ninception.cli.main import build_parser, main
from keras_ninception.tuning.run import TuneConfig

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFINITIONS = sorted(glob.glob(os.path.join(REPO, "tuning", "*.json")))


def test_the_shipped_run_definitions_are_valid():
    assert {os.path.basename(p) for p in DEFINITIONS} >= {"nin_digits.json", "googlenet_cifar_folder.json"}
    for path in DEFINITIONS:
        config = TuneConfig.from_json(path).validate().resolved()
        assert config.run_dir == os.path.join("saved_models", config.name)


def test_flags_override_the_definition_file(tmp_path):
    args = build_parser().parse_args(
        ["tune", "--config", os.path.join(REPO, "tuning", "nin_digits.json"), "--max-trials", "2", "--no-batch-norm"]
    )
    fields = {k: v for k, v in vars(args).items() if k in TuneConfig.__dataclass_fields__ and v is not None}
    config = TuneConfig.from_json(args.config, **fields)
    assert (config.max_trials, config.batch_norm, config.epochs, config.model) == (2, False, 3, "nin")


def test_unknown_keys_in_a_definition_are_an_error(tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"model": "nin", "epoch": 3}))
    assert main(["tune", "--config", str(path)]) == 2
    assert "unknown keys ['epoch']" in capsys.readouterr().err


def test_tune_command_runs_and_refuses_to_run_again(tmp_path, capsys):
    path = tmp_path / "tiny.json"
    path.write_text(
        json.dumps(
            {
                "model": "nin",
                "image_size": 8,
                "max_trials": 1,
                "epochs": 1,
                "search_space": {"mlpconv1_filters": 16, "mlpconv2_filters": 16, "mlpconv3_filters": 16},
            }
        )
    )
    run_dir = str(tmp_path / "run")
    assert main(["tune", "--config", str(path), "--run-dir", run_dir]) == 0
    err = capsys.readouterr().err  # the table and the run messages are log records, on stderr
    assert "rank  trial_id     status  val_main_accuracy" in err
    assert f"Best model saved in {run_dir}" in err
    assert main(["tune", "--config", str(path), "--run-dir", run_dir]) == 2
    assert "already holds a tuning run. Pass --resume" in capsys.readouterr().err
    assert main(["tune", "--config", str(path), "--run-dir", run_dir, "--epochs", "2", "--resume"]) == 2
    assert "epochs: saved 1, now 2" in capsys.readouterr().err
    assert main(["tune", "--config", str(path), "--run-dir", run_dir, "--resume"]) == 0
    assert "0 new" in capsys.readouterr().err
