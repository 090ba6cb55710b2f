"""How fast the archive answers an image-level C-FIND over 10,000 instances.

The instances are real (built with pydicom, stored through `begin_store` like any
other); the timing is of `Archive.find` alone, the responses consumed as the C-FIND
SCP would. Nothing here asserts a time (speed is the benchmark's business,
tests/bench): the tests check that every match comes back, and print the figure
(`pytest -s`).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.uid import ExplicitVRLittleEndian

from dimse.archive.archive import Archive
from dimse.datasets import encode_dataset
from dimse.models import Root
from tests.test_archive_data import identifier, make_instance, store

COUNT = 10_000


def _scratch(tmp_path_factory: pytest.TempPathFactory) -> tempfile.TemporaryDirectory[str] | Path:
    """A RAM file system when there is one: creating 10,000 files on a slow disk takes
    a minute, and this measures the query, not the disk."""
    if os.access("/dev/shm", os.W_OK):
        return tempfile.TemporaryDirectory(dir="/dev/shm", prefix="dicom-ul-speed-")
    return tmp_path_factory.mktemp("speed")


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Archive, str, str]]:
    scratch = _scratch(tmp_path_factory)
    root = (
        Path(scratch.name if isinstance(scratch, tempfile.TemporaryDirectory) else scratch)
        / "archive"
    )
    # One encoded data set whose SOP Instance UID and Instance Number are replaced in
    # the bytes (same lengths): 10,000 real, distinct instances without 10,000 encodings.
    uid_root = "1.2.826.0.1.3680043.10.1137.77."
    template = make_instance(PatientName="Speed^Test", PatientID="SPEED", Modality="CT")
    template.SOPInstanceUID = f"{uid_root}{10**7}"
    template.InstanceNumber = "99999999"
    data = encode_dataset(template, ExplicitVRLittleEndian)
    assert data.count(template.SOPInstanceUID.encode()) == 1 and data.count(b"99999999") == 1
    study, series = template.StudyInstanceUID, template.SeriesInstanceUID
    try:
        with Archive(root, fsync=False) as archive:
            started = time.perf_counter()
            for n in range(COUNT):
                uid = f"{uid_root}{10**7 + n + 1}"
                payload = data.replace(template.SOPInstanceUID.encode(), uid.encode()).replace(
                    b"99999999", b"%08d" % (n + 1)
                )
                assert store(archive, template, data=payload, sop_instance_uid=uid) == 0x0000
            print(
                f"\nstored {COUNT} instances in {time.perf_counter() - started:.2f} s ({root.parent})"
            )
            yield archive, study, series
    finally:
        if isinstance(scratch, tempfile.TemporaryDirectory):
            scratch.cleanup()


def timed(archive: Archive, root: Root, level: str, **keys: Any) -> tuple[int, float]:
    started = time.perf_counter()
    count = len(list(archive.find(identifier(level, **keys), root, level)))
    return count, time.perf_counter() - started


@pytest.mark.slow
def test_image_level_find_over_10000_instances(big: tuple[Archive, str, str]) -> None:
    archive, study, series = big
    assert archive.count() == COUNT
    keys = {
        "StudyInstanceUID": study,
        "SeriesInstanceUID": series,
        "SOPInstanceUID": "",
        "SOPClassUID": "",
        "InstanceNumber": "",
    }
    count, elapsed = timed(archive, Root.STUDY, "IMAGE", **keys)
    print(f"image-level find, {count} matches, UIDs above: {elapsed:.3f} s")
    assert count == COUNT
    count, elapsed = timed(
        archive, Root.PATIENT, "IMAGE", PatientName="Speed*", SOPInstanceUID="", InstanceNumber=""
    )
    print(
        f"image-level find, {count} matches, PatientName wild card tested in Python: {elapsed:.3f} s"
    )
    assert count == COUNT
    count, elapsed = timed(
        archive,
        Root.STUDY,
        "IMAGE",
        SeriesInstanceUID=series,
        InstanceNumber="5000",
        SOPInstanceUID="",
    )
    print(f"image-level find, 1 match of {COUNT}: {elapsed * 1000:.1f} ms")
    assert count == 1


@pytest.mark.slow
def test_retrieve_list_of_10000_instances(big: tuple[Archive, str, str]) -> None:
    archive, study, _series = big
    started = time.perf_counter()
    found = archive.instances(identifier("STUDY", StudyInstanceUID=study), Root.STUDY, "STUDY")
    elapsed = time.perf_counter() - started
    print(f"instances() of a 10,000-instance study: {elapsed:.3f} s")
    assert len(found) == COUNT
    assert all(isinstance(i.path, Path) for i in found[:10])
