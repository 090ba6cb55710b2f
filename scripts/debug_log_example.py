"""The debug logs pasted in README.md ("Reading the debug log"), made afresh (issue 13).

    .venv/bin/python scripts/debug_log_example.py

One association each, on loopback, with one small CT image made here:

  dicomscu-store    `dicomscu -D --store` to DCMTK's storescp
  dicomscp-find     `dicomscp -D` (its log of one association) queried by DCMTK's findscu
  storescu-store    the same store with DCMTK's `storescu -d`
  pynetdicom-store  the same store with pynetdicom and its `debug_logger()`

Each is printed as a block headed `===== debug-log: NAME =====`, then the command
lines (`$ ...`), then the log. What changes from run to run or from version to
version is replaced by placeholders: ports (`PORT`), the temporary folder (`/tmp/…`),
dates and times, the implementation class UIDs and version names (`<dicom-ul UID>`,
`<DCMTK version>`...), DCMTK's own version. tests/test_readme_debug_log.py compares
the README's excerpts with this output.

The peers listen on free loopback ports: storescp on one found by binding port 0,
polled until it accepts; dicomscp is given port 0 and says in its first line which
port it took (a probe connection would show in its debug log). DCMTK's tools are the
Debian binaries (`/usr/bin/...`), never pynetdicom's scripts of the same names. Every
process started here is stopped at the end. Exit status: 0, or 1 with the reason on
stderr (2: a peer is not installed).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
STARTUP_S = 30.0  # how long a server may take to listen
RUN_S = 60.0  # how long one client run may take
STOP_S = 45.0  # dicomscp gives associations in progress 30 s
POLL_S = 0.02  # the pause between two polls of a condition
SOP_INSTANCE_UID = "1.2.826.0.1.3680043.8.498.1.1.1"  # fixed: the output stays the same

PYNETDICOM_CODE = """\
import sys
from pydicom import dcmread
from pynetdicom import AE, debug_logger
from pynetdicom.sop_class import CTImageStorage

debug_logger()
ae = AE(ae_title="PYNETDICOM")
ae.add_requested_context(CTImageStorage)
assoc = ae.associate("127.0.0.1", int(sys.argv[1]), ae_title="STORESCP")
if not assoc.is_established:
    sys.exit(1)
status = assoc.send_c_store(dcmread(sys.argv[2]))
assoc.release()
sys.exit(0 if status and status.Status == 0 else 1)
"""

# What changes between runs or versions, and its placeholder. Applied in this order.
PLACEHOLDERS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"), "YYYY-MM-DD hh:mm:ss,mmm"),
    (re.compile(r"(\$dcmtk: \w+) v\S+ \d{4}-\d\d-\d\d \$"), r"\1 <DCMTK version> $"),
    (re.compile(r"\b127\.0\.0\.1([: ])\d+\b"), r"127.0.0.1\1PORT"),
    (re.compile(r"\b2\.25\.308092614656787327937334279252522491514\b"), "<dicom-ul UID>"),
    (re.compile(r"\bDICOM-UL_\w+"), "<dicom-ul version>"),
    (re.compile(r"\b1\.2\.276\.0\.7230010\.3\.0\.[\d.]*\d"), "<DCMTK UID>"),
    (re.compile(r"\bOFFIS_DCMTK_\w+"), "<DCMTK version>"),
    (re.compile(r"\b1\.2\.826\.0\.1\.3680043\.9\.3811\.[\d.]*\d"), "<pynetdicom UID>"),
    (re.compile(r"\bPYNETDICOM_\d\w*"), "<pynetdicom version>"),
]


class Failure(RuntimeError):
    """A peer did not start, a run failed or timed out: the script exits 1."""


def stable(text: str, workdir: Path) -> str:
    """`text` with the placeholders put in (the temporary folder: `/tmp/…`)."""
    for folder in {str(workdir.resolve()), str(workdir)}:
        text = text.replace(folder, "/tmp/…")
    for pattern, placeholder in PLACEHOLDERS:
        text = pattern.sub(placeholder, text)
    return text


# --------------------------------------------------------------------------------------
# Peers and processes


def dcmtk(name: str) -> str:
    """DCMTK's `name`: the ELF binary in /usr/bin, else on PATH (not pynetdicom's script)."""
    for folder in ["/usr/bin", *os.environ.get("PATH", "").split(os.pathsep)]:
        path = Path(folder or ".") / name
        try:
            with path.open("rb") as f:
                if f.read(4) == b"\x7fELF" and os.access(path, os.X_OK):
                    return str(path)
        except OSError:
            continue
    raise LookupError(f"DCMTK's {name} is not installed (apt-get install dcmtk)")


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPOSITORY), env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def free_port() -> int:
    """A TCP port nothing listens on now (bind port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Failure(f"{what}: not within {timeout_s:g} s")
        time.sleep(min(POLL_S, remaining))


def accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1.0):
            return True
    except OSError:
        return False


def stop(process: subprocess.Popen[str], sig: int = signal.SIGTERM) -> int:
    """Signal the process we started (by its id) and wait; SIGKILL if it lingers."""
    if process.poll() is None:
        process.send_signal(sig)
    try:
        return process.wait(timeout=STOP_S)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(timeout=10)


@contextlib.contextmanager
def storescp(workdir: Path) -> Iterator[int]:
    """DCMTK's storescp, AE title STORESCP, on a free port; yields the port."""
    received = workdir / "storescp-received"
    received.mkdir()
    port = free_port()
    with (workdir / "storescp.log").open("w") as log:
        process = subprocess.Popen(
            [dcmtk("storescp"), "-aet", "STORESCP", "-od", str(received), str(port)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )  # fmt: skip
    try:
        wait_until(
            lambda: accepts(port) or process.poll() is not None, STARTUP_S, "storescp listening"
        )
        if process.poll() is not None:
            raise Failure(f"storescp exited with status {process.returncode}")
        yield port
    finally:
        stop(process)


class Server:
    """`dicomscp -D` on port 0; its output kept line by line by a reader thread."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.lines: list[str] = []
        self.changed = threading.Condition()
        self.process = subprocess.Popen(
            argv, cwd=REPOSITORY, env=environment(), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
            start_new_session=True,
        )  # fmt: skip
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self.changed:
                self.lines.append(line.rstrip("\n"))
                self.changed.notify_all()
        with self.changed:
            self.changed.notify_all()

    def mark(self) -> int:
        with self.changed:
            return len(self.lines)

    def lines_since(self, start: int) -> list[str]:
        with self.changed:
            return self.lines[start:]

    def wait_for(self, pattern: str, start: int = 0, timeout_s: float = RUN_S) -> re.Match[str]:
        """The first line from `start` on that matches; Failure at the deadline or EOF."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        with self.changed:
            while True:
                for line in self.lines[start:]:
                    if match := regex.search(line):
                        return match
                start = max(start, len(self.lines))
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self.reader.is_alive():
                    raise Failure(
                        f"dicomscp: no line matching {pattern!r}\n" + "\n".join(self.lines)
                    )
                self.changed.wait(remaining)

    def wait_for_end(self, start: int) -> None:
        """Until the association logged from line `start` on is over: its summary line
        and the machine back in Sta1 (the two may come in either order)."""
        self.wait_for(r"INFO dimse\.scp: association from \S+ (released|aborted)", start)
        # The transition back to Sta1, then the line that explains it (logged after
        # it, a record of its own): the block ends with both.
        self.wait_for(r"acceptor \S+: Sta\d+ \+ Evt\d+ -> \S+ -> Sta1$", start)
        self.wait_for(r"acceptor \S+:   Evt\d+: .*; AR-5: ", start)


@contextlib.contextmanager
def dicomscp(workdir: Path) -> Iterator[tuple[Server, int]]:
    argv = [sys.executable, "-m", "cli.dicomscp", "-D", "--workers", "1", "--no-fsync", "--archive",
            str(workdir / "archive"), "--host", HOST, "0"]  # fmt: skip
    server = Server(argv)
    try:
        match = server.wait_for(r"listening on \S+:(\d+)", timeout_s=STARTUP_S)
        yield server, int(match[1])
    finally:
        code = stop(server.process, signal.SIGINT)
        server.reader.join(10)
    if code != 0:
        raise Failure(f"dicomscp exited with status {code}\n" + "\n".join(server.lines))


def run(argv: list[str], what: str) -> str:
    """Run a client to its end: its stdout and stderr, merged as they came."""
    try:
        result = subprocess.run(
            argv, cwd=REPOSITORY, env=environment(), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
            timeout=RUN_S, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as e:
        raise Failure(f"{what}: not done within {RUN_S:g} s") from e
    if result.returncode != 0:
        raise Failure(f"{what} exited with status {result.returncode}\n{result.stdout}")
    return result.stdout


# --------------------------------------------------------------------------------------
# The example


def make_file(path: Path) -> Path:
    """One CT Image Storage instance, Explicit VR Little Endian, 8x8 16-bit pixels."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = SOP_INSTANCE_UID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = SOP_INSTANCE_UID
    ds.PatientName = "Student^Sam"
    ds.PatientID = "STUDENT1"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1.1"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.1.1.2"
    ds.Modality = "CT"
    ds.Rows = ds.Columns = 8
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = b"".join(i.to_bytes(2, "little") for i in range(64))
    ds.save_as(path, enforce_file_format=True)
    return path


def shown(argv: list[str]) -> str:
    """A command line as the README shows it: our tools by name, DCMTK's by name."""
    if argv[:2] == [sys.executable, "-m"]:
        argv = [argv[2].removeprefix("cli."), *argv[3:]]
    elif argv[0] == sys.executable:
        argv = ["python", *argv[1:]]
    else:
        argv = [Path(argv[0]).name, *argv[1:]]
    return "$ " + subprocess.list2cmdline(argv)


def block(name: str, commands: list[list[str]], log: str, workdir: Path) -> str:
    """One block of the output; trailing blanks cut (DCMTK leaves some: an editor would)."""
    lines = [f"===== debug-log: {name} =====", *map(shown, commands), *log.splitlines()]
    return "\n".join(line.rstrip() for line in stable("\n".join(lines), workdir).splitlines())


def example(workdir: Path) -> dict[str, str]:
    ct = make_file(workdir / "ct.dcm")
    pynetdicom_script = workdir / "store_with_pynetdicom.py"
    pynetdicom_script.write_text(PYNETDICOM_CODE, encoding="utf-8")
    blocks: dict[str, str] = {}
    storescp_shown = [dcmtk("storescp"), "-aet", "STORESCP", "PORT"]
    with storescp(workdir) as port:
        ours = [sys.executable, "-m", "cli.dicomscu", "-D", "--store", "--call", "STORESCP",
                HOST, str(port), str(ct)]  # fmt: skip
        ours_log = run(ours, "dicomscu")
        theirs = [dcmtk("storescu"), "-d", "-R", "-aec", "STORESCP", HOST, str(port), str(ct)]
        theirs_log = run(theirs, "storescu")
        pynetdicom = [sys.executable, str(pynetdicom_script), str(port), str(ct)]
        pynetdicom_log = run(pynetdicom, "the pynetdicom client")
    pynetdicom[2] = "PORT"
    blocks["dicomscu-store"] = block("dicomscu-store", [storescp_shown, ours], ours_log, workdir)

    with dicomscp(workdir) as (scp, port):
        # One instance in the archive first, so that the C-FIND has a match to return.
        store = [sys.executable, "-m", "cli.dicomscu", "--store", "--call", "DICOMSCP", HOST,
                 str(port), str(ct)]  # fmt: skip
        run(store, "dicomscu (filling the archive)")
        scp.wait_for_end(0)
        start = scp.mark()
        find = [dcmtk("findscu"), "-S", "-k", "QueryRetrieveLevel=STUDY", "-k", "PatientID=",
                "-aec", "DICOMSCP", HOST, str(port)]  # fmt: skip
        run(find, "findscu")
        scp.wait_for_end(start)
        log = "\n".join(scp.lines_since(start))
    scp_shown = [*scp.argv[:-1], "PORT"]
    blocks["dicomscp-find"] = block("dicomscp-find", [scp_shown, find], log, workdir)
    blocks["storescu-store"] = block(
        "storescu-store", [storescp_shown, theirs], theirs_log, workdir
    )
    blocks["pynetdicom-store"] = block(
        "pynetdicom-store", [storescp_shown, pynetdicom], pynetdicom_log, workdir
    )
    return blocks


def main() -> int:
    try:
        for name in ("storescp", "storescu", "findscu"):
            dcmtk(name)
        import pynetdicom  # noqa: F401
    except (LookupError, ImportError) as e:
        print(f"debug_log_example: {e}", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="debug-log-"))
    try:
        blocks = example(workdir)
    except Failure as e:
        print(f"debug_log_example: {e}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("\n\n".join(blocks.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
