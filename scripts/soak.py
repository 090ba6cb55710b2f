"""Load and soak `dicomscp` over loopback, and print the figures.

    python scripts/soak.py                       # the three phases, about 2-6 minutes
    python scripts/soak.py --associations 2000 --idle 100 --storers 5   # a short run

Not a pytest test (it takes minutes, and its figures are for a person to read): a
script that starts `python -m cli.dicomscp --archive TMP --host 127.0.0.1 --no-fsync
--config TMP/soak.toml 0` (ARTIM 60 s, so that idle connections stay open), reads the
port from its `listening on HOST:PORT` line, and runs:

(a) N associations in a row (default 10,000), each: open, C-ECHO, release
    (`dimse.client.connect`). The server's open file descriptors (/proc/PID/fd),
    threads (/proc/PID/status Threads) and resident memory (VmRSS) are sampled every
    1,000 and printed as a table. Fails if, after a warm-up, the descriptors grow by
    more than --fd-slack, the threads by more than --thread-slack, or the memory by
    more than --rss-slack-mb (or by more than half that over the second half of the
    run, which a leak would show and a one-off cache would not).
(b) --idle raw TCP connections (default 500) opened and held, sending nothing; once
    the server holds them all, a normal association (C-ECHO) must still succeed, and
    its time is printed next to the median of (a). The idle connections are then
    closed and the server must let go of their descriptors and threads.
(c) --storers concurrent associations (default 20), each a thread sending
    --instances distinct generated instances (default 50) by C-STORE. Then the server
    is stopped (SIGTERM, which must exit 0) and the archive counted: `Archive.count()`,
    the SOP Instance UIDs the index holds per patient, and the files on disk must all
    be exactly storers x instances, the very UIDs sent, none twice, none lost.

Exit status 0 when every check holds, 1 otherwise. Only 127.0.0.1 is used; the whole
run is bounded by --max-seconds (default 600).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pydicom.dataset import Dataset  # noqa: E402

from dimse import client  # noqa: E402
from dimse.archive.archive import Archive  # noqa: E402
from dimse.datasets import UNCOMPRESSED  # noqa: E402
from dimse.models import VERIFICATION, Root  # noqa: E402
from dul.connection import Timeouts  # noqa: E402
from dul.negotiation import ProposedContext  # noqa: E402

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
CALLED_AE = "DICOMSCP"
_LISTENING = re.compile(r"listening on (\S+):(\d+)")
TIMEOUTS = Timeouts(connect=10, acse=30, dimse=60)


class SoakFailure(AssertionError):
    """A check of the soak did not hold."""


# --------------------------------------------------------------------------------------
# The server under test


@dataclass(frozen=True)
class Sample:
    done: int
    fds: int
    threads: int
    rss_kib: int


class Server:
    """`python -m cli.dicomscp` as a child process; its stderr is drained by a thread."""

    def __init__(self, work: Path) -> None:
        self.archive = work / "archive"
        config = work / "soak.toml"
        config.write_text("[timeouts]\nartim = 60\n", encoding="utf-8")
        command = [
            sys.executable, "-m", "cli.dicomscp",
            "--archive", str(self.archive),
            "--host", "127.0.0.1",
            "--no-fsync",
            "--config", str(config),
            "-q",
            "0",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, cwd=ROOT, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        self._port: int | None = None
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._drain, name="dicomscp-stderr", daemon=True)
        self._reader.start()
        port = self._listening_port() if self._ready.wait(60) else None
        if port is None:
            self.kill()
            raise SoakFailure(f"dicomscp did not say where it listens: {self.lines[-5:]}")
        self.port: int = port

    def _listening_port(self) -> int | None:
        return self._port

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))
            match = _LISTENING.search(line)
            if match and self._port is None:
                self._port = int(match.group(2))
                self._ready.set()
        self._ready.set()

    @property
    def pid(self) -> int:
        return self.process.pid

    def sample(self, done: int) -> Sample:
        fds = len(os.listdir(f"/proc/{self.pid}/fd"))
        status = Path(f"/proc/{self.pid}/status").read_text()
        threads = int(re.search(r"^Threads:\s+(\d+)", status, re.M).group(1))  # type: ignore[union-attr]
        rss = int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1))  # type: ignore[union-attr]
        return Sample(done, fds, threads, rss)

    def settled(self, seconds: float = 1.0) -> Sample:
        """The fewest descriptors and threads over `seconds`: the last association's
        socket and thread may still be closing when a phase starts."""
        samples = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            samples.append(self.sample(0))
            time.sleep(0.05)
        return min(samples, key=lambda s: (s.fds, s.threads))

    def cpu_seconds(self) -> float:
        """User and system CPU time the server has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self, timeout: float = 60) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise SoakFailure(f"dicomscp did not stop within {timeout:.0f} s of SIGTERM") from None
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def problems(self) -> list[str]:
        """Lines of its log that show an unexpected exception."""
        return [line for line in self.lines if "Traceback" in line or " ERROR " in line]


def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll `condition` until it holds or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def echo_once(port: int) -> float:
    """One association: open, C-ECHO, release. Returns its seconds."""
    started = time.perf_counter()
    with client.connect(
        "127.0.0.1",
        port,
        calling_ae="SOAK",
        called_ae=CALLED_AE,
        contexts=[ProposedContext(VERIFICATION, UNCOMPRESSED)],
        timeouts=TIMEOUTS,
    ) as association:
        status = association.echo()
        if not status.is_success:
            raise SoakFailure(f"C-ECHO answered {status}")
    return time.perf_counter() - started


def print_table(rows: list[Sample]) -> None:
    print(f"  {'associations':>12} {'fds':>5} {'threads':>7} {'RSS MiB':>8}")
    for row in rows:
        print(f"  {row.done:>12} {row.fds:>5} {row.threads:>7} {row.rss_kib / 1024:>8.1f}")


# --------------------------------------------------------------------------------------
# (a) associations in a row


def phase_associations(
    server: Server, args: argparse.Namespace, deadline: float, durations: list[float]
) -> None:
    count, every = args.associations, args.sample_every
    print(f"\n(a) {count} associations in a row (open, C-ECHO, release), sampled every {every}")
    warmup = min(args.warmup, count)
    samples = [server.sample(0)]
    first = len(durations)
    started = time.perf_counter()
    for done in range(1, count + 1):
        durations.append(echo_once(server.port))
        if done == warmup:
            samples.append(server.sample(done))
        if done % every == 0 or done == count:
            samples.append(server.sample(done))
        if time.monotonic() > deadline:
            raise SoakFailure(f"out of time after {done} associations")
    elapsed = time.perf_counter() - started
    samples = sorted({s.done: s for s in samples}.values(), key=lambda s: s.done)
    print_table(samples)
    ordered = sorted(durations[first:])
    print(
        f"  {count} associations in {elapsed:.1f} s: {count / elapsed:.0f}/s; per association "
        f"median {statistics.median(ordered) * 1000:.2f} ms, p99 "
        f"{ordered[int(len(ordered) * 0.99) - 1] * 1000:.2f} ms, max {ordered[-1] * 1000:.1f} ms"
    )
    base = next(s for s in samples if s.done >= warmup)
    last = samples[-1]
    middle = min(samples, key=lambda s: abs(s.done - (base.done + last.done) / 2))
    growth = (
        last.fds - base.fds,
        last.threads - base.threads,
        (last.rss_kib - base.rss_kib) / 1024,
    )
    late_rss = (last.rss_kib - middle.rss_kib) / 1024
    print(
        f"  growth after the {base.done}-association warm-up: fds {growth[0]:+d}, threads "
        f"{growth[1]:+d}, RSS {growth[2]:+.1f} MiB ({late_rss:+.1f} MiB over the second half)"
    )
    failures = []
    if max(s.fds for s in samples if s.done >= base.done) - base.fds > args.fd_slack:
        failures.append(f"open descriptors grew by more than {args.fd_slack}")
    if max(s.threads for s in samples if s.done >= base.done) - base.threads > args.thread_slack:
        failures.append(f"threads grew by more than {args.thread_slack}")
    if growth[2] > args.rss_slack_mb:
        failures.append(f"RSS grew by {growth[2]:.1f} MiB (> {args.rss_slack_mb})")
    if late_rss > args.rss_slack_mb / 2:
        failures.append(
            f"RSS grew by {late_rss:.1f} MiB over the second half (> {args.rss_slack_mb / 2})"
        )
    if failures:
        raise SoakFailure("; ".join(failures))


# --------------------------------------------------------------------------------------
# (b) idle connections held open


def phase_idle(server: Server, args: argparse.Namespace, typical: float) -> None:
    count = args.idle
    print(f"\n(b) {count} idle TCP connections held open while a normal association runs")
    before = server.settled()
    idle: list[socket.socket] = []
    try:
        started = time.perf_counter()
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            idle.append(sock)
        opened = time.perf_counter() - started
        held = wait_for(lambda: server.sample(0).fds >= before.fds + count, 60)
        during = server.sample(count)
        print(
            f"  opened {count} in {opened:.2f} s; server: fds {before.fds} -> {during.fds}, "
            f"threads {before.threads} -> {during.threads}, RSS {before.rss_kib / 1024:.1f} -> "
            f"{during.rss_kib / 1024:.1f} MiB"
        )
        if not held:
            raise SoakFailure(
                f"the server holds {during.fds - before.fds} of the {count} connections"
            )
        cpu, wall = server.cpu_seconds(), time.monotonic()
        time.sleep(3)
        busy = (server.cpu_seconds() - cpu) / (time.monotonic() - wall)
        print(f"  server CPU while they sit idle: {busy * 100:.1f}% of one core (over 3 s)")
        seconds = [echo_once(server.port) for _ in range(5)]
        print(
            f"  C-ECHO associations with {count} idle connections open: "
            + ", ".join(f"{s * 1000:.1f}" for s in seconds)
            + f" ms (median without them: {typical * 1000:.2f} ms)"
        )
        alive = sum(1 for sock in idle if _still_open(sock))
        print(f"  idle connections still open after the echoes: {alive}/{count}")
        if alive != count:
            raise SoakFailure(
                f"the server closed {count - alive} idle connections before ARTIM (60 s)"
            )
    finally:
        for sock in idle:
            sock.close()
    freed = wait_for(
        lambda: (s := server.sample(0)).fds <= before.fds + 2 and s.threads <= before.threads + 2,
        30,
    )
    after = server.sample(0)
    print(
        f"  after closing them: fds {after.fds}, threads {after.threads}, RSS {after.rss_kib / 1024:.1f} MiB"
    )
    if not freed:
        raise SoakFailure("the server did not free the closed idle connections within 30 s")


def _still_open(sock: socket.socket) -> bool:
    """True if the peer has not closed the connection (nothing to read, no EOF)."""
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


# --------------------------------------------------------------------------------------
# (c) concurrent storing associations


def make_instance(patient: int, number: int, study: str, series: str) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = SECONDARY_CAPTURE
    ds.SOPInstanceUID = f"2.25.{uuid.uuid4().int}"
    ds.PatientName = f"SOAK^P{patient:02d}"
    ds.PatientID = f"SOAK-{patient:02d}"
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.Modality = "OT"
    ds.InstanceNumber = number
    ds.ConversionType = "WSD"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = 32
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = bytes((patient + number + i) & 0xFF for i in range(32 * 32))
    return ds


def phase_store(server: Server, args: argparse.Namespace, work: Path) -> None:
    storers, each = args.storers, args.instances
    print(f"\n(c) {storers} concurrent associations, each storing {each} distinct instances")
    sent: dict[int, list[str]] = {}
    failures: list[str] = []
    lock = threading.Lock()

    def storer(index: int) -> None:
        study, series = f"2.25.{uuid.uuid4().int}", f"2.25.{uuid.uuid4().int}"
        uids: list[str] = []
        try:
            with client.connect(
                "127.0.0.1",
                server.port,
                calling_ae=f"SOAK{index:02d}",
                called_ae=CALLED_AE,
                contexts=[ProposedContext(SECONDARY_CAPTURE, UNCOMPRESSED)],
                timeouts=TIMEOUTS,
            ) as association:
                for number in range(1, each + 1):
                    instance = make_instance(index, number, study, series)
                    result = association.store(instance)
                    if not result.status.is_success:
                        raise SoakFailure(f"C-STORE of {result.sop_instance_uid}: {result.status}")
                    uids.append(str(instance.SOPInstanceUID))
        except Exception as exc:  # reported below, with the thread that saw it
            with lock:
                failures.append(f"storer {index}: {type(exc).__name__}: {exc}")
        with lock:
            sent[index] = uids

    threads = [
        threading.Thread(target=storer, args=(i,), name=f"storer-{i}") for i in range(storers)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(args.max_seconds)
    elapsed = time.perf_counter() - started
    acknowledged = sum(len(u) for u in sent.values())
    print(
        f"  {acknowledged} instances acknowledged (status 0000) in {elapsed:.1f} s: "
        f"{acknowledged / elapsed:.0f} instances/s"
    )
    during = server.sample(acknowledged)
    print(
        f"  server: fds {during.fds}, threads {during.threads}, RSS {during.rss_kib / 1024:.1f} MiB"
    )
    code = server.stop()
    print(f"  dicomscp stopped by SIGTERM: exit status {code}")
    if code != 0:
        failures.append(f"dicomscp exited {code} on SIGTERM")

    expected = {uid for uids in sent.values() for uid in uids}
    with Archive(server.archive) as archive:
        count = archive.count()
        indexed: list[str] = []
        for index in range(storers):
            query = Dataset()
            query.PatientID = f"SOAK-{index:02d}"
            indexed += [
                i.sop_instance_uid for i in archive.instances(query, Root.PATIENT, "PATIENT")
            ]
    files = [p for p in (server.archive / "instances").rglob("*") if p.is_file()]
    finals = [p for p in files if p.suffix == ".dcm"]
    leftovers = [p for p in files if p.suffix != ".dcm"]
    total = storers * each
    print(
        f"  archive: Archive.count() {count}; indexed {len(indexed)} ({len(set(indexed))} distinct); "
        f"files {len(finals)} (+{len(leftovers)} other); expected {total}"
    )
    lost = expected - set(indexed)
    extra = set(indexed) - expected
    print(
        f"  lost {len(lost)}, unexpected {len(extra)}, duplicated {len(indexed) - len(set(indexed))}"
    )
    if failures:
        raise SoakFailure("; ".join(failures[:5]))
    if not (count == len(indexed) == len(set(indexed)) == len(finals) == len(expected) == total):
        raise SoakFailure("the archive does not hold exactly the instances acknowledged")
    if lost or extra or leftovers:
        raise SoakFailure(
            f"lost {len(lost)}, unexpected {len(extra)}, leftover files {len(leftovers)}"
        )
    del work


# --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--associations", type=int, default=10_000, help="phase (a) (default 10000)"
    )
    parser.add_argument(
        "--sample-every", type=int, default=1_000, help="sample the server every N (a)"
    )
    parser.add_argument(
        "--warmup", type=int, default=1_000, help="associations before the baseline (a)"
    )
    parser.add_argument(
        "--fd-slack", type=int, default=4, help="descriptors the server may gain (a)"
    )
    parser.add_argument(
        "--thread-slack", type=int, default=2, help="threads the server may gain (a)"
    )
    parser.add_argument(
        "--rss-slack-mb", type=float, default=16.0, help="MiB the server may gain (a)"
    )
    parser.add_argument("--idle", type=int, default=500, help="idle connections held open (b)")
    parser.add_argument(
        "--storers", type=int, default=20, help="concurrent storing associations (c)"
    )
    parser.add_argument("--instances", type=int, default=50, help="instances each storer sends (c)")
    parser.add_argument("--phases", default="abc", help="which phases to run (default abc)")
    parser.add_argument("--max-seconds", type=float, default=600, help="bound on the whole run")
    parser.add_argument(
        "--keep", type=Path, help="work here (server archive) instead of a temporary folder"
    )
    args = parser.parse_args(argv)

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = args.idle + 256
    if soft < wanted:  # the server (our child) inherits it
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))

    deadline = time.monotonic() + args.max_seconds
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dicom-ul-soak-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        server = Server(work)
        print(f"dicomscp pid {server.pid} on 127.0.0.1:{server.port}, archive {server.archive}")
        failed: list[str] = []
        try:
            durations: list[float] = [echo_once(server.port)]
            phases: list[tuple[str, Callable[[], None]]] = [
                ("a", lambda: phase_associations(server, args, deadline, durations)),
                ("b", lambda: phase_idle(server, args, statistics.median(durations))),
                ("c", lambda: phase_store(server, args, work)),
            ]
            for name, phase in phases:
                if name not in args.phases:
                    continue
                if time.monotonic() > deadline:
                    failed.append(f"({name}) not run: out of time")
                    continue
                try:
                    phase()
                except (SoakFailure, OSError, client.NoPresentationContext) as exc:
                    print(f"  FAILED: {exc}")
                    failed.append(f"({name}) {exc}")
                except Exception as exc:  # an association error: a failure of the phase
                    print(f"  FAILED: {type(exc).__name__}: {exc}")
                    failed.append(f"({name}) {type(exc).__name__}: {exc}")
        finally:
            server.kill()
        problems = server.problems()
        if problems:
            failed.append(f"the server logged {len(problems)} errors, first: {problems[0]}")
            print("\nserver errors:\n  " + "\n  ".join(problems[:20]))
    print(
        f"\nsoak: {time.perf_counter() - started:.0f} s in all; " + ("FAILED" if failed else "ok")
    )
    for line in failed:
        print(f"  {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
