"""Storing into the archive: statuses, layout, duplicates, bad data sets and bad UIDs
(ROBUSTNESS 28, 29, 32). Crashes and full disks: test_archive_faults.py."""

from __future__ import annotations

import os
import re
import shutil
import threading
import zlib
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ImplicitVRLittleEndian

from dimse.archive.archive import Archive, ArchiveLocked
from dimse.files import read_part10_info
from dimse.models import Root
from tests.test_archive_data import (
    identifier,
    make_instance,
    pydicom_file,
    store,
    store_file,
    values,
)

TESTDATA = [
    "CT_small.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_implicit.dcm",
    "JPEG2000.dcm",
    "image_dfl.dcm",
    "SC_rgb_rle.dcm",
    "test-SR.dcm",
    "liver_1frame.dcm",
    "waveform_ecg.dcm",
]
NAME = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*\.dcm|invalid-uid-[0-9a-f]{32}\.dcm")


@pytest.fixture
def archive(tmp_path: Path, index_spec: str | None):
    """An empty archive, once with each index back end (SQLite, PostgreSQL)."""
    with Archive(tmp_path / "archive", fsync=False, index=index_spec, node="test") as archive:
        yield archive


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def instance_files(archive: Archive) -> list[Path]:
    return sorted((archive.root / "instances").rglob("*.dcm"))


def temp_files(root: Path) -> list[Path]:
    return sorted(root.rglob(".incoming-*"))


def find_images(archive: Archive, **keys: Any) -> list[Dataset]:
    return list(archive.find(identifier("IMAGE", **keys), Root.PATIENT, "IMAGE"))


# --- the ordinary path


@pytest.mark.parametrize("name", TESTDATA)
def test_a_stored_file_is_kept_as_received_and_indexed(archive: Archive, name: str) -> None:
    path = pydicom_file(name)
    info = read_part10_info(path)
    assert store_file(archive, path) == 0x0000
    stored = archive.root / archive.relative_path(info.sop_instance_uid)
    stored_info = read_part10_info(stored)
    assert stored_info.transfer_syntax == info.transfer_syntax
    original = path.read_bytes()[info.dataset_offset :]
    assert stored.read_bytes()[stored_info.dataset_offset :] == original
    (found,) = archive.instances(
        identifier(SOPInstanceUID=info.sop_instance_uid), Root.PATIENT, "IMAGE"
    )
    assert (found.sop_instance_uid, found.transfer_syntax, found.path) == (
        info.sop_instance_uid,
        info.transfer_syntax,
        stored,
    )
    assert archive.count() == 1


def test_layout_is_a_shard_per_uid_hash_and_the_uid_as_name(archive: Archive) -> None:
    ds = make_instance()
    assert store(archive, ds) == 0x0000
    (path,) = instance_files(archive)
    assert path.name == f"{ds.SOPInstanceUID}.dcm"
    assert re.fullmatch(r"[0-9a-f]{2}", path.parent.name)
    assert path.parent.parent == archive.root / "instances"


@pytest.mark.parametrize("fragment", [1, 7, 100, 1 << 20])
def test_any_fragmentation_stores_the_same_bytes(archive: Archive, fragment: int) -> None:
    ds = make_instance(pixels=600)
    assert store(archive, ds, fragment=fragment) == 0x0000
    (path,) = instance_files(archive)
    assert dcmread(path).PixelData == ds.PixelData


@pytest.mark.parametrize(
    "syntax", [ImplicitVRLittleEndian, ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian]
)
def test_every_uncompressed_transfer_syntax_is_read_and_indexed(
    archive: Archive, syntax: str
) -> None:
    ds = make_instance(PatientName="Syntax^Test")
    assert store(archive, ds, transfer_syntax=syntax) == 0x0000
    (match,) = find_images(archive, SOPInstanceUID="", PatientName="Syntax^Test")
    assert match.SOPInstanceUID == ds.SOPInstanceUID
    (found,) = archive.instances(identifier(SOPInstanceUID=ds.SOPInstanceUID), Root.STUDY, "IMAGE")
    assert found.transfer_syntax == syntax
    assert dcmread(found.path).PatientName == "Syntax^Test"


def test_discarded_and_abandoned_stores_leave_nothing(archive: Archive) -> None:
    ds = make_instance()
    pending = archive.begin_store(ds.SOPClassUID, ds.SOPInstanceUID, ExplicitVRLittleEndian)
    pending.write(b"\x08\x00")
    assert temp_files(archive.root)
    pending.discard()
    with archive.begin_store(ds.SOPClassUID, ds.SOPInstanceUID, ExplicitVRLittleEndian) as pending:
        pending.write(b"\x08\x00")
    assert not temp_files(archive.root) and not instance_files(archive)
    assert archive.count() == 0
    with pytest.raises(ValueError):
        pending.write(b"more")


def test_one_process_at_a_time(tmp_path: Path) -> None:
    with Archive(tmp_path, fsync=False):
        with pytest.raises(ArchiveLocked):
            Archive(tmp_path, fsync=False)
    Archive(tmp_path, fsync=False).close()


def test_the_index_survives_a_reopen(tmp_path: Path, index_spec: str | None) -> None:
    ds = make_instance(PatientName="Kept^Across")
    with Archive(tmp_path, fsync=True, index=index_spec, node="test") as archive:
        assert store(archive, ds) == 0x0000
    with Archive(tmp_path, fsync=True, index=index_spec, node="test") as archive:
        assert archive.count() == 1
        assert values(find_images(archive, PatientName=""), "PatientName") == {"Kept^Across"}


# --- data sets that do not belong under their command (ROBUSTNESS 28) or cannot be read


def test_a_sop_instance_uid_that_differs_from_the_command_is_a900(archive: Archive) -> None:
    ds = make_instance()
    other = "1.2.3.4.5.6.7"
    assert store(archive, ds, sop_instance_uid=other) == 0xA900
    assert not instance_files(archive) and not temp_files(archive.root)
    assert archive.count() == 0


def test_a_sop_class_uid_that_differs_from_the_command_is_a900(archive: Archive) -> None:
    ds = make_instance()
    assert store(archive, ds, sop_class_uid="1.2.840.10008.5.1.4.1.1.4") == 0xA900
    assert not instance_files(archive) and archive.count() == 0


@pytest.mark.parametrize("name", ["rtplan.dcm", "rtdose.dcm"])
def test_real_files_whose_meta_and_data_set_disagree_are_a900(archive: Archive, name: str) -> None:
    # pydicom's RT test files carry a data set SOP Instance UID that differs from
    # their Media Storage SOP Instance UID, which is what the command is made from.
    assert store_file(archive, pydicom_file(name)) == 0xA900
    assert not instance_files(archive) and not temp_files(archive.root)


@pytest.mark.parametrize(
    ("missing", "status"),
    # No SOP Instance UID: the data set is not the command's instance (A900H); no Study
    # or Series Instance UID: it cannot be filed in the hierarchy (C000H, issue 13).
    [("StudyInstanceUID", 0xC000), ("SeriesInstanceUID", 0xC000), ("SOPInstanceUID", 0xA900)],
)
def test_a_data_set_without_its_place_in_the_model_is_refused(
    archive: Archive, missing: str, status: int
) -> None:
    removed: dict[str, Any] = {missing: None}
    ds = make_instance(**removed)
    uid = ds.file_meta.MediaStorageSOPInstanceUID
    assert store(archive, ds, sop_instance_uid=uid) == status
    assert not instance_files(archive)


def nested_sequences(depth: int) -> bytes:
    """(0008,1115) nested `depth` deep, undefined lengths (ROBUSTNESS 26)."""
    data = b""
    for _ in range(depth):
        item = b"\xfe\xff\x00\xe0\xff\xff\xff\xff" + data + b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
        data = (
            b"\x08\x00\x15\x11SQ\x00\x00\xff\xff\xff\xff"
            + item
            + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
        )
    return data


def test_a_data_set_that_cannot_be_read_is_c000(archive: Archive) -> None:
    uid, sop_class = "1.2.3.4", "1.2.840.10008.5.1.4.1.1.7"
    # a SOP Instance UID whose VR is no VR at all
    bad_vr = (
        b"\x08\x00\x16\x00UI\x1a\x00"
        + sop_class.encode()
        + b"\x00\x08\x00\x18\x00XX\x08\x001.2.3.4\x00"
    )
    for data in (nested_sequences(2000), bad_vr):
        pending = archive.begin_store(sop_class, uid, ExplicitVRLittleEndian)
        pending.write(data)
        assert pending.commit() == 0xC000
    assert not files_under(archive.root / "instances")


def test_a_deflate_bomb_is_refused_at_the_cap(archive: Archive) -> None:
    # 300 MiB of zeros in a few hundred kB: inflating it is refused past 256 MiB.
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    head = b"\x08\x00\x16\x00UI\x1a\x001.2.840.10008.5.1.4.1.1.7\x00"
    chunks = [compressor.compress(head)]
    zeros = bytes(1 << 20)
    chunks += [compressor.compress(zeros) for _ in range(300)]
    chunks.append(compressor.flush())
    pending = archive.begin_store(
        "1.2.840.10008.5.1.4.1.1.7", "1.2.3", DeflatedExplicitVRLittleEndian
    )
    for chunk in chunks:
        pending.write(chunk)
    assert pending.commit() == 0xC000
    assert not files_under(archive.root / "instances")


# --- UIDs that are paths (ROBUSTNESS 29)

HOSTILE_UIDS = [
    "../../x",
    "/etc/x",
    "..",
    "a;b",
    "../../../../../../../tmp/evil",
    "x/../../y",
    "$(touch p)",
    "a\\b",
]


def test_uids_that_are_paths_stay_inside_the_archive(tmp_path: Path) -> None:
    root = tmp_path / "deep" / "archive"
    outside_before = set(files_under(tmp_path))
    with Archive(root, fsync=False) as archive:
        for uid in HOSTILE_UIDS:
            ds = make_instance(SOPInstanceUID=uid, PatientName=f"Hostile^{len(uid)}")
            assert store(archive, ds, sop_instance_uid=uid) == 0x0000, uid
        everything = files_under(root)
        for path in everything:
            assert path.resolve().is_relative_to(root.resolve()), path
        stored = instance_files(archive)
        assert len(stored) == len(HOSTILE_UIDS)
        for path in stored:
            # named only from a validated UID or a hash, never from the raw text
            assert NAME.fullmatch(path.name), path.name
            assert path.name.startswith("invalid-uid-")
        for uid in HOSTILE_UIDS:
            if "\\" not in uid:  # a backslash makes a UID list of a query value
                (match,) = find_images(archive, SOPInstanceUID=uid)
                assert match.SOPInstanceUID == uid
    assert set(files_under(tmp_path)) - outside_before == set(files_under(root))
    assert not Path("/etc/x.dcm").exists() and not Path("/tmp/evil.dcm").exists()
    assert not (tmp_path / "p").exists()


def test_uids_that_are_paths_can_be_retrieved(archive: Archive) -> None:
    ds = make_instance(SOPInstanceUID="../../x")
    assert store(archive, ds, sop_instance_uid="../../x") == 0x0000
    (found,) = archive.instances(identifier(SOPInstanceUID="../../x"), Root.PATIENT, "IMAGE")
    assert found.path.resolve().is_relative_to(archive.root) and found.path.is_file()


# --- the same SOP Instance UID twice (ROBUSTNESS 32)


def two_versions() -> tuple[Dataset, Dataset]:
    first = make_instance(PatientID="P1", PatientName="First^Version")
    second = make_instance(
        PatientID="P2", PatientName="Second^Version", SOPInstanceUID=first.SOPInstanceUID
    )
    second.file_meta.MediaStorageSOPInstanceUID = first.SOPInstanceUID
    return first, second


def test_replace_policy_replaces_the_file_and_the_index_row(
    tmp_path: Path, index_spec: str | None
) -> None:
    first, second = two_versions()
    with Archive(
        tmp_path, fsync=False, duplicate_policy="replace", index=index_spec, node="test"
    ) as archive:
        assert store(archive, first) == 0x0000
        assert store(archive, second) == 0x0000
        assert archive.count() == 1
        (path,) = instance_files(archive)
        assert dcmread(path).PatientName == "Second^Version"
        assert values(find_images(archive, PatientName=""), "PatientName") == {"Second^Version"}
        # the first version's study, series and patient were left empty: gone
        studies = list(archive.find(identifier("STUDY", StudyInstanceUID=""), Root.STUDY, "STUDY"))
        assert values(studies, "StudyInstanceUID") == {second.StudyInstanceUID}
        patients = list(archive.find(identifier("PATIENT", PatientID=""), Root.PATIENT, "PATIENT"))
        assert values(patients, "PatientID") == {"P2"}


@pytest.mark.parametrize(("policy", "status"), [("keep", 0x0000), ("reject", 0x0111)])
def test_keep_and_reject_policies_keep_the_first(
    tmp_path: Path, index_spec: str | None, policy: str, status: int
) -> None:
    first, second = two_versions()
    with Archive(
        tmp_path,
        fsync=False,
        duplicate_policy=policy,  # type: ignore[arg-type]
        index=index_spec,
        node="test",
    ) as archive:
        assert store(archive, first) == 0x0000
        assert store(archive, second) == status
        (path,) = instance_files(archive)
        assert dcmread(path).PatientName == "First^Version"
        assert values(find_images(archive, PatientName=""), "PatientName") == {"First^Version"}
        assert not temp_files(archive.root)


def test_an_unknown_policy_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="duplicate_policy"):
        Archive(tmp_path, duplicate_policy="overwrite")  # type: ignore[arg-type]


def test_concurrent_replacements_leave_the_file_and_the_row_agreeing(archive: Archive) -> None:
    uid = make_instance().SOPInstanceUID
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(6):
                ds = make_instance(
                    SOPInstanceUID=uid, PatientName=f"Writer{n}^Round{i}", PatientID="SAME"
                )
                ds.file_meta.MediaStorageSOPInstanceUID = uid
                assert store(archive, ds, fragment=97) == 0x0000
                list(archive.find(identifier("STUDY", PatientName=""), Root.STUDY, "STUDY"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    (path,) = instance_files(archive)
    (row,) = find_images(archive, PatientName="")
    assert dcmread(path).PatientName == row.PatientName
    assert archive.count() == 1 and not temp_files(archive.root)


def test_concurrent_stores_of_different_instances(archive: Archive) -> None:
    datasets = [make_instance(PatientID=f"T{n % 3}") for n in range(40)]
    statuses: list[int] = []
    lock = threading.Lock()

    def worker(part: list[Dataset]) -> None:
        for ds in part:
            status = store(archive, ds, fragment=333)
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=worker, args=(datasets[n::4],)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [0] * 40
    assert archive.count() == 40 and len(instance_files(archive)) == 40
    patients = list(
        archive.find(
            identifier("PATIENT", PatientID="", NumberOfPatientRelatedInstances=""),
            Root.PATIENT,
            "PATIENT",
        )
    )
    assert {(p.PatientID, int(p.NumberOfPatientRelatedInstances)) for p in patients} == {
        ("T0", 14),
        ("T1", 13),
        ("T2", 13),
    }


def test_stray_temporary_files_are_removed_at_start(tmp_path: Path) -> None:
    with Archive(tmp_path, fsync=False) as archive:
        assert store(archive, make_instance()) == 0x0000
        shard = instance_files(archive)[0].parent
    stray = shard / ".incoming-abc123.part"
    stray.write_bytes(b"half an instance")
    other = shard / "notes.txt"
    other.write_text("not ours to remove")
    with Archive(tmp_path, fsync=False) as archive:
        assert not stray.exists() and other.exists()
        assert archive.count() == 1


def test_the_archive_can_be_opened_by_path_string(tmp_path: Path) -> None:
    with Archive(str(tmp_path / "a"), fsync=False) as archive:  # type: ignore[arg-type]
        assert archive.root == (tmp_path / "a").resolve()
        assert os.path.isdir(archive.root / "instances")


ExplicitVRLittleEndian = "1.2.840.10008.1.2.1"


def test_a_directory_removed_behind_our_back_is_made_again(tmp_path: Path) -> None:
    """The archive creates each instances/<hh> directory once and remembers it; if one
    is removed while the archive is open, the next store there makes it again."""
    with Archive(tmp_path / "archive", fsync=False) as archive:
        first = make_instance()
        assert store(archive, first) == 0x0000
        shard = (archive.root / archive.relative_path(first.SOPInstanceUID)).parent
        shutil.rmtree(shard)
        # a UID whose file goes to the same directory (the name is hashed)
        uid = next(
            f"{first.SOPInstanceUID}.{n}"
            for n in range(10_000)
            if (archive.root / archive.relative_path(f"{first.SOPInstanceUID}.{n}")).parent == shard
        )
        second = make_instance(SOPInstanceUID=uid)
        assert store(archive, second) == 0x0000
        assert (archive.root / archive.relative_path(uid)).exists()
