"""Faults while storing: a full disk (ROBUSTNESS 30) and a process killed in the middle
of a store (ROBUSTNESS 31). Every fault is real: a size-limited tmpfs or a file size
limit for the full disk, SIGKILL of a child process for the crash."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian

from dimse.archive.archive import Archive
from dimse.datasets import encode_dataset
from dimse.models import Root
from tests.test_archive_data import identifier, make_instance, store

REPO = Path(__file__).resolve().parent.parent


def temp_files(root: Path) -> list[Path]:
    return sorted(root.rglob(".incoming-*"))


def instance_files(root: Path) -> list[Path]:
    return sorted((root / "instances").rglob("*.dcm"))


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def assert_consistent(root: Path) -> int:
    """Open the archive (which recovers) and check that files and index agree: no
    temporary file, every file complete and indexed, every row's file there and
    holding what the row says. Returns the number of instances."""
    with Archive(root, fsync=False) as archive:
        assert not temp_files(root)
        keys = identifier(
            "IMAGE", SOPInstanceUID="", InstanceNumber="", SeriesInstanceUID="", StudyInstanceUID=""
        )
        rows = list(archive.find(keys, Root.PATIENT, "IMAGE"))
        on_disk = {p.resolve() for p in instance_files(root)}
        indexed = set()
        for row in rows:
            (found,) = archive.instances(
                identifier(SOPInstanceUID=row.SOPInstanceUID), Root.PATIENT, "IMAGE"
            )
            path = found.path.resolve()
            indexed.add(path)
            ds = dcmread(path)  # the whole file, pixel data included: nothing truncated
            assert len(ds.PixelData) == ds.Rows * ds.Columns * 2
            # the row describes this version of the file, in its place in the hierarchy
            # (patient attributes are those of the patient's last instance: not compared)
            assert ds.SOPInstanceUID == row.SOPInstanceUID
            assert ds.InstanceNumber == row.InstanceNumber, "the index describes another version"
            assert ds.SeriesInstanceUID == row.SeriesInstanceUID
            assert ds.StudyInstanceUID == row.StudyInstanceUID
        assert indexed == on_disk
        return archive.count()


# --- a full disk (ROBUSTNESS 30)


def test_a_full_disk_is_a700_and_leaves_no_file(small_disk: Path) -> None:
    root = small_disk / "archive"
    with Archive(root, fsync=True) as archive:
        first = make_instance(PatientName="Fits")
        assert store(archive, first) == 0x0000
        big = make_instance(pixels=2 << 20, PatientName="Too^Big")
        assert store(archive, big, fragment=64 << 10) == 0xA700
        assert not temp_files(root), "the temporary file of the refused instance is left"
        assert not (root / archive.relative_path(big.SOPInstanceUID)).exists()
        # the association goes on: the next instance that fits is stored
        after = make_instance(PatientName="After^Full")
        assert store(archive, after) == 0x0000
        names = {
            str(r.PatientName)
            for r in archive.find(identifier("IMAGE", PatientName=""), Root.STUDY, "IMAGE")
        }
        assert names == {"Fits", "After^Full"}
    assert assert_consistent(root) == 2


def test_a_disk_too_full_for_the_index_is_a700(small_disk: Path) -> None:
    root = small_disk / "archive"
    with Archive(root, fsync=True) as archive:
        assert store(archive, make_instance()) == 0x0000
        # Fill the file system to the last block: the instance's file, the journal
        # entry or the index transaction fails, whichever comes first.
        filler = small_disk / "filler"
        with filler.open("wb", buffering=0) as fp:
            try:
                while fp.write(bytes(4096)):
                    pass
            except OSError:
                pass
        statuses = [store(archive, make_instance(pixels=64)) for _ in range(3)]
        assert set(statuses) == {0xA700}
        assert not temp_files(root)
        filler.unlink()
        assert store(archive, make_instance()) == 0x0000
    assert assert_consistent(root) == 2


_FILE_SIZE_LIMIT = r"""
import resource, signal, sys
from pathlib import Path
from dimse.archive.archive import Archive
from tests.test_archive_data import make_instance, store
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (512 << 10, 512 << 10))
with Archive(Path(sys.argv[1]), fsync=True) as archive:
    big = store(archive, make_instance(pixels=1 << 20), fragment=16 << 10)
    small = store(archive, make_instance())
print(big, small)
"""


def test_a_file_size_limit_is_a700_and_leaves_no_file(tmp_path: Path) -> None:
    # Needs no privilege: RLIMIT_FSIZE makes writes past 512 KiB fail (EFBIG).
    root = tmp_path / "archive"
    result = subprocess.run(
        [sys.executable, "-c", _FILE_SIZE_LIMIT, str(root)],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(0xA700), str(0x0000)]
    assert not temp_files(root)
    assert assert_consistent(root) == 1


# --- a process killed in the middle of a store (ROBUSTNESS 31)

_CRASHING_STORE = r"""
import json, os, signal, sys
from pathlib import Path
from dimse.archive.archive import Archive

root, mode, spec = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
# spec may name a shared index and this node (tests/test_archive_shared.py)
archive = Archive(root, fsync=True, index=spec.get("index"), node=spec.get("node"))
real_replace = os.replace

def replace(src, dst, *args, **kwargs):
    # the crash is a real SIGKILL; this only chooses the moment
    if mode == "kill-before-rename":
        os.kill(os.getpid(), signal.SIGKILL)
    real_replace(src, dst, *args, **kwargs)
    if mode == "kill-after-rename":
        os.kill(os.getpid(), signal.SIGKILL)

os.replace = replace
data = Path(spec["data"]).read_bytes()
pending = archive.begin_store(spec["class"], spec["instance"], spec["syntax"])
if mode == "kill-mid-write":
    pending.write(data[: len(data) // 2])
    print("half written", flush=True)
    sys.stdin.read()  # blocks until the parent's SIGKILL
pending.write(data)
print(pending.commit(), flush=True)
"""


def crashing_store(root: Path, mode: str, dataset, tmp_path: Path) -> subprocess.Popen[str]:
    data = tmp_path / f"payload-{random.random()}"
    data.write_bytes(encode_dataset(dataset, ExplicitVRLittleEndian))
    spec = {
        "data": str(data),
        "class": dataset.SOPClassUID,
        "instance": dataset.SOPInstanceUID,
        "syntax": ExplicitVRLittleEndian,
    }
    return subprocess.Popen(
        [sys.executable, "-c", _CRASHING_STORE, str(root), mode, json.dumps(spec)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=child_env(),
    )


def stored_name_in_index(root: Path, sop_instance_uid: str) -> str | None:
    """What the index says, read with sqlite3 alone (opening an Archive would recover)."""
    conn = sqlite3.connect(root / "index.sqlite")
    try:
        row = conn.execute(
            "SELECT p.PatientName FROM instances i JOIN series se ON se.SeriesInstanceUID = i.SeriesInstanceUID"
            " JOIN studies st ON st.StudyInstanceUID = se.StudyInstanceUID JOIN patients p ON p.PatientID = st.PatientID"
            " WHERE i.SOPInstanceUID = ?",
            (sop_instance_uid,),
        ).fetchone()
    finally:
        conn.close()
    return None if row is None else str(row[0])


def versions() -> tuple[Dataset, Dataset]:
    old = make_instance(PatientID="SAME", PatientName="Old^Version", pixels=256 << 10)
    new = make_instance(
        PatientID="SAME",
        PatientName="New^Version",
        SOPInstanceUID=old.SOPInstanceUID,
        pixels=256 << 10,
    )
    new.file_meta.MediaStorageSOPInstanceUID = old.SOPInstanceUID
    return old, new


def test_killed_in_the_middle_of_writing(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    old, new = versions()
    with Archive(root, fsync=True) as archive:
        assert store(archive, old) == 0x0000
        final = root / archive.relative_path(old.SOPInstanceUID)
    child = crashing_store(root, "kill-mid-write", new, tmp_path)
    assert child.stdout is not None and child.stdout.readline() == "half written\n"
    assert temp_files(root), "the half-written instance should be in a temporary file"
    child.kill()
    child.wait(timeout=30)
    assert dcmread(final).PatientName == "Old^Version"  # never the half-written one
    assert assert_consistent(root) == 1
    assert not temp_files(root)


def test_killed_after_journaling_before_the_rename(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    old, new = versions()
    with Archive(root, fsync=True) as archive:
        assert store(archive, old) == 0x0000
        final = root / archive.relative_path(old.SOPInstanceUID)
    child = crashing_store(root, "kill-before-rename", new, tmp_path)
    assert child.wait(timeout=60) == -9
    assert dcmread(final).PatientName == "Old^Version"
    assert temp_files(root)  # the complete new file, never renamed
    assert assert_consistent(root) == 1
    with Archive(root, fsync=False) as archive:
        rows = list(archive.find(identifier("IMAGE", PatientName=""), Root.PATIENT, "IMAGE"))
        assert [str(r.PatientName) for r in rows] == ["Old^Version"]


def test_killed_between_the_rename_and_the_index_is_rolled_forward(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    old, new = versions()
    with Archive(root, fsync=True) as archive:
        assert store(archive, old) == 0x0000
        final = root / archive.relative_path(old.SOPInstanceUID)
    child = crashing_store(root, "kill-after-rename", new, tmp_path)
    assert child.wait(timeout=60) == -9
    # On disk the new version is in place, and the index still describes the old one:
    assert dcmread(final).PatientName == "New^Version"
    assert stored_name_in_index(root, old.SOPInstanceUID) == "Old^Version"
    # opening the archive rolls the journaled store forward.
    assert assert_consistent(root) == 1
    assert stored_name_in_index(root, old.SOPInstanceUID) == "New^Version"


def test_killed_after_the_rename_of_a_new_instance(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    Archive(root, fsync=False).close()
    ds = make_instance(PatientName="Only^Version")
    child = crashing_store(root, "kill-after-rename", ds, tmp_path)
    assert child.wait(timeout=60) == -9
    assert stored_name_in_index(root, ds.SOPInstanceUID) is None
    assert assert_consistent(root) == 1  # indexed from the file at start
    assert stored_name_in_index(root, ds.SOPInstanceUID) == "Only^Version"


_STORE_FOREVER = r"""
import sys, itertools
from pathlib import Path
from dimse.archive.archive import Archive
from tests.test_archive_data import make_instance, store

root, uids = Path(sys.argv[1]), sys.argv[2].split(",")
with Archive(root, fsync=True) as archive:
    for n in itertools.count():
        uid = uids[n % len(uids)]
        ds = make_instance(SOPInstanceUID=uid, PatientID=f"P{n % 3}", InstanceNumber=n, pixels=(n % 7 + 1) << 14)
        ds.file_meta.MediaStorageSOPInstanceUID = uid
        print(store(archive, ds, fragment=8192), flush=True)
"""


@pytest.mark.slow
def test_killed_at_random_moments_while_storing(tmp_path: Path) -> None:
    """No fault injection: a child stores and replaces instances without pause and is
    killed with SIGKILL after a random number of stores, wherever it then is."""
    root = tmp_path / "archive"
    uids = ",".join(make_instance().SOPInstanceUID for _ in range(4))
    rng = random.Random(20240531)
    for _round in range(8):
        child = subprocess.Popen(
            [sys.executable, "-c", _STORE_FOREVER, str(root), uids],
            stdout=subprocess.PIPE,
            text=True,
            env=child_env(),
        )
        assert child.stdout is not None
        for _ in range(rng.randint(1, 12)):
            assert child.stdout.readline() == "0\n"
        child.kill()
        child.wait(timeout=30)
        assert assert_consistent(root) <= 4
