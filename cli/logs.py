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

The settings are undone when `configured_logging` exits, so that `main()` can be
called many times in one process (the tests do).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CLI_LOGGER = "dicomscu"
LIBRARY_LOGGERS = ("dul", "dimse")
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


@contextlib.contextmanager
def configured_logging(verbosity: Verbosity, log_file: Path | None = None) -> Iterator[None]:
    """Set up the loggers for one run of dicomscu; restore them afterwards."""
    names = (CLI_LOGGER, *LIBRARY_LOGGERS)
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
        if terminal_errors is not None:
            logging.getLogger(CLI_LOGGER).addHandler(terminal_errors)
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
