"""Where dicomscu's messages go, and how much of the library's logging is shown.

stdout carries results only (C-FIND responses); everything else goes to stderr, or to
the `-L/--log-file` file. gdcmscu's levels:

    (none)        dicomscu's own warnings and errors; nothing from the library
    -E/--error    also the library's errors
    -W/--warning  also the library's warnings
    -V/--verbose  warnings and errors, and what dicomscu is doing (echo succeeded...)
    -D/--debug    everything: every PDU and every state transition (`dul`, `dimse`)

With `-L FILE` all of it goes to FILE; dicomscu's own errors are written to stderr as
well, so that a failure is never silent on the terminal.

Python warnings (pydicom's, mostly: an invalid value, a VR it guessed) never reach
the terminal raw, with a file name and a line of source: `warnings_as_log_lines`
turns each into one line of ours (`dicomscu: warning: pydicom: Invalid value for VR
DA: '2004-01-01'`). pydicom also logs what it warns of; its logger is kept quiet
(but for -D) so that nothing is said twice, nor printed by Python's last resort.

The settings are undone when `configured_logging` exits, so that `main()` can be
called many times in one process (the tests do).
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CLI_LOGGER = "dicomscu"
LIBRARY_LOGGERS = ("dul", "dimse")
PYDICOM_LOGGER = "pydicom"
#: pydicom's pointer to the VR table, at the end of its value warnings.
_SEE_TABLE = re.compile(r"\s*Please see <[^>]*> for allowed values for each VR\.?")
SILENT = logging.CRITICAL + 10

log = logging.getLogger(CLI_LOGGER)


@dataclass(frozen=True, slots=True)
class Verbosity:
    error: bool = False
    warning: bool = False
    verbose: bool = False
    debug: bool = False

    def library_level(self) -> int:
        if self.debug:
            return logging.DEBUG
        if self.warning or self.verbose:
            return logging.WARNING
        if self.error:
            return logging.ERROR
        return SILENT

    def cli_level(self) -> int:
        if self.debug:
            return logging.DEBUG
        if self.verbose:
            return logging.INFO
        return logging.WARNING


class _TerminalFormatter(logging.Formatter):
    """`dicomscu: ...` for our messages, `D: dul.machine: ...` for the library's."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info and record.levelno <= logging.DEBUG:
            message += "\n" + self.formatException(record.exc_info)
        if record.name == CLI_LOGGER or record.name.startswith(CLI_LOGGER + "."):
            if record.levelno >= logging.ERROR:
                return f"dicomscu: error: {message}"
            if record.levelno >= logging.WARNING:
                return f"dicomscu: warning: {message}"
            return f"dicomscu: {message}"
        return f"{record.levelname[0]}: {record.name}: {message}"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a record is emitted (pytest swaps it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def warning_line(message: Warning | str, filename: str) -> str:
    """A warning as one line: where it comes from (pydicom, or the module), what it says."""
    origin = "pydicom" if "pydicom" in filename else Path(filename).stem
    text = _SEE_TABLE.sub("", str(message)).strip()
    return f"{origin}: {text}"


@contextlib.contextmanager
def warnings_as_log_lines(logger: logging.Logger) -> Iterator[None]:
    """Within the block, every Python warning is one warning line of `logger`'s."""

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: object = None,
        line: str | None = None,
    ) -> None:
        logger.warning("%s", warning_line(message, filename))

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


@contextlib.contextmanager
def configured_logging(verbosity: Verbosity, log_file: Path | None = None) -> Iterator[None]:
    """Set up the loggers for one run of dicomscu; restore them afterwards."""
    names = (CLI_LOGGER, *LIBRARY_LOGGERS, PYDICOM_LOGGER)
    saved = {
        name: (logger.level, logger.propagate, list(logger.handlers))
        for name in names
        for logger in [logging.getLogger(name)]
    }
    terminal_errors: logging.Handler | None = None
    if log_file is None:
        main_handler: logging.Handler = _StderrHandler()
        main_handler.setFormatter(_TerminalFormatter())
    else:
        main_handler = logging.FileHandler(log_file, encoding="utf-8")
        main_handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
        terminal_errors = _StderrHandler()
        terminal_errors.setLevel(logging.ERROR)
        terminal_errors.setFormatter(_TerminalFormatter())
    try:
        for name in names:
            logger = logging.getLogger(name)
            logger.handlers = [main_handler]
            logger.setLevel(
                verbosity.cli_level() if name == CLI_LOGGER else verbosity.library_level()
            )
            logger.propagate = False
        if not verbosity.debug:  # its warnings come as Python warnings too: said once
            logging.getLogger(PYDICOM_LOGGER).handlers = [logging.NullHandler()]
        if terminal_errors is not None:
            logging.getLogger(CLI_LOGGER).addHandler(terminal_errors)
        with warnings_as_log_lines(logging.getLogger(CLI_LOGGER)):
            yield
    finally:
        main_handler.close()
        if terminal_errors is not None:
            terminal_errors.close()
        for name, (level, propagate, old_handlers) in saved.items():
            logger = logging.getLogger(name)
            logger.setLevel(level)
            logger.propagate = propagate
            logger.handlers = old_handlers
