"""dicomscp --workers N (cli/dicomscp/workers.py, dul/drivers/prefork.py): several
processes serving one port and one SQLite archive.

Real processes throughout: `python -m cli.dicomscp --workers 2` on a free loopback
port, our client storing from several threads, and real signals. Checked:
associations spread over the workers; a worker killed with SIGKILL is started again
and nothing it acknowledged is lost; the whole server killed with SIGKILL loses
nothing acknowledged, and its restart rolls forward what was half done; SIGTERM lets
every worker finish its associations; two workers storing one SOP Instance UID at
once leave one file and one row that agree.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from dimse import client
from dul.errors import AssociationAborted, AssociationError, AssociationRejected
from tests.ourserver import DicomSCP, start_dicomscp
from tests.peers import wait_until
from tests.rawpeer import connect, ct_instance

WAIT_S = 60.0
ASSOCIATION = r"(w\d) dimse\.scp: association from 127\.0\.0\.1:(\d+) \("


def worker_pids(server: DicomSCP) -> list[int]:
    """The supervisor's children: its workers."""
    pid = server.popen.pid
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def served_by(server: DicomSCP, association: client.Association) -> str:
    """Which worker ("w1", "w2") logged this association's start."""
    port = association.channel.sock.getsockname()[1]  # type: ignore[union-attr]
    match = server.wait_for_log(rf"(w\d) dimse\.scp: association from 127\.0\.0\.1:{port} \(")
    return match[1]


class Storer:
    """Threads storing new instances through fresh associations until stopped; an
    association that fails (its worker was killed) is replaced by a new one. What was
    acknowledged (status 0000) is kept, by SOP Instance UID."""

    def __init__(self, port: int, threads: int = 4) -> None:
        self.port = port
        self.acknowledged: dict[str, Dataset] = {}
        self.failures = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with connect(self.port) as association:
                    while not self._stop.is_set():
                        instance = ct_instance(
                            pixels=4096, PatientID=f"P{len(self.acknowledged) % 7}"
                        )
                        if association.store(instance).status.code == 0:
                            with self._lock:
                                self.acknowledged[instance.SOPInstanceUID] = instance
            except (AssociationError, OSError):
                with self._lock:
                    self.failures += 1

    def wait_for(self, count: int, what: str) -> None:
        wait_until(lambda: len(self.acknowledged) >= count, WAIT_S, what)

    def __enter__(self) -> Storer:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(WAIT_S)


def check_archive(root: Path, acknowledged: dict[str, Dataset]) -> None:
    """Every acknowledged instance is indexed, and its file holds every element as
    sent; the index and the files agree; no temporary file and no journal entry."""
    assert not list(root.rglob(".incoming-*")), "temporary files left"
    with contextlib.closing(
        sqlite3.connect(f"file:{root / 'index.sqlite'}?mode=ro", uri=True)
    ) as db:
        assert db.execute("SELECT COUNT(*) FROM journal").fetchone()[0] == 0
        rows = dict(db.execute("SELECT SOPInstanceUID, path FROM instances").fetchall())
    files = {str(p.relative_to(root)) for p in (root / "instances").rglob("*.dcm")}
    assert set(rows.values()) == files, "index rows and files differ"
    missing = set(acknowledged) - set(rows)
    assert not missing, f"{len(missing)} acknowledged instance(s) lost"
    for uid, sent in acknowledged.items():
        stored = dcmread(root / rows[uid])
        for element in sent:
            assert stored[element.tag].value == element.value, (uid, element.keyword)


@pytest.fixture
def workers(tmp_path: Path) -> Callable[..., contextlib.AbstractContextManager[DicomSCP]]:
    def start(*args: str, **options: object) -> contextlib.AbstractContextManager[DicomSCP]:
        return start_dicomscp(tmp_path, "--workers", "2", *args, **options)  # type: ignore[arg-type]

    return start


def test_associations_are_spread_over_the_workers(
    workers: Callable[..., contextlib.AbstractContextManager[DicomSCP]],
) -> None:
    """Two associations open at once go to the two workers (the least busy takes the
    next one), and the start line says how many workers serve."""
    with workers() as server:
        assert "; 2 workers" in server.startup_line
        assert len(worker_pids(server)) == 2
        with connect(server.port) as first, connect(server.port) as second:
            assert {served_by(server, first), served_by(server, second)} == {"w1", "w2"}
            assert first.store(ct_instance()).status.code == 0
            assert second.store(ct_instance()).status.code == 0


def test_a_worker_killed_is_started_again_and_nothing_acknowledged_is_lost(
    tmp_path: Path, workers: Callable[..., contextlib.AbstractContextManager[DicomSCP]]
) -> None:
    with workers() as server, Storer(server.port) as storer:
        storer.wait_for(40, "stores before the kill")
        victim = worker_pids(server)[0]
        os.kill(victim, signal.SIGKILL)
        server.wait_for_log(r"worker \d \(pid \d+\) ended \(killed by signal 9 \(SIGKILL\)\)")
        wait_until(
            lambda: len(worker_pids(server)) == 2 and victim not in worker_pids(server),
            WAIT_S,
            "the worker started again",
        )
        after = len(storer.acknowledged)
        storer.wait_for(after + 40, "stores after the restart")
    assert storer.failures >= 1, "the killed worker's associations failed"
    check_archive(tmp_path / "archive", storer.acknowledged)


def test_the_whole_server_killed_loses_nothing_acknowledged(
    tmp_path: Path, workers: Callable[..., contextlib.AbstractContextManager[DicomSCP]]
) -> None:
    with workers(check_exit=False) as server, Storer(server.port) as storer:
        storer.wait_for(60, "stores before the kill")
        server.stopped_by_us = server.signalled = True
        os.killpg(server.popen.pid, signal.SIGKILL)  # supervisor and workers at once
        server.popen.wait(WAIT_S)
    acknowledged = dict(storer.acknowledged)
    with workers() as server:  # the restart rolls forward and cleans up
        assert server.instance_count() >= len(acknowledged)
    check_archive(tmp_path / "archive", acknowledged)


def test_sigterm_lets_every_worker_finish_its_associations(
    workers: Callable[..., contextlib.AbstractContextManager[DicomSCP]],
) -> None:
    with workers() as server:
        with connect(server.port) as first, connect(server.port) as second:
            assert {served_by(server, first), served_by(server, second)} == {"w1", "w2"}
            server.send_signal(signal.SIGTERM)
            server.wait_for_log(r"w1 dicomscp: worker 1 stopping")
            server.wait_for_log(r"w2 dicomscp: worker 2 stopping")
            with pytest.raises(AssociationError):  # no new association
                connect(server.port).release()
            for association in (first, second):  # those in progress go on
                assert association.store(ct_instance(pixels=1 << 16)).status.code == 0
        assert server.stop() == 0
        assert server.archive is not None
        assert len(list((server.archive / "instances").rglob("*.dcm"))) == 2


def test_two_workers_storing_one_uid_leave_one_consistent_copy(
    tmp_path: Path, workers: Callable[..., contextlib.AbstractContextManager[DicomSCP]]
) -> None:
    """The same SOP Instance UID stored through both workers at once, round after
    round, with different content (policy replace): one row, and the file it points to
    holds one of the versions whole, the one the row describes."""
    uid = "1.2.826.0.1.3680043.8.498.77"
    with workers() as server, connect(server.port) as first, connect(server.port) as second:
        assert {served_by(server, first), served_by(server, second)} == {"w1", "w2"}
        for round_ in range(80):
            versions = [
                ct_instance(uid, pixels=8192, PatientID=f"A{round_}"),
                ct_instance(uid, pixels=8192, PatientID=f"B{round_}"),
            ]
            statuses: list[int] = []

            def store(association: client.Association, version: Dataset) -> None:
                statuses.append(association.store(version).status.code)  # noqa: B023

            racers = [
                threading.Thread(target=store, args=pair)
                for pair in zip((first, second), versions, strict=True)
            ]
            for racer in racers:
                racer.start()
            for racer in racers:
                racer.join(WAIT_S)
            assert statuses == [0, 0]
            root = tmp_path / "archive"
            with contextlib.closing(sqlite3.connect(root / "index.sqlite")) as db:
                rows = db.execute(
                    "SELECT i.path, p.PatientID FROM instances i JOIN series se ON "
                    "i.SeriesInstanceUID = se.SeriesInstanceUID JOIN studies st ON "
                    "se.StudyInstanceUID = st.StudyInstanceUID JOIN patients p ON "
                    "st.PatientID = p.PatientID"
                ).fetchall()
            assert len(rows) == 1, rows
            path, patient = rows[0]
            assert dcmread(root / path).PatientID == patient
            assert patient in (f"A{round_}", f"B{round_}")


def test_a_second_server_on_the_archive_is_refused(
    tmp_path: Path, workers: Callable[..., contextlib.AbstractContextManager[DicomSCP]]
) -> None:
    """The supervisor holds the folder for its workers: another dicomscp, with workers
    or without, cannot open it."""
    from tests.ourserver import run_dicomscp

    with workers():
        for extra in (["--workers", "2"], ["--workers", "1"]):
            done = run_dicomscp(
                "--archive", tmp_path / "archive", *extra, "--host", "127.0.0.1", "0"
            )
            assert done.returncode == 1
            assert "is another dicomscp using this archive?" in done.stderr
            assert "Traceback" not in done.stderr


def test_the_association_limits_hold_for_the_server_not_each_worker(
    workers: Callable[..., contextlib.AbstractContextManager[DicomSCP]],
) -> None:
    """max_associations = 2 and max_per_caller = 1 with two workers: a second
    association of one caller is refused by the other worker, which has room; a third
    caller is refused when two are open; a worker killed gives its places back."""
    config = "max_associations = 2\nmax_per_caller = 1\n"
    with workers(config=config) as server:
        first = connect(server.port, calling_ae="FIRST")
        assert served_by(server, first) == "w1"  # both idle: the first worker
        with pytest.raises(AssociationRejected):  # w2 is the least busy: it refuses
            connect(server.port, calling_ae="FIRST").release()
        server.wait_for_log(r"w2 dul\.server: association from \S+ refused: 'FIRST' has 1")
        second = connect(server.port, calling_ae="SECOND")
        with pytest.raises(AssociationRejected):
            connect(server.port, calling_ae="THIRD").release()
        server.wait_for_log(r"association limit reached: A-ASSOCIATE-RJ")
        holder = served_by(server, second)
        pid = worker_pids(server)[int(holder[1]) - 1]
        os.kill(pid, signal.SIGKILL)  # its association's place is freed with it
        wait_until(lambda: _admitted(server.port, "THIRD"), WAIT_S, "a place for a new caller")
        for association in (first, second):  # the killed worker's end aborted
            with contextlib.suppress(AssociationError):
                association.release()


def _admitted(port: int, calling_ae: str) -> bool:
    """Whether an association of `calling_ae` is accepted now. Refused (a limit), or
    reset (handed to the killed worker in the instant before the supervisor saw it
    die): not yet."""
    try:
        connect(port, calling_ae=calling_ae).release()
    except (AssociationRejected, AssociationAborted):
        return False
    return True
