"""The package's run messages: Python `logging` under the `keras_ninception` logger.

Every module logs to `logging.getLogger(__name__)`, a child of `keras_ninception`: INFO for
what a run does (resuming, precision, where the run was saved, the final accuracy), DEBUG for
detail (the resolved configuration), WARNING for what the user should act on. Results a user
pipes (`--json`, `predict`, the `evaluate` and `profile` tables) are not log messages: the
CLI prints them on stdout. Keras' progress bars stay Keras' own (stdout, `verbose=`).

The package configures no handler when imported (Python's rule for libraries): in your own
code, `logging.basicConfig(level=logging.INFO)` or `configure()` shows the messages. The
`ninception` command calls `configure()` with the verbosity of `--quiet` / `--verbose`.
"""

import logging
import sys

LOGGER_NAME = "keras_ninception"
# `--quiet`: warnings and errors only; default: what a run does; `--verbose`: and its detail.
LEVELS = {"quiet": logging.WARNING, "default": logging.INFO, "verbose": logging.DEBUG}


class _StderrHandler(logging.StreamHandler):
    """A `StreamHandler` on whatever `sys.stderr` is when a message is written (so a
    redirected or captured stderr, as under pytest, gets the messages)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def configure(verbosity="default"):
    """Shows the package's messages on stderr, one per line, at `verbosity`.

    Args:
        verbosity: `"quiet"` (warnings and errors), `"default"` (and INFO: what a run does)
            or `"verbose"` (and DEBUG). Calling again replaces the previous setting.

    Returns:
        The `keras_ninception` logger.

    Raises:
        ValueError: an unknown `verbosity`.
    """
    if verbosity not in LEVELS:
        raise ValueError(f"`verbosity` must be one of {tuple(LEVELS)}. Received: verbosity={verbosity!r}")
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(LEVELS[verbosity])
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    return logger


def keras_verbose(verbosity):
    """Keras' `verbose` for `fit`/`evaluate`/`search` at `verbosity`: 0 when quiet, else "auto"."""
    return 0 if verbosity == "quiet" else "auto"
