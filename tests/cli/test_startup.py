"""First contact: `--help` answers without importing TensorFlow, every flag shows its default,
and a command that runs prints its own lines, not TensorFlow's C++ log."""

import argparse
import os
import re
import subprocess
import sys

import pytest

from keras_ninception.cli.main import build_parser, quiet_tensorflow_logs
from keras_ninception.training.config import TrainConfig

COMMANDS = ("train", "prepare", "evaluate", "prune", "profile", "tune", "export", "predict")
# A line of TensorFlow's C++ log (absl): severity, date, time, thread, file:line.
TF_LOG_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ [\w.]+:\d+\]", re.MULTILINE)

HELP_EVERYTHING = """
import sys
from keras_ninception.cli.main import main
for argv in ([], *([command, "--help"] for command in sys.argv[1:])):
    try:
        main(argv or ["--help"])
    except SystemExit as exit:
        assert exit.code == 0, (argv, exit.code)
print("heavy modules:", sorted(m for m in ("tensorflow", "keras", "tensorflow_datasets", "keras_tuner", "matplotlib") if m in sys.modules))
"""


def subcommand_parsers():
    parser = build_parser()
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return subparsers.choices


@pytest.mark.slow
def test_help_of_every_command_imports_no_tensorflow():
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-c", HELP_EVERYTHING, *COMMANDS], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "heavy modules: []" in result.stdout
    for command in COMMANDS:
        assert f"usage: ninception {command}" in result.stdout
    assert result.stderr == ""


def test_every_command_is_in_the_parser_and_every_flag_has_help():
    assert set(subcommand_parsers()) == set(COMMANDS)
    for command, parser in subcommand_parsers().items():
        for action in parser._actions:
            assert action.help, (command, action.option_strings or action.dest)


def test_train_help_shows_every_default_of_train_config():
    parser = subcommand_parsers()["train"]
    formatter = parser._get_formatter()
    helps = {a.option_strings[-1]: formatter._expand_help(a) for a in parser._actions if a.option_strings}
    defaults = TrainConfig()
    fast = TrainConfig(recipe="fast").validate().resolved()  # the recipe fields' defaults
    for flag, value in (("--epochs", fast.epochs), ("--batch-size", fast.batch_size),
                        ("--learning-rate", fast.learning_rate), ("--optimizer", fast.optimizer)):
        assert f"(default: the recipe's; fast: {value})" in helps[flag], (flag, helps[flag])
    for flag, value in (
        ("--model", defaults.model), ("--dataset", defaults.dataset), ("--seed", defaults.seed),
        ("--aux-loss-weight", defaults.aux_loss_weight), ("--validation-fraction", defaults.validation_fraction),
        ("--on-bad-image", defaults.on_bad_image), ("--strategy", defaults.strategy),
        ("--image-summary-freq", defaults.image_summary_freq), ("--num-summary-images", defaults.num_summary_images),
        ("--histogram-freq", defaults.histogram_freq), ("--cache", defaults.cache),
    ):
        assert f"(default: {value}" in helps[flag], (flag, helps[flag])
    assert helps["--epochs"].endswith("(default: the recipe's; fast: 6)")
    assert helps["--learning-rate"].endswith("(default: the recipe's; fast: 0.002)")
    assert helps["--augment"].endswith("(default: the recipe's; fast: crop for digits and gray TFDS datasets, else crop_flip)")
    assert helps["--no-aux"] == "GoogLeNet without aux heads"  # a switch: no "(default: True)"
    for flag, text in helps.items():  # every flag that takes a value says what happens without it
        action = next(a for a in parser._actions if flag in a.option_strings)
        if action.nargs != 0:
            assert "default" in text, flag


def test_quiet_by_default_unless_the_user_set_the_level_and_verbose_lets_everything_through(monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    quiet_tensorflow_logs()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "1")
    quiet_tensorflow_logs()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "1"
    quiet_tensorflow_logs(verbose=True)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"


@pytest.mark.slow
def test_a_command_prints_no_tensorflow_log_lines_unless_verbose():
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    command = [sys.executable, "-m", "keras_ninception", "profile", "nin", "--top", "1"]
    quiet = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    assert "966,986 parameters" in quiet.stdout
    assert not TF_LOG_LINE.search(quiet.stderr), quiet.stderr[-2000:]
    assert "absl::InitializeLog" not in quiet.stderr
    verbose = subprocess.run(command + ["--verbose"], capture_output=True, text=True, timeout=300, env=env)
    assert verbose.returncode == 0, verbose.stderr[-3000:]
    assert "966,986 parameters" in verbose.stdout
