"""Real DICOM peers on loopback for the tests: DCMTK, Orthanc and pynetdicom.

The rules of this file (docs/design.md, "Tests"):

- Every peer listens on 127.0.0.1 on a port chosen at run time, never a fixed one.
- Nothing sleeps to wait for something. Readiness is polled with a deadline, in one
  place: `wait_until` (and `wait_for_port`, built on it).
- Every process started here runs in its own process group and is stopped at teardown
  (SIGTERM, then SIGKILL), so that forked children (dcmqrscp) go with it.
- A peer that is not installed skips the test with the reason; where the environment
  variable CI is set, it fails it instead, so CI never passes by skipping.
- DCMTK's tools are always the Debian binaries: pynetdicom installs Python scripts named
  storescp, echoscu, findscu... that come first on PATH and are a different program.

The pytest fixtures built on these helpers are in conftest.py.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

HOST = "127.0.0.1"
POLL_INTERVAL_S = 0.02  # the only pause in this file, between two polls of a condition
STARTUP_S = 20.0  # how long a peer may take to listen
STOP_GRACE_S = 5.0  # how long a peer may take to exit after SIGTERM before SIGKILL
PORT_ATTEMPTS = 3  # a free port can be taken between free_port() and the peer's bind()
_PORT_IN_USE = re.compile(r"already in use", re.IGNORECASE)
_DCMTK_TOOLS = frozenset(
    "dcmqrscp dcmqridx dcmdump dump2dcm echoscu findscu getscu movescu storescp storescu "
    "wlmscpfs termscu".split()
)


class PeerError(RuntimeError):
    """A peer did not start, died, or refused what the fixture asked of it."""


# ---------------------------------------------------------------------------------------
# Missing peers: skip locally, fail in CI.


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing(reason: str) -> NoReturn:
    """Skip the test because a peer is missing, or fail it when CI is set."""
    if in_ci():
        pytest.fail(
            f"{reason} (CI is set: a missing peer fails instead of skipping)", pytrace=False
        )
    pytest.skip(reason)


def _is_elf(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


@functools.cache
def _find_binary(name: str, preferred_dir: str) -> str | None:
    """The first ELF executable called `name`: in preferred_dir, then on PATH."""
    candidates = [Path(preferred_dir) / name]
    candidates += [Path(d) / name for d in os.environ.get("PATH", "").split(os.pathsep) if d]
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK) and _is_elf(path.resolve()):
            return str(path)
    return None


def dcmtk(name: str) -> str:
    """Absolute path of DCMTK's `name` (`/usr/bin/storescp`...), never pynetdicom's script.

    Skips the test (fails it in CI) when DCMTK is not installed.
    """
    if name not in _DCMTK_TOOLS:
        raise ValueError(f"{name!r} is not a DCMTK tool known to the tests")
    path = _find_binary(name, "/usr/bin")
    if path is None:
        missing(f"DCMTK's {name} is not installed (apt-get install dcmtk)")
    return path


def orthanc_binary() -> str:
    """Absolute path of Orthanc (`/usr/sbin/Orthanc`); skips (fails in CI) when absent."""
    path = _find_binary("Orthanc", "/usr/sbin")
    if path is None:
        missing("Orthanc is not installed (apt-get install orthanc)")
    return path


def require_pynetdicom() -> None:
    try:
        import pynetdicom  # noqa: F401
    except ImportError:
        missing("pynetdicom is not installed (pip install -e '.[test]')")


# ---------------------------------------------------------------------------------------
# Ports and polling.


def free_port(host: str = HOST) -> int:
    """A TCP port that nothing listens on now (bind port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(
    condition: Callable[[], bool],
    timeout_s: float,
    what: str,
    process: PeerProcess | subprocess.Popen[bytes] | None = None,
) -> None:
    """Poll `condition` until it is true, for at most `timeout_s` seconds.

    Raises PeerError when the time is up, or at once when `process` exits meanwhile.
    This is the one polling loop of the tests: a short pause between two polls of a
    condition, never a sleep that hopes something has happened.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        if condition():
            return
        if process is not None:
            popen = process.popen if isinstance(process, PeerProcess) else process
            if popen.poll() is not None:
                raise PeerError(f"{what}: the process exited with status {popen.returncode}")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise PeerError(f"{what}: not within {timeout_s:g} s")
        time.sleep(min(POLL_INTERVAL_S, remaining))


def port_accepts(host: str, port: int, timeout_s: float = 1.0) -> bool:
    """True if a TCP connection to host:port succeeds (it is closed at once)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def wait_for_port(
    host: str,
    port: int,
    deadline_s: float = STARTUP_S,
    process: PeerProcess | subprocess.Popen[bytes] | None = None,
) -> None:
    """Wait at most `deadline_s` seconds until host:port accepts a TCP connection.

    Fails at once if `process` (the peer that should listen there) exits.
    """
    wait_until(lambda: port_accepts(host, port), deadline_s, f"{host}:{port} listening", process)


# ---------------------------------------------------------------------------------------
# Processes.


class PeerProcess:
    """A peer program in its own process group, its output in a log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.stopped_by_us = False  # stop() was called while it ran: its exit is no crash
        with log_path.open("ab") as log:
            log.write(f"$ {subprocess.list2cmdline(self.argv)}\n".encode())
            log.flush()
            self.popen: subprocess.Popen[bytes] = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                start_new_session=True,  # own process group: stop() reaches forked children
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_text(self, max_chars: int = 20_000) -> str:
        """The end of the log (stdout and stderr of the peer)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as e:
            return f"<no log: {e}>"
        return text if len(text) <= max_chars else "...\n" + text[-max_chars:]

    def exited(self) -> bool:
        return self.popen.poll() is not None

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)  # the group id is the pid (start_new_session)

    def stop(self, grace_s: float = STOP_GRACE_S, sig: int = signal.SIGTERM) -> int:
        """Stop the peer and its process group: `sig`, then SIGKILL after grace_s."""
        if not self.exited():
            self.stopped_by_us = True
        self._signal_group(sig)
        try:
            self.popen.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.popen.wait(timeout=grace_s)
        self._signal_group(signal.SIGKILL)  # forked children still in the group
        return self.popen.returncode

    def describe(self) -> str:
        return f"{self.name} (pid {self.pid}), log {self.log_path}:\n{self.log_text()}"


@contextlib.contextmanager
def run_peer(
    name: str,
    argv: Sequence[str],
    *,
    log_path: Path,
    port: int,
    host: str = HOST,
    ready: Callable[[], bool] | None = None,
    startup_s: float = STARTUP_S,
    stop_signal: int = signal.SIGTERM,
    cwd: Path | None = None,
) -> Iterator[PeerProcess]:
    """Run `argv`, wait until it listens on host:port (and `ready()` if given), stop it after.

    On a failed start, raises PeerError with the peer's log. At exit, raises PeerError if
    the peer died on its own while it was in use (a crash that a test provoked); a test
    that means to stop a peer early calls `process.stop()`.
    """
    process = PeerProcess(name, argv, log_path, cwd=cwd)
    try:
        wait_for_port(host, port, startup_s, process)
        if ready is not None:
            wait_until(ready, startup_s, f"{name} ready", process)
    except PeerError as e:
        process.stop(sig=stop_signal)
        raise PeerError(f"{name} did not start: {e}\n{process.describe()}") from e
    except BaseException:
        process.stop(sig=stop_signal)
        raise
    try:
        yield process
    finally:
        died = process.exited() and not process.stopped_by_us
        process.stop(sig=stop_signal)
    if died:
        raise PeerError(
            f"{name} exited with status {process.popen.returncode} during the test\n"
            + process.describe()
        )


@contextlib.contextmanager
def _started(
    start: Callable[[], tuple[int, contextlib.AbstractContextManager[PeerProcess]]],
) -> Iterator[tuple[int, PeerProcess]]:
    """Enter start()'s peer; start again on new ports if another program took the port
    between free_port() and the peer's bind()."""
    for attempt in range(1, PORT_ATTEMPTS + 1):
        with contextlib.ExitStack() as stack:
            port, run = start()
            try:
                process = stack.enter_context(run)
            except PeerError as e:
                if attempt < PORT_ATTEMPTS and _PORT_IN_USE.search(str(e)):
                    continue
                raise
            yield port, process
            return


def run_dcmtk(
    name: str,
    *args: str | Path,
    cwd: Path | None = None,
    timeout_s: float = 60.0,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a DCMTK client tool to completion; with check, raise PeerError (with its output)
    unless it exits with status 0."""
    argv = [dcmtk(name), *map(str, args)]
    result = subprocess.run(
        argv,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout_s,
        check=False,
    )
    if check and result.returncode != 0:
        raise PeerError(
            f"{subprocess.list2cmdline(argv)} exited with status {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result


def findscu(
    peer: Peer,
    workdir: Path,
    keys: Mapping[str, str],
    model: str = "-S",
    calling_ae_title: str = "FINDSCU",
) -> list[Any]:
    """C-FIND with DCMTK findscu; returns the pending responses' identifiers (pydicom
    Datasets) in the order received.

    keys: DICOM keyword (or "(gggg,eeee)") to value, "" for a return key. model: -P
    patient root, -S study root (default), -W modality worklist.
    """
    from pydicom import dcmread

    out = Path(tempfile.mkdtemp(prefix="findscu-", dir=workdir))
    args = [f"{k}={v}" if v else k for k, v in keys.items()]
    run_dcmtk(
        "findscu",
        model,
        "-aet",
        calling_ae_title,
        "-aec",
        peer.ae_title,
        "-X",
        "-od",
        out,
        *[a for key in args for a in ("-k", key)],
        peer.host,
        str(peer.port),
    )
    return [dcmread(p) for p in sorted(out.glob("rsp*.dcm"))]


# ---------------------------------------------------------------------------------------
# The peers.


@dataclass
class Peer:
    """Where a DICOM application entity listens. Also what a move destination is."""

    host: str
    port: int
    ae_title: str


@dataclass(kw_only=True)
class StoreSCP(Peer):
    """DCMTK storescp: C-ECHO and C-STORE SCP writing every instance to output_dir."""

    output_dir: Path
    process: PeerProcess | None = None

    def received_files(self) -> list[Path]:
        return sorted(p for p in self.output_dir.iterdir() if p.is_file())


@contextlib.contextmanager
def start_storescp(
    workdir: Path, ae_title: str = "STORESCP", extra_args: Sequence[str] = ()
) -> Iterator[StoreSCP]:
    """DCMTK `storescp -aet AE -od DIR [extra_args] PORT` (single process, all transfer
    syntaxes it supports accepted: +xa)."""
    binary = dcmtk("storescp")
    output_dir = workdir / "received"
    output_dir.mkdir(parents=True, exist_ok=True)

    def start() -> tuple[int, contextlib.AbstractContextManager[PeerProcess]]:
        port = free_port()
        argv = [binary, "-aet", ae_title, "-od", str(output_dir), "+xa", *extra_args, str(port)]
        return port, run_peer("storescp", argv, log_path=workdir / "storescp.log", port=port)

    with _started(start) as (port, process):
        yield StoreSCP(HOST, port, ae_title, output_dir=output_dir, process=process)


def _config_token(value: str, what: str) -> str:
    if not value or re.search(r"[\s,()\"=#]", value):
        raise ValueError(f"{what} {value!r} cannot be written into a dcmqrscp.cfg")
    return value


@dataclass(kw_only=True)
class QRSCP(Peer):
    """DCMTK dcmqrscp: a query/retrieve archive (C-ECHO, C-STORE, C-FIND, C-MOVE, C-GET)."""

    storage_dir: Path
    config_path: Path
    move_destinations: tuple[Peer, ...] = ()
    process: PeerProcess | None = None

    def load(self, *paths: str | Path) -> None:
        """Store DICOM files (or directories of them, recursively) into the archive,
        with DCMTK storescu. Raises PeerError unless every instance was stored."""
        if not paths:
            return
        result = run_dcmtk(
            "storescu",
            "-v",
            "-aet",
            "LOADER",
            "-aec",
            self.ae_title,
            "+sd",
            "+r",
            self.host,
            str(self.port),
            *paths,
        )
        _check_store_responses("dcmqrscp", result)


def _check_store_responses(peer: str, result: subprocess.CompletedProcess[str]) -> None:
    log = result.stdout + result.stderr
    statuses = re.findall(r"Received Store Response \(([^)]*)\)", log)
    bad = [s for s in statuses if not s.startswith(("Success", "Warning"))]
    if bad or not statuses:
        raise PeerError(f"storescu into {peer}: responses {statuses or 'none'}\n{log}")


@contextlib.contextmanager
def start_dcmqrscp(
    workdir: Path,
    move_destinations: Iterable[Peer] = (),
    ae_title: str = "QRSCP",
    extra_args: Sequence[str] = (),
) -> Iterator[QRSCP]:
    """DCMTK dcmqrscp with one AE `ae_title` (storage area in workdir, read/write, any
    peer may associate) and a HostTable entry per move destination.

    dcmqrscp forks a child per association (its default), and the children are stopped
    with it. Keep it so: dcmqrscp 3.6.7 in --single-process mode died of SIGSEGV when a
    requestor sent A-ABORT right after an A-ASSOCIATE-AC that accepted no presentation
    context (pynetdicom does that); with fork, only that association's child is lost.

    C-MOVE destinations are looked up by AE title in the HostTable (an IP address works
    there, whatever the sample configuration says); restriction is off
    (--move-unrestricted, the default), so any caller may move to any listed AE.
    extra_args go before the port, e.g. ["--max-pdu", "4096"] or ["--disable-get"].
    """
    binary = dcmtk("dcmqrscp")
    destinations = tuple(move_destinations)
    storage_dir = workdir / "storage"
    storage_dir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "dcmqrscp.cfg"

    def write_config(port: int) -> None:
        hosts = "".join(
            f"dest{i} = ({_config_token(d.ae_title, 'AE title')}, "
            f"{_config_token(d.host, 'host')}, {int(d.port)})\n"
            for i, d in enumerate(destinations)
        )
        config_path.write_text(
            "# written by tests/peers.py: start_dcmqrscp\n"
            f"NetworkTCPPort  = {port}\n"
            "MaxPDUSize      = 16384\n"
            "MaxAssociations = 16\n"
            f"HostTable BEGIN\n{hosts}HostTable END\n"
            "VendorTable BEGIN\nVendorTable END\n"
            "AETable BEGIN\n"
            # AETitle StorageArea Access Quota(maxStudies, maxBytesPerStudy) Peers.
            # 500 studies is dcmqrscp's maximum; past the quota it deletes the oldest study.
            f"{_config_token(ae_title, 'AE title')} {_config_token(str(storage_dir), 'path')}"
            " RW (500, 1024mb) ANY\n"
            "AETable END\n"
        )

    def start() -> tuple[int, contextlib.AbstractContextManager[PeerProcess]]:
        port = free_port()
        write_config(port)
        argv = [binary, "-c", str(config_path), *extra_args, str(port)]
        return port, run_peer("dcmqrscp", argv, log_path=workdir / "dcmqrscp.log", port=port)

    with _started(start) as (port, process):
        yield QRSCP(
            HOST,
            port,
            ae_title,
            storage_dir=storage_dir,
            config_path=config_path,
            move_destinations=destinations,
            process=process,
        )


@dataclass(kw_only=True)
class Orthanc(Peer):
    """Orthanc: a DICOM archive (echo, store, find, move, get) with a REST API on http_port."""

    http_port: int
    workdir: Path
    config: dict[str, Any]
    process: PeerProcess | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    def rest(
        self, method: str, path: str, body: bytes | None = None, timeout_s: float = 30.0
    ) -> Any:
        """Call the REST API; returns the decoded JSON answer. Raises PeerError on HTTP errors."""
        request = urllib.request.Request(self.url + path, data=body, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                data = response.read()
        except urllib.error.HTTPError as e:
            raise PeerError(f"Orthanc {method} {path}: HTTP {e.code} {e.read()[:2000]!r}") from e
        return json.loads(data) if data else None

    def upload(self, path: str | Path) -> str:
        """POST one DICOM file to /instances; returns its Orthanc ID."""
        answer = self.rest("POST", "/instances", Path(path).read_bytes())
        if not isinstance(answer, dict) or answer.get("Status") not in ("Success", "AlreadyStored"):
            raise PeerError(f"Orthanc did not store {path}: {answer!r}")
        return str(answer["ID"])

    def instances(self) -> list[str]:
        """Orthanc IDs of every stored instance."""
        return list(self.rest("GET", "/instances"))

    def sop_instance_uids(self) -> set[str]:
        """SOP Instance UIDs of every stored instance."""
        return {
            self.rest("GET", f"/instances/{i}")["MainDicomTags"]["SOPInstanceUID"]
            for i in self.instances()
        }


def _http_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


@contextlib.contextmanager
def start_orthanc(
    workdir: Path,
    move_destinations: Iterable[Peer] = (),
    ae_title: str = "ORTHANC",
    extra_config: Mapping[str, Any] | None = None,
) -> Iterator[Orthanc]:
    """Orthanc with a generated configuration: every DICOM service allowed to any calling
    AE (echo, store, find, get, move), the called AE title not checked, unknown SOP
    classes accepted, C-MOVE synchronous, HTTP on loopback only without authentication.

    Move destinations are DicomModalities entries named by their AE title; Orthanc
    looks the C-MOVE destination up by AE title among them.
    """
    binary = orthanc_binary()
    destinations = tuple(move_destinations)
    storage = workdir / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "orthanc.json"

    def make_config(dicom_port: int, http_port: int) -> dict[str, Any]:
        config: dict[str, Any] = {
            "Name": "dicom-ul-tests",
            "DicomAet": ae_title,
            "DicomPort": dicom_port,
            "HttpPort": http_port,
            "StorageDirectory": str(storage),
            "IndexDirectory": str(storage),
            "Plugins": [],
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomCheckCalledAet": False,
            "DicomCheckModalityHost": False,
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowFind": True,
            "DicomAlwaysAllowFindWorklist": True,
            "DicomAlwaysAllowGet": True,
            "DicomAlwaysAllowMove": True,
            "UnknownSopClassAccepted": True,
            "SynchronousCMove": True,
            "SaveJobs": False,
            "DicomScuTimeout": 10,
            "DicomModalities": {
                d.ae_title: {
                    "AET": d.ae_title,
                    "Host": d.host,
                    "Port": int(d.port),
                    "AllowEcho": True,
                    "AllowFind": True,
                    "AllowGet": True,
                    "AllowMove": True,
                    "AllowStore": True,
                }
                for d in destinations
            },
        }
        config.update(extra_config or {})
        return config

    def start() -> tuple[int, contextlib.AbstractContextManager[PeerProcess]]:
        dicom_port, http_port = free_port(), free_port()
        while http_port == dicom_port:
            http_port = free_port()
        config = make_config(dicom_port, http_port)
        config_path.write_text(json.dumps(config, indent=2))
        argv = [binary, "--no-jobs", str(config_path)]
        run = run_peer(
            "Orthanc",
            argv,
            log_path=workdir / "orthanc.log",
            port=dicom_port,
            ready=lambda: _http_answers(f"http://{HOST}:{http_port}/system"),
            stop_signal=signal.SIGKILL,  # SIGTERM takes Orthanc ~3 s; its state is thrown away
        )
        return dicom_port, run

    with _started(start) as (dicom_port, process):
        config = json.loads(config_path.read_text())
        yield Orthanc(
            HOST,
            dicom_port,
            ae_title,
            http_port=config["HttpPort"],
            workdir=workdir,
            config=config,
            process=process,
        )


@dataclass(kw_only=True)
class PynetdicomSCP(Peer):
    """pynetdicom in this process: Verification and every storage SOP class as SCP.

    Received data sets (with their file_meta) are appended to `datasets` by the server's
    threads; `wait_for_datasets(n)` polls for them with a deadline.
    """

    ae: Any = None
    server: Any = None
    datasets: list[Any] = field(default_factory=list)
    calling_ae_titles: list[str] = field(default_factory=list)
    status: int = 0x0000  # what C-STORE answers; a test may set a failure status

    def wait_for_datasets(self, count: int, timeout_s: float = 10.0) -> list[Any]:
        wait_until(lambda: len(self.datasets) >= count, timeout_s, f"{count} data sets received")
        return list(self.datasets)


@contextlib.contextmanager
def start_pynetdicom_scp(ae_title: str = "PYNETDICOM") -> Iterator[PynetdicomSCP]:
    require_pynetdicom()
    from pynetdicom import AE, AllStoragePresentationContexts, evt
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    ae = AE(ae_title=ae_title)
    ae.supported_contexts = AllStoragePresentationContexts  # 170 SOP classes: an SCP may
    ae.add_supported_context(Verification)
    lock = threading.Lock()
    scp = PynetdicomSCP(HOST, 0, ae_title, ae=ae)

    def on_store(event: Any) -> int:
        dataset = event.dataset
        dataset.file_meta = event.file_meta
        with lock:
            scp.calling_ae_titles.append(event.assoc.requestor.ae_title)
            scp.datasets.append(dataset)
        return scp.status

    server = ae.start_server((HOST, 0), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    assert server is not None
    try:
        scp.port = server.server_address[1]  # the port the OS chose: no race
        scp.server = server
        yield scp
    finally:
        server.shutdown()
        ae.shutdown()
