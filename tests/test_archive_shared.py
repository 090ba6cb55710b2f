"""One archive folder and one PostgreSQL index shared by several nodes (issue 15),
as Archive objects in this process and in children killed with SIGKILL: what one node
stores the other finds at once; the same instance stored through two nodes at once
leaves one row and a file that agrees with it; each node recovers and cleans only its
own leftovers. (The same archive tests on both back ends: test_archive_store.py and
test_archive_find.py; two dicomscp processes: test_dicomscp_nodes.py.)"""

from __future__ import annotations

import contextlib
import json
import random
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian

from dimse.archive.archive import Archive, ArchiveLocked, IndexUnavailable
from dimse.datasets import encode_dataset
from dimse.models import Root
from tests.peers import HOST, free_port
from tests.postgres import require_psycopg
from tests.test_archive_data import identifier, make_instance, store
from tests.test_archive_faults import _CRASHING_STORE, child_env, temp_files


@pytest.fixture
def shared(tmp_path: Path, pg_database: str) -> tuple[Path, str]:
    """The shared folder and the index's URI."""
    return tmp_path / "shared", pg_database


@contextlib.contextmanager
def node(shared: tuple[Path, str], name: str, **options: object) -> Iterator[Archive]:
    root, uri = shared
    with Archive(root, fsync=False, index=uri, node=name, **options) as archive:  # type: ignore[arg-type]
        yield archive


def images(archive: Archive, **keys: str) -> list[Dataset]:
    query = identifier(
        "IMAGE", **{"SOPInstanceUID": "", "InstanceNumber": "", "PatientName": "", **keys}
    )
    return list(archive.find(query, Root.PATIENT, "IMAGE"))


def assert_agree(archive: Archive, uid: str) -> int:
    """One row for `uid`, and the file holds the version the row describes; returns
    its InstanceNumber."""
    (row,) = images(archive, SOPInstanceUID=uid)
    (found,) = archive.instances(identifier(SOPInstanceUID=uid), Root.PATIENT, "IMAGE")
    on_disk = dcmread(found.path)
    # (patient attributes are those of the patient's last stored instance: not compared)
    assert on_disk.InstanceNumber == row.InstanceNumber, "the row describes another version"
    return int(row.InstanceNumber)


def version(uid: str, n: int, **attributes: Any) -> Dataset:
    ds = make_instance(
        SOPInstanceUID=uid, InstanceNumber=n, PatientName=f"Version^{n}", **attributes
    )
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    return ds


# --- what one node stores, the other finds


def test_an_instance_stored_through_one_node_is_found_through_the_other_at_once(
    shared: tuple[Path, str],
) -> None:
    with node(shared, "a") as a, node(shared, "b") as b:
        ds = make_instance(PatientName="Shared^One")
        assert store(a, ds) == 0x0000
        assert [str(r.PatientName) for r in images(b)] == ["Shared^One"]
        (found,) = b.instances(identifier(SOPInstanceUID=ds.SOPInstanceUID), Root.PATIENT, "IMAGE")
        assert dcmread(found.path).SOPInstanceUID == ds.SOPInstanceUID
        assert a.count() == b.count() == 1


def test_a_node_name_runs_once_and_the_sqlite_archive_is_refused_meanwhile(
    shared: tuple[Path, str],
) -> None:
    with node(shared, "a"):
        with pytest.raises(ArchiveLocked, match="node 'a' is running already"):
            Archive(shared[0], fsync=False, index=shared[1], node="a")
        with pytest.raises(ArchiveLocked, match=r"SQLite|another process"):
            Archive(shared[0], fsync=False)
        with node(shared, "b"):
            pass
    with node(shared, "a"):  # the name is free again once closed
        pass


def test_an_unreachable_index_or_a_bad_node_name_says_what_to_do(tmp_path: Path) -> None:
    require_psycopg()
    nowhere = f"postgresql://nobody:secret@{HOST}:{free_port()}/none"  # nothing listens
    with pytest.raises(IndexUnavailable, match="cannot connect to the PostgreSQL index") as raised:
        Archive(tmp_path, index=nowhere, node="a")
    assert "secret" not in str(raised.value)
    with pytest.raises(ValueError, match="node name"):
        Archive(tmp_path, index=nowhere, node="../x")
    with pytest.raises(ValueError, match="PostgreSQL URI"):
        Archive(tmp_path, index="mysql://x")
    Archive(tmp_path, fsync=False).close()  # nothing was left locked


def test_a_node_removes_its_own_temporary_files_and_those_of_nodes_not_running(
    shared: tuple[Path, str],
) -> None:
    """At start node a removes its leftovers and those of node "ab" (not running),
    but not those of node b, which runs."""
    with node(shared, "a") as a:
        assert store(a, make_instance()) == 0x0000
        shard = next((a.root / "instances").iterdir())
        mine = shard / ".incoming-a@123-0.part"
        running = shard / ".incoming-b@123-0.part"
        gone = shard / ".incoming-ab@123-0.part"
    with node(shared, "b"):
        for path in (mine, running, gone):  # (b would remove its own as it starts)
            path.write_bytes(b"half an instance")
        with node(shared, "a"):
            assert not mine.exists() and not gone.exists()
            assert running.exists()


def test_a_value_postgresql_cannot_keep_is_refused_before_anything_is_written(
    shared: tuple[Path, str],
) -> None:
    with node(shared, "a") as a:
        ds = make_instance(PatientName="Nul\x00Inside")
        assert store(a, ds) == 0xC000
        assert a.count() == 0 and not list((a.root / "instances").rglob("*.dcm"))
        assert not temp_files(a.root) and not journal(shared[1])


# --- duplicates through two nodes


@pytest.mark.parametrize(("policy", "status"), [("keep", 0x0000), ("reject", 0x0111)])
def test_keep_and_reject_hold_across_nodes(
    shared: tuple[Path, str], policy: str, status: int
) -> None:
    uid = make_instance().SOPInstanceUID
    with (
        node(shared, "a", duplicate_policy=policy) as a,
        node(shared, "b", duplicate_policy=policy) as b,
    ):
        assert store(a, version(uid, 1)) == 0x0000
        assert store(b, version(uid, 2)) == status
        assert assert_agree(b, uid) == 1


def test_a_replacement_through_the_other_node_moves_the_instance(
    shared: tuple[Path, str],
) -> None:
    uid = make_instance().SOPInstanceUID
    with node(shared, "a") as a, node(shared, "b") as b:
        assert store(a, version(uid, 1, PatientID="OLD")) == 0x0000
        assert store(b, version(uid, 2, PatientID="NEW")) == 0x0000
        assert assert_agree(a, uid) == 2
        patients = a.find(identifier("PATIENT", PatientID=""), Root.PATIENT, "PATIENT")
        assert [p.PatientID for p in patients] == ["NEW"], "the emptied patient is removed"


def test_the_same_instance_stored_through_two_nodes_at_once_leaves_one_agreeing_copy(
    shared: tuple[Path, str],
) -> None:
    """Many rounds: both nodes store their own version of one UID at the same moment;
    every store succeeds (policy replace), and one row describes the one file."""
    with node(shared, "a") as a, node(shared, "b") as b:
        uids = [make_instance().SOPInstanceUID for _ in range(50)]
        barrier = threading.Barrier(2)
        statuses: list[int] = []
        errors: list[BaseException] = []

        def worker(archive: Archive, offset: int) -> None:
            try:
                for uid in uids:
                    ds = version(uid, offset, PatientID=f"P{offset}")
                    barrier.wait(30)
                    statuses.append(store(archive, ds, fragment=997))
            except BaseException as exc:
                errors.append(exc)
                barrier.abort()

        threads = [threading.Thread(target=worker, args=(x, n)) for x, n in ((a, 1), (b, 2))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not errors
        assert statuses == [0] * (2 * len(uids))
        for uid in uids:
            assert assert_agree(b, uid) in (1, 2)
        assert a.count() == len(uids)
        assert len(list((a.root / "instances").rglob("*.dcm"))) == len(uids)
        assert not temp_files(a.root)


def store_at_once(
    archive: Archive, ds: Dataset, barrier: threading.Barrier, statuses: list[int]
) -> None:
    barrier.wait(30)
    statuses.append(store(archive, ds))


def test_a_series_emptied_by_one_node_while_the_other_stores_into_it_keeps_the_new_instance(
    shared: tuple[Path, str],
) -> None:
    """Node a moves the only instance of a series to another patient (the series,
    its study and patient are left empty and removed) while node b stores a new
    instance into that series: b's instance must stay reachable, its series row kept
    or made again, whichever commits first."""
    with node(shared, "a") as a, node(shared, "b") as b:
        kept: list[str] = []
        for _ in range(50):
            series, elsewhere = make_instance().SeriesInstanceUID, make_instance().SeriesInstanceUID
            moving = make_instance(PatientID="P", SeriesInstanceUID=series)
            assert store(a, moving) == 0x0000
            # to another patient's study: the two transactions share no row to upsert
            moved = version(moving.SOPInstanceUID, 2, PatientID="Q", SeriesInstanceUID=elsewhere)
            newcomer = make_instance(
                PatientID="P", StudyInstanceUID=moving.StudyInstanceUID, SeriesInstanceUID=series
            )
            barrier = threading.Barrier(2)
            statuses: list[int] = []
            threads = [
                threading.Thread(target=store_at_once, args=(x, ds, barrier, statuses))
                for x, ds in ((a, moved), (b, newcomer))
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            assert statuses == [0, 0]
            kept.append(str(newcomer.SOPInstanceUID))
            (row,) = images(b, SOPInstanceUID=str(newcomer.SOPInstanceUID))
            assert row.SOPInstanceUID == newcomer.SOPInstanceUID
        # every instance row is reachable through its series, study and patient
        assert len(images(a)) == a.count() == 2 * len(kept)


# --- a node killed in the middle of a store


def crash_node_a(shared: tuple[Path, str], mode: str, ds: Dataset, tmp_path: Path) -> None:
    data = tmp_path / f"payload-{random.random()}"
    data.write_bytes(encode_dataset(ds, ExplicitVRLittleEndian))
    spec = {
        "data": str(data),
        "class": ds.SOPClassUID,
        "instance": ds.SOPInstanceUID,
        "syntax": ExplicitVRLittleEndian,
        "index": shared[1],
        "node": "a",
    }
    child = subprocess.run(
        [sys.executable, "-c", _CRASHING_STORE, str(shared[0]), mode, json.dumps(spec)],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
    )
    assert child.returncode == -9, child.stderr


def journal(uri: str) -> list[tuple[str, str]]:
    import psycopg

    with psycopg.connect(uri) as conn:
        return [(r[0], r[1]) for r in conn.execute("SELECT node, path FROM journal ORDER BY id")]


def test_a_killed_node_is_rolled_forward_by_the_next_node_to_start_never_while_it_runs(
    shared: tuple[Path, str], tmp_path: Path
) -> None:
    """Node a, killed after a rename, left a journal entry. Node b, started while a is
    not running, rolls it forward (a might never come back). An entry of a node that
    runs is never touched: its store may be in progress."""
    uid = make_instance().SOPInstanceUID
    with node(shared, "a") as a:
        assert store(a, version(uid, 1)) == 0x0000
    crash_node_a(shared, "kill-after-rename", version(uid, 2), tmp_path)
    # node a's journal entry names the renamed file, still indexed as version 1
    (entry,) = journal(shared[1])
    assert entry[0] == "a"
    with node(shared, "b") as b:
        assert journal(shared[1]) == []
        assert assert_agree(b, uid) == 2
    import psycopg

    with node(shared, "a"):  # a runs, with an entry that might be a store in progress
        with psycopg.connect(shared[1]) as conn:
            conn.execute("INSERT INTO journal (node, path) VALUES ('a', %s)", (entry[1],))
        with node(shared, "c"):
            assert journal(shared[1]) == [entry]


def test_a_node_killed_before_the_rename_leaves_the_old_version_and_its_temporary_file(
    shared: tuple[Path, str], tmp_path: Path
) -> None:
    uid = make_instance().SOPInstanceUID
    with node(shared, "a") as a:
        assert store(a, version(uid, 1)) == 0x0000
    crash_node_a(shared, "kill-before-rename", version(uid, 2), tmp_path)
    (left,) = temp_files(shared[0])
    assert left.name.startswith(".incoming-a@")
    with node(shared, "b") as b:  # a is not running: b removes what it left
        assert not temp_files(shared[0]) and not journal(shared[1])
        assert assert_agree(b, uid) == 1


_STORE_FOREVER = r"""
import sys, itertools
from pathlib import Path
from dimse.archive.archive import Archive
from tests.test_archive_data import make_instance, store

root, uri, uids = Path(sys.argv[1]), sys.argv[2], sys.argv[3].split(",")
with Archive(root, fsync=True, index=uri, node="a") as archive:
    for n in itertools.count():
        uid = uids[n % len(uids)]
        ds = make_instance(SOPInstanceUID=uid, PatientID=f"P{n % 3}", InstanceNumber=n, pixels=(n % 7 + 1) << 14)
        ds.file_meta.MediaStorageSOPInstanceUID = uid
        print(store(archive, ds, fragment=8192), flush=True)
"""


def assert_consistent(archive: Archive) -> int:
    """Every row's file is there and holds the version the row describes; every file
    is indexed; no temporary file of this node. Returns the number of instances."""
    rows = images(archive)
    on_disk = {p.resolve() for p in (archive.root / "instances").rglob("*.dcm")}
    indexed = set()
    for row in rows:
        assert_agree(archive, str(row.SOPInstanceUID))
        (found,) = archive.instances(
            identifier(SOPInstanceUID=row.SOPInstanceUID), Root.PATIENT, "IMAGE"
        )
        indexed.add(found.path.resolve())
    assert indexed == on_disk
    assert not [
        p for p in temp_files(archive.root) if p.name.startswith(f".incoming-{archive.node}@")
    ]
    return archive.count()


@pytest.mark.slow
def test_a_node_killed_at_random_moments_while_the_other_stores_the_same_instances(
    shared: tuple[Path, str],
) -> None:
    """Node a (a child) replaces four instances without pause and is killed with
    SIGKILL at random moments, while node b stores the same UIDs; after node a comes
    back, files and rows agree."""
    uids = [make_instance().SOPInstanceUID for _ in range(4)]
    rng = random.Random(20261207)
    with node(shared, "b") as b:
        for round_ in range(4):
            child = subprocess.Popen(
                [sys.executable, "-c", _STORE_FOREVER, str(shared[0]), shared[1], ",".join(uids)],
                stdout=subprocess.PIPE,
                text=True,
                env=child_env(),
            )
            assert child.stdout is not None
            for n in range(rng.randint(1, 10)):
                assert child.stdout.readline() == "0\n"
                assert store(b, version(uids[n % 4], 1000 + round_, PatientID="PB")) == 0x0000
            child.kill()
            child.wait(timeout=30)
            with node(shared, "a") as a:  # recovers node a's journal entries
                assert not journal(shared[1])
                assert assert_consistent(a) <= 4
        assert assert_consistent(b) <= 4
