"""`-q/--quiet` and `-v/--verbose` mean the same in every subcommand (no training here: the
subcommands' functions are replaced by fakes that log at every level)."""

import logging

import pytest

from keras_ninception import reporting
from keras_ninception.cli.main import build_parser, main

SUBCOMMANDS = ("train", "evaluate", "prune", "profile", "tune", "export", "predict", "prepare")
# The arguments each subcommand needs to parse.
REQUIRED = {
    "train": [], "evaluate": ["RUN"], "prune": ["RUN", "--head", "aux1"], "profile": ["nin"], "tune": [],
    "export": ["RUN", "--format", "keras"], "predict": ["RUN", "image.jpg"], "prepare": ["FOLDER", "--out", "DIR"],
}


@pytest.fixture(autouse=True)
def _restore_package_logger():
    logger = logging.getLogger(reporting.LOGGER_NAME)
    level, handlers = logger.level, list(logger.handlers)
    yield
    logger.setLevel(level)
    logger.handlers[:] = handlers


def test_every_subcommand_has_both_flags():
    parser = build_parser()
    assert set(parser._subparsers._group_actions[0].choices) == set(SUBCOMMANDS)
    for command in SUBCOMMANDS:
        for flags, verbosity in (([], "default"), (["-q"], "quiet"), (["--quiet"], "quiet"),
                                 (["-v"], "verbose"), (["--verbose"], "verbose")):
            assert parser.parse_args([command, *REQUIRED[command], *flags]).verbosity == verbosity, (command, flags)


def test_quiet_and_verbose_together_are_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["train", "--quiet", "--verbose"])
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def fake(name, calls):
    def run(*args, **kwargs):
        logger = logging.getLogger(f"keras_ninception.{name}")
        logger.debug("detail")
        logger.info("run message")
        logger.warning("warning")
        calls.append(kwargs.get("verbose"))
        return {}

    return run


@pytest.mark.parametrize(
    "command, module, function, argv",
    [
        ("train", "keras_ninception.training.run", "train", ["train"]),
        ("tune", "keras_ninception.tuning.run", "tune", ["tune"]),
        ("prune", "keras_ninception.training.heads", "prune_run", ["prune", "RUN", "--head", "aux1"]),
    ],
)
@pytest.mark.parametrize(
    "flags, stderr, keras_verbose",
    [
        ([], ["run message", "warning"], "auto"),
        (["--quiet"], ["warning"], 0),
        (["--verbose"], ["detail", "run message", "warning"], "auto"),
    ],
)
def test_the_flags_set_the_log_level_and_keras_verbosity(
    monkeypatch, capsys, command, module, function, argv, flags, stderr, keras_verbose
):
    import importlib

    calls = []
    monkeypatch.setattr(importlib.import_module(module), function, fake(command, calls))
    assert main([*argv, *flags]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == stderr
    assert captured.out == ""
    assert calls == [keras_verbose]  # --quiet also turns Keras' progress bars off


def test_quiet_keeps_the_results_on_stdout(capsys):
    assert main(["profile", "nin", "--top", "2", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "Global average pooling: classifier" in captured.out and captured.err == ""
