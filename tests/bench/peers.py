"""The programs the benchmark runs: servers on free loopback ports, and timed clients.

Built on tests/peers.py (free ports, polling with a deadline, DCMTK's real binaries,
dcmqrscp and Orthanc), with what a benchmark needs on top:

- an environment per process (DCMTK reads TCP_NODELAY from it);
- the peak resident memory of each process we start, read from `os.wait4` when it
  exits (ru_maxrss of that one child, through tests/bench/launchers.py), or from
  /proc/PID/status (VmHWM, tests/bench/procfs.py) while it runs;
- the wall time of a client run, from just before it is started to its exit.

Nothing sleeps to wait for a peer: readiness is polled with a deadline (tests.peers),
and the exit of a process is awaited on its pidfd (select with a timeout).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import peers as test_peers
from tests.bench.launchers import LAUNCHER

HOST = test_peers.HOST
REPOSITORY = Path(__file__).resolve().parents[2]
STARTUP_S = 30.0
_LISTENING = re.compile(r"listening on \S+?:(\d+)")


class BenchError(RuntimeError):
    """A peer or a client did not do what the benchmark needs; the message says why."""


def dcmtk(name: str) -> str:
    """DCMTK's binary (never pynetdicom's script of the same name); BenchError if missing."""
    try:
        return test_peers.dcmtk(name)
    except pytest.skip.Exception as exc:  # tests.peers skips when a peer is missing
        raise BenchError(str(exc)) from None


def orthanc_binary() -> str:
    try:
        return test_peers.orthanc_binary()
    except pytest.skip.Exception as exc:
        raise BenchError(str(exc)) from None


def environment(nodelay: bool | None = None, **extra: str) -> dict[str, str]:
    """This process's environment, with the repository on PYTHONPATH (for `python -m cli`
    and `python -m tests.bench.api`) and TCP_NODELAY set to 1 (True), removed (None:
    DCMTK's default), or set to 0 (False)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPOSITORY), env.get("PYTHONPATH", "")) if p
    )
    env.pop("TCP_NODELAY", None)
    if nodelay is not None:
        env["TCP_NODELAY"] = "1" if nodelay else "0"
    env.update(extra)
    return env


@contextlib.contextmanager
def patched_environ(**values: str) -> Iterator[None]:
    """os.environ with `values` set, for the peers that tests.peers starts (they inherit
    this process's environment)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class Process:
    """A program we started, in its own process group, its output in a log file.

    With `launcher`, it runs under LAUNCHER, which gives its own wall time and peak
    RSS (`seconds`, `peak_rss_kib`); else `seconds` is measured here, from just before
    Popen to the exit, and the peak RSS of a running process is read with
    `procfs.vm_hwm_kib`.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        launcher: bool = False,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.report_path: Path | None = None
        if launcher:
            self.report_path = log_path.with_suffix(".rusage.json")
            self.report_path.unlink(missing_ok=True)
            argv = [sys.executable, "-S", "-c", LAUNCHER, str(self.report_path), *argv]
        self.log_path = log_path
        self.report: dict[str, float] | None = None
        self.returncode: int | None = None
        self.stopped_by_us = False  # stop() found it running: its exit is no crash
        with log_path.open("ab") as log:
            log.write(f"$ {subprocess.list2cmdline(self.argv)}\n".encode())
            log.flush()
            self.started = time.perf_counter()
            self.popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd or REPOSITORY,
                start_new_session=True,
            )
        self.ended: float | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def seconds(self) -> float:
        """Wall time of the run (the launcher's figure when there is one)."""
        assert self.ended is not None
        if self.report is not None:
            return float(self.report["seconds"])
        return self.ended - self.started

    @property
    def peak_rss_kib(self) -> int | None:
        """ru_maxrss of the program, from the launcher (None without one)."""
        return int(self.report["maxrss_kib"]) if self.report is not None else None

    def log_text(self, max_chars: int = 6000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"<no log: {exc}>"
        return text if len(text) <= max_chars else "...\n" + text[-max_chars:]

    def running(self) -> bool:
        return self.returncode is None and self.popen.poll() is None

    def wait(self, timeout_s: float) -> int:
        """Wait for the exit (on the pidfd, no polling); reap it with its rusage."""
        if self.returncode is not None:
            return self.returncode
        fd = os.pidfd_open(self.pid)
        try:
            ready, _, _ = select.select([fd], [], [], timeout_s)
        finally:
            os.close(fd)
        if not ready:
            raise subprocess.TimeoutExpired(self.argv, timeout_s)
        _, status = os.waitpid(self.pid, 0)
        self.ended = time.perf_counter()
        self.returncode = os.waitstatus_to_exitcode(status)
        self.popen.returncode = self.returncode  # Popen must not wait for it again
        if self.report_path is not None and self.report_path.exists():
            self.report = json.loads(self.report_path.read_text())
        return self.returncode

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, grace_s: float = 10.0) -> int:
        """`sig` to its process group, SIGKILL after grace_s; reaps it."""
        if self.running():
            self.stopped_by_us = True
        if self.returncode is None:
            self._signal_group(sig)
            try:
                self.wait(grace_s)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.wait(grace_s)
        self._signal_group(signal.SIGKILL)  # children left in the group (dcmqrscp forks)
        return self.returncode if self.returncode is not None else -1

    def describe(self) -> str:
        return f"{self.name} (pid {self.pid}), log {self.log_path}:\n{self.log_text()}"


# ---------------------------------------------------------------------------------------
# Clients: run to completion, timed.


@dataclass
class ClientRun:
    name: str
    argv: list[str]
    seconds: float  # from just before the fork to the exit: process start included
    returncode: int
    peak_rss_kib: int | None  # its own ru_maxrss (through LAUNCHER)
    output: str


def run_client(
    name: str,
    argv: Sequence[str],
    log_dir: Path,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 600.0,
    check: bool = True,
) -> ClientRun:
    """Run a client to completion; BenchError (with its output) if it fails or reports an
    error (DCMTK and pynetdicom apps print `E: ...` lines, and may still exit 0)."""
    log_path = log_dir / f"{name}.log"
    log_path.unlink(missing_ok=True)
    process = Process(name, argv, log_path, env, launcher=True)
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.stop(signal.SIGKILL)
        raise BenchError(
            f"{name} did not finish within {timeout_s:g} s\n{process.describe()}"
        ) from None
    output = log_path.read_text(errors="replace")
    run = ClientRun(
        name, list(argv), process.seconds, process.returncode or 0, process.peak_rss_kib, output
    )
    if check and (run.returncode != 0 or re.search(r"^(E:|F:|Traceback)", output, re.MULTILINE)):
        raise BenchError(f"{name} failed (exit status {run.returncode})\n{process.describe()}")
    return run


# ---------------------------------------------------------------------------------------
# Servers.


@dataclass
class Server:
    """A server process listening on HOST:port; `directory` is where it writes (if any)."""

    name: str
    port: int
    ae_title: str
    process: Process
    directory: Path | None = None
    host: str = HOST

    def stop(self, sig: int = signal.SIGTERM) -> int:
        return self.process.stop(sig)

    def received_files(self) -> list[Path]:
        if self.directory is None:
            return []
        return sorted(p for p in self.directory.rglob("*") if p.is_file())


def _check_alive(process: Process) -> bool:
    if not process.running():
        raise BenchError(f"{process.name} exited before it listened\n{process.describe()}")
    return True


@contextlib.contextmanager
def _serving(make: Callable[[], Server], attempts: int = 3) -> Iterator[Server]:
    """Start a server (`make()` returns it once it listens), retrying on a port taken
    between free_port() and the bind; stop it at the end, and fail if it died meanwhile."""
    server: Server | None = None
    for attempt in range(1, attempts + 1):
        try:
            server = make()
            break
        except BenchError as exc:
            if attempt == attempts or "already in use" not in str(exc).lower():
                raise
    assert server is not None
    try:
        yield server
    finally:
        died = not server.process.running()
        server.stop()
    if died:
        raise BenchError(f"{server.name} died during the benchmark\n{server.process.describe()}")


def _wait_listening(process: Process, port: int) -> None:
    try:
        test_peers.wait_until(
            lambda: _check_alive(process) and test_peers.port_accepts(HOST, port),
            STARTUP_S,
            f"{process.name} listening on {HOST}:{port}",
        )
    except test_peers.PeerError as exc:
        process.stop(signal.SIGKILL)
        raise BenchError(f"{exc}\n{process.describe()}") from None


def _storescp_like(
    name: str,
    command: list[str],
    workdir: Path,
    ignore: bool,
    ae_title: str,
    env: dict[str, str],
) -> Iterator[Server]:
    """A storescp-style server (`COMMAND -aet AE (--ignore | -od DIR) PORT`) on a free
    port, writing to workdir/received unless `ignore`."""
    out = workdir / "received"

    def make() -> Server:
        port = test_peers.free_port()
        args = ["--ignore"] if ignore else ["-od", str(out)]
        if not ignore:
            out.mkdir(parents=True, exist_ok=True)
        argv = [*command, "-aet", ae_title, *args, str(port)]
        log_path = workdir / f"{re.sub(r'[^A-Za-z0-9]+', '-', name)}-{port}.log"
        process = Process(name, argv, log_path, env)
        _wait_listening(process, port)
        return Server(name, port, ae_title, process, None if ignore else out)

    with _serving(make) as server:
        yield server


@contextlib.contextmanager
def dcmtk_storescp(
    workdir: Path,
    *,
    ignore: bool,
    nodelay: bool | None = True,
    ae_title: str = "STORESCP",
    fork: bool = False,
) -> Iterator[Server]:
    """DCMTK `storescp`, `--ignore` or writing to workdir/received: a single process,
    one association at a time, or with `fork` a child process for each association
    (`--fork`: any number at once; its listen backlog is DCMTK's fixed 50).

    `--ignore` reads every byte and answers, but writes nothing (a pure network sink)."""
    command = [dcmtk("storescp"), *(["--fork"] if fork else [])]
    name = "DCMTK storescp --fork" if fork else "DCMTK storescp"
    yield from _storescp_like(name, command, workdir, ignore, ae_title, environment(nodelay))


@contextlib.contextmanager
def pynetdicom_storescp(
    workdir: Path, *, ignore: bool, ae_title: str = "STORESCP"
) -> Iterator[Server]:
    """pynetdicom's storescp app (`python -m pynetdicom storescp`), in its own process."""
    command = [sys.executable, "-m", "pynetdicom", "storescp"]
    yield from _storescp_like(
        "pynetdicom storescp", command, workdir, ignore, ae_title, environment()
    )


@contextlib.contextmanager
def dicomscp(
    workdir: Path,
    *,
    fsync: bool = True,
    ae_title: str = "DICOMSCP",
    archive: Path | None = None,
    workers: int | None = None,
    index: str | None = None,
    node: str | None = None,
) -> Iterator[Server]:
    """Our `python -m cli.dicomscp` on port 0 (the OS picks: no race), -q (no line per
    operation: DCMTK's storescp logs nothing by default either). Stopped with SIGINT.
    `workers` adds `--workers N` (None: its default, one per core); `index` and `node`
    add `--index URI --node NAME` (several nodes on one PostgreSQL index, sharing one
    `archive` folder)."""
    archive = archive or workdir / "archive"
    log_path = workdir / "dicomscp.log"
    options = [
        *([] if fsync else ["--no-fsync"]),
        *([] if workers is None else ["--workers", str(workers)]),
        *([] if index is None else ["--index", index]),
        *([] if node is None else ["--node", node]),
    ]
    argv = [
        sys.executable, "-m", "cli.dicomscp", "--archive", str(archive), "--host", HOST,
        "--aetitle", ae_title, "-q", *options, "0",
    ]  # fmt: skip
    process = Process("dicomscp", argv, log_path, environment())
    port: list[int] = []

    def listening() -> bool:
        _check_alive(process)
        match = _LISTENING.search(process.log_text(max_chars=1 << 20))
        if match:
            port.append(int(match.group(1)))
        return bool(match)

    try:
        test_peers.wait_until(listening, STARTUP_S, "dicomscp listening")
    except test_peers.PeerError as exc:
        process.stop(signal.SIGKILL)
        raise BenchError(f"{exc}\n{process.describe()}") from None
    server = Server("dicomscp", port[0], ae_title, process, archive)
    try:
        yield server
    finally:
        died = not process.running()
        process.stop(signal.SIGINT, grace_s=60.0)
    if died:
        raise BenchError(f"dicomscp died during the benchmark\n{process.describe()}")


@contextlib.contextmanager
def dcmqrscp(workdir: Path, *, nodelay: bool = True) -> Iterator[test_peers.QRSCP]:
    """DCMTK dcmqrscp as tests/peers.py configures it (forks per association), with
    TCP_NODELAY in its environment."""
    dcmtk("dcmqrscp")
    with patched_environ(TCP_NODELAY="1" if nodelay else "0"):
        manager = test_peers.start_dcmqrscp(workdir, ae_title="QRSCP")
        try:
            qr = manager.__enter__()
        except test_peers.PeerError as exc:
            raise BenchError(str(exc)) from None
    try:
        yield qr
    finally:
        manager.__exit__(None, None, None)


@contextlib.contextmanager
def orthanc(workdir: Path, *, nodelay: bool = True) -> Iterator[test_peers.Orthanc]:
    """Orthanc as tests/peers.py configures it, no limit on C-FIND answers, with
    TCP_NODELAY in its environment."""
    orthanc_binary()
    manager = test_peers.start_orthanc(
        workdir,
        extra_config={
            "LimitFindResults": 0,
            "LimitFindInstances": 0,
            "StorageCompression": False,
            "OverwriteInstances": True,
        },
    )
    # Orthanc's DICOM side is DCMTK's dcmnet, which reads TCP_NODELAY too: without it,
    # Nagle's algorithm held each C-STORE response ~40 ms (500 instances: 23 s vs 2 s).
    with patched_environ(TCP_NODELAY="1" if nodelay else "0"):
        try:
            o = manager.__enter__()
        except test_peers.PeerError as exc:
            raise BenchError(str(exc)) from None
    try:
        yield o
    finally:
        manager.__exit__(None, None, None)
