"""The package's log messages: one `keras_ninception` logger, three verbosities."""

import io
import logging
import sys

import pytest

from keras_ninception import reporting


@pytest.fixture
def package_logger():
    """The `keras_ninception` logger, its level and handlers restored after the test."""
    logger = logging.getLogger(reporting.LOGGER_NAME)
    level, handlers = logger.level, list(logger.handlers)
    yield logger
    logger.setLevel(level)
    logger.handlers[:] = handlers


def log_every_level():
    logger = logging.getLogger("keras_ninception.training.run")  # a module's logger: a child
    logger.debug("detail")
    logger.info("what the run does")
    logger.warning("act on this")


@pytest.mark.parametrize(
    "verbosity, lines",
    [
        ("quiet", ["act on this"]),
        ("default", ["what the run does", "act on this"]),
        ("verbose", ["detail", "what the run does", "act on this"]),
    ],
)
def test_each_verbosity_shows_its_levels_on_stderr_one_message_a_line(package_logger, capsys, verbosity, lines):
    assert reporting.configure(verbosity) is package_logger
    log_every_level()
    captured = capsys.readouterr()
    assert captured.err.splitlines() == lines  # "%(message)s": no level or logger name
    assert captured.out == ""  # stdout stays for results


def test_configuring_again_replaces_the_level_and_keeps_one_handler(package_logger, capsys):
    reporting.configure("verbose")
    reporting.configure("quiet")
    log_every_level()
    assert capsys.readouterr().err.splitlines() == ["act on this"]  # not twice, no detail
    assert sum(isinstance(h, reporting._StderrHandler) for h in package_logger.handlers) == 1


def test_messages_follow_a_replaced_stderr(package_logger, monkeypatch):
    reporting.configure("default")  # a handler made while stderr is one stream ...
    replaced = io.StringIO()
    monkeypatch.setattr(sys, "stderr", replaced)  # ... writes to the one there is at each message
    logging.getLogger("keras_ninception.x").info("after")
    assert replaced.getvalue() == "after\n"


def test_records_reach_the_applications_handlers(package_logger, caplog):
    # Propagation is kept: an application's logging configuration (here pytest's) gets them.
    with caplog.at_level(logging.INFO, logger=reporting.LOGGER_NAME):
        log_every_level()
    assert [(r.name, r.levelname) for r in caplog.records] == [
        ("keras_ninception.training.run", "INFO"), ("keras_ninception.training.run", "WARNING")]


def test_keras_verbose_is_silent_only_when_quiet():
    assert [reporting.keras_verbose(v) for v in ("quiet", "default", "verbose")] == [0, "auto", "auto"]


def test_an_unknown_verbosity_is_refused():
    with pytest.raises(ValueError, match=r"one of \('quiet', 'default', 'verbose'\). Received: verbosity='loud'"):
        reporting.configure("loud")
