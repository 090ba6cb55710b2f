"""Our own server, `python -m cli.dicomscp`, as a peer for the tests.

`start_dicomscp(workdir, ...)` is a context manager: it runs the server as a
subprocess on a free loopback port (PORT 0: the server binds and says which port in
its first line, so there is no race for the port) with an archive folder and,
optionally, a TOML configuration; waits for its "listening" line; and at the end stops
it with SIGINT and checks that it exited with status 0.

Its output (stderr and stdout, merged) is read line by line by a thread, kept in
memory and copied to a log file, so that a test can wait for a log line
(`wait_for_log`, woken by each new line: no polling, no sleep) and read the log.

Used as a pytest plugin (`pytest_plugins = ["tests.ourserver"]` in a test module), it
provides the `dicomscp_factory` and `pynetdicom_ae` fixtures, and adds the log of every
server still running to the report of a failed test. `associate` tells what the server
answered an A-ASSOCIATE-RQ with, through pynetdicom.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.peers import HOST, Peer, PeerError

REPOSITORY = Path(__file__).resolve().parent.parent
STARTUP_S = 30.0  # the server imports pydicom: a few seconds on a loaded machine
STOP_S = 45.0  # the server gives the associations in progress 30 s
LISTENING = re.compile(
    r"dicomscp: (?P<ae>\S+) listening on (?P<host>\S+):(?P<port>\d+), "
    r"archive (?P<archive>.*) \((?P<count>\d+) instances\)"
)

_RUNNING: list[DicomSCP] = []  # for the failure report
_RUNNING_LOCK = threading.Lock()


def environment() -> dict[str, str]:
    """The environment of a subprocess that imports our packages from the checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPOSITORY), env.get("PYTHONPATH", "")) if p
    )
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_dicomscp(
    *args: str | Path | int, cwd: Path | None = None, timeout_s: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """`python -m cli.dicomscp ARGS` to completion (for options that make it exit at once)."""
    return subprocess.run(
        [sys.executable, "-m", "cli.dicomscp", *map(str, args)],
        cwd=cwd or REPOSITORY,
        env=environment(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout_s,
        check=False,
    )


@dataclass(eq=False, kw_only=True)
class DicomSCP(Peer):
    """A running dicomscp: where it listens, its archive, its process and its log."""

    archive: Path
    argv: list[str]
    log_path: Path
    popen: subprocess.Popen[str]
    startup_line: str = ""
    lines: list[str] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _reader: threading.Thread | None = None
    stopped_by_us: bool = False
    signalled: bool = False

    # -- the log

    def _pump(self) -> None:
        assert self.popen.stdout is not None
        with self.log_path.open("a", encoding="utf-8", errors="replace") as log:
            for line in self.popen.stdout:
                log.write(line)
                log.flush()
                with self._changed:
                    self.lines.append(line.rstrip("\n"))
                    self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()  # end of output: waiters see it at once

    def log_text(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def wait_for_log(
        self, pattern: str | re.Pattern[str], timeout_s: float = 20.0, start: int = 0
    ) -> re.Match[str]:
        """The first log line from index `start` on that matches `pattern` (re.search),
        waiting for it at most timeout_s seconds; PeerError if it does not come or the
        server's output ends first."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout_s
        seen = start
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    match = regex.search(line)
                    if match:
                        return match
                seen = max(seen, len(self.lines))
                reader_done = self._reader is not None and not self._reader.is_alive()
                remaining = deadline - time.monotonic()
                if reader_done or remaining <= 0:
                    why = "its output ended" if reader_done else f"not within {timeout_s:g} s"
                    raise PeerError(
                        f"dicomscp: no log line matching {regex.pattern!r}: {why}\n"
                        + "\n".join(self.lines)
                    )
                self._changed.wait(remaining)

    def log_lines_since(self, start: int) -> list[str]:
        with self._changed:
            return self.lines[start:]

    def mark(self) -> int:
        """The number of log lines so far: a `start` for wait_for_log / log_lines_since."""
        with self._changed:
            return len(self.lines)

    # -- the process

    @property
    def pid(self) -> int:
        return self.popen.pid

    def instance_count(self) -> int:
        """The count of instances its startup line announced."""
        match = LISTENING.search(self.startup_line)
        assert match, self.startup_line
        return int(match["count"])

    def send_signal(self, sig: int = signal.SIGTERM) -> None:
        """Ask it to stop (SIGINT or SIGTERM) without waiting; `stop()` then only waits.
        (A second signal could land while the interpreter exits, when Python has put
        the default handlers back: it would kill the process.)"""
        if self.popen.poll() is None:
            self.stopped_by_us = True
            self.signalled = True
            self.popen.send_signal(sig)

    def stop(self, sig: int = signal.SIGINT, timeout_s: float = STOP_S) -> int:
        """Send `sig` (unless send_signal did already) and wait for the exit; returns
        the exit status (SIGKILL and PeerError if it does not exit within timeout_s)."""
        if self.popen.poll() is None and not self.signalled:
            self.stopped_by_us = True
            self.signalled = True
            self.popen.send_signal(sig)
        try:
            self.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)
            raise PeerError(
                f"dicomscp did not exit within {timeout_s:g} s of signal {sig}\n{self.log_text()}"
            ) from None
        finally:
            if self._reader is not None:
                self._reader.join(10)
            with _RUNNING_LOCK:
                if self in _RUNNING:
                    _RUNNING.remove(self)
        return self.popen.returncode


def _launch(
    argv: list[str],
    archive: Path,
    log_path: Path,
    cwd: Path,
    preexec: Callable[[], None] | None = None,
) -> DicomSCP:
    """`preexec` runs in the child before dicomscp starts (to lower a resource limit)."""
    popen = subprocess.Popen(
        argv,
        cwd=cwd,
        env=environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        bufsize=1,
        start_new_session=True,  # a Ctrl-C in the terminal is not meant for it
        preexec_fn=preexec,
    )
    server = DicomSCP(HOST, 0, "", archive=archive, argv=argv, log_path=log_path, popen=popen)
    server._reader = threading.Thread(target=server._pump, name="dicomscp-log", daemon=True)
    server._reader.start()
    return server


@contextlib.contextmanager
def start_dicomscp(
    workdir: Path,
    *args: str | Path | int,
    archive: Path | None = None,
    config: str | Path | None = None,
    host: str | None = HOST,
    port: int | None = 0,
    check_exit: bool = True,
    preexec: Callable[[], None] | None = None,
) -> Iterator[DicomSCP]:
    """Run `python -m cli.dicomscp --archive ARCHIVE --host 127.0.0.1 [--config F] ARGS PORT`.

    archive: default workdir/archive (kept when the server stops: start another on it
    to test a restart). config: TOML text (written to workdir/dicomscp-N.toml) or a path;
    with a config, pass archive=None, host=None, port=None to let it decide them. PORT
    0 (the default) lets the server pick a free port and say which. At the end, a
    server still running is stopped with SIGINT, and (check_exit) must exit with 0; one
    that died on its own during the test is reported as a failure.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "cli.dicomscp"]
    if archive is None and config is None:
        archive = workdir / "archive"
    if archive is not None:
        argv += ["--archive", str(archive)]
    if host is not None:
        argv += ["--host", host]
    if config is not None:
        if isinstance(config, str):
            n = len(list(workdir.glob("dicomscp-*.toml"))) + 1
            path = workdir / f"dicomscp-{n}.toml"
            path.write_text(config, encoding="utf-8")
            config = path
        argv += ["--config", str(config)]
    argv += [*map(str, args)]
    if port is not None:
        argv.append(str(port))
    n = len(list(workdir.glob("dicomscp*.log"))) + 1
    log_path = workdir / f"dicomscp-{n}.log"
    server = _launch(argv, archive or Path(), log_path, workdir, preexec)
    with _RUNNING_LOCK:
        _RUNNING.append(server)
    try:
        match = server.wait_for_log(LISTENING, STARTUP_S)
    except BaseException:
        with contextlib.suppress(PeerError):
            server.stop(signal.SIGKILL, 10)  # did not start: no clean stop to check
        raise
    server.startup_line = match.string
    server.host = match["host"] if match["host"] not in ("0.0.0.0", "::") else HOST
    server.port = int(match["port"])
    server.ae_title = match["ae"]
    server.archive = Path(match["archive"])
    try:
        yield server
    finally:
        died = server.popen.poll() is not None and not server.stopped_by_us
        code = server.stop()
    if died:
        raise PeerError(f"dicomscp exited with status {code} during the test\n{server.log_text()}")
    if check_exit and code != 0:
        raise PeerError(f"dicomscp exited with status {code} after SIGINT\n{server.log_text()}")


@pytest.fixture
def dicomscp_factory(tmp_path: Path) -> Iterator[Callable[..., DicomSCP]]:
    """make(*args, archive=None, config=None, name="dicomscp") -> DicomSCP; every server
    made is stopped (SIGINT, exit status 0 checked) at the end of the test."""
    with contextlib.ExitStack() as stack:

        def make(
            *args: str | Path | int,
            archive: Path | None = None,
            config: str | Path | None = None,
            name: str = "dicomscp",
            **kwargs: Any,
        ) -> DicomSCP:
            workdir = tmp_path / name
            if archive is None and config is None:
                archive = workdir / "archive"
            return stack.enter_context(
                start_dicomscp(workdir, *args, archive=archive, config=config, **kwargs)
            )

        yield make


@pytest.fixture
def pynetdicom_ae() -> Iterator[Any]:
    """A pynetdicom AE (AE title PYNETDICOM, 30 s timeouts) for the test's requests."""
    from tests.peers import require_pynetdicom

    require_pynetdicom()
    from pynetdicom import AE

    ae = AE(ae_title="PYNETDICOM")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    yield ae
    ae.shutdown()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Add the log of every dicomscp running when a test fails."""
    report = yield
    if report.failed and report.when in ("setup", "call"):
        with _RUNNING_LOCK:
            running = list(_RUNNING)
        for server in running:
            title = f"dicomscp log (pid {server.pid}, {server.log_path})"
            report.sections.append((title, server.log_text()[-20_000:]))
    return report


# --------------------------------------------------------------------------------------
# Observing what the server accepts (with pynetdicom)


@dataclass
class Outcome:
    """What the server answered: `assoc` (pynetdicom's Association) and, for an
    A-ASSOCIATE-RJ, its result, source and reason."""

    assoc: Any
    result: int | None = None
    source: int | None = None
    reason: int | None = None
    state: str = ""  # established, rejected, aborted or failed (no connection...)

    @property
    def rejected(self) -> bool:
        return self.result is not None


def associate(
    ae: Any, server: Peer, calling: str = "PYNETDICOM", called: str = "DICOMSCP"
) -> Outcome:
    """Associate with pynetdicom's `ae` (Verification is proposed if it proposes
    nothing) and say what the server answered.

    The A-ASSOCIATE-RJ is taken from the PDU as pynetdicom received it (EVT_PDU_RECV),
    not from the association's state: pynetdicom 3.0.4 sometimes (about 1 in 150 here)
    reports a received rejection as an abort, when the server closes the connection
    at once after the RJ, as PS3.8 lets it."""
    from pynetdicom import evt
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    rejections: list[Any] = []

    def on_pdu(event: Any) -> None:
        if type(event.pdu).__name__ == "A_ASSOCIATE_RJ":
            rejections.append(event.pdu)

    ae.ae_title = calling
    if not ae.requested_contexts:
        ae.add_requested_context(Verification)
    assoc = ae.associate(
        server.host, server.port, ae_title=called, evt_handlers=[(evt.EVT_PDU_RECV, on_pdu)]
    )
    outcome = Outcome(assoc)
    if rejections:
        pdu = rejections[-1]
        outcome.result, outcome.source, outcome.reason = (
            pdu.result, pdu.source, pdu.reason_diagnostic,
        )  # fmt: skip
    outcome.state = (
        "established" if assoc.is_established
        else "rejected" if rejections
        else "aborted" if assoc.is_aborted
        else "failed"
    )  # fmt: skip
    return outcome
