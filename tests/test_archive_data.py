"""Instances and identifiers for the archive and matching tests (no tests here).

Instances are real data sets built with pydicom, or pydicom's own test files, and are
given to the archive the way the C-STORE SCP does: the data set bytes in the transfer
syntax of the presentation context, in fragments, through `Archive.begin_store`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dimse.archive.archive import Archive
from dimse.datasets import encode_dataset
from dimse.files import read_part10_info

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"

_counter = itertools.count(1)


def make_instance(
    *,
    sop_class_uid: str = CT_IMAGE_STORAGE,
    pixels: int = 16,
    **attributes: Any,
) -> Dataset:
    """A small image with every attribute the index keeps set to something plausible;
    keyword arguments override them (None removes one). `pixels` is about the number of
    pixel data bytes (16-bit samples, at most 512 a row)."""
    n = next(_counter)
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = f"PID{n}"
    ds.PatientName = f"Patient^Number{n}"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyDate = "20200101"
    ds.StudyTime = "120000"
    ds.AccessionNumber = f"ACC{n}"
    ds.StudyID = f"S{n}"
    ds.StudyDescription = "A study"
    ds.ReferringPhysicianName = "Referring^Doctor"
    ds.Modality = "CT"
    ds.SeriesNumber = 1
    ds.SeriesDescription = "A series"
    ds.InstanceNumber = n
    ds.ContentDate = "20200101"
    ds.ContentTime = "120001"
    samples = max(pixels // 2, 1)
    ds.Columns = min(samples, 512)
    ds.Rows = samples // ds.Columns
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = b"\x00\x01" * (ds.Rows * ds.Columns)
    generated = (ds.SOPClassUID, ds.SOPInstanceUID)
    for keyword, value in attributes.items():
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.get("SOPClassUID", generated[0])
    ds.file_meta.MediaStorageSOPInstanceUID = ds.get("SOPInstanceUID", generated[1])
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def store(
    archive: Archive,
    dataset: Dataset,
    *,
    transfer_syntax: str = ExplicitVRLittleEndian,
    sop_class_uid: str | None = None,
    sop_instance_uid: str | None = None,
    fragment: int = 4096,
    data: bytes | None = None,
) -> int:
    """C-STORE `dataset` into `archive` as the SCP would: command UIDs (the data set's
    own unless given), then the encoded data set in fragments; returns the status."""
    payload = encode_dataset(dataset, transfer_syntax) if data is None else data
    pending = archive.begin_store(
        sop_class_uid if sop_class_uid is not None else str(dataset.SOPClassUID),
        sop_instance_uid if sop_instance_uid is not None else str(dataset.SOPInstanceUID),
        transfer_syntax,
    )
    for start in range(0, len(payload), fragment):
        pending.write(payload[start : start + fragment])
    return pending.commit()


def store_file(archive: Archive, path: str | Path, fragment: int = 16384) -> int:
    """C-STORE a Part 10 file: its data set bytes as they are, in its transfer syntax."""
    info = read_part10_info(path)
    pending = archive.begin_store(info.sop_class_uid, info.sop_instance_uid, info.transfer_syntax)
    with Path(path).open("rb") as fp:
        fp.seek(info.dataset_offset)
        while chunk := fp.read(fragment):
            pending.write(chunk)
    return pending.commit()


def identifier(level: str | None = None, charset: str | None = None, **keys: Any) -> Dataset:
    """A C-FIND identifier: keyword=value ("" for a return key, a list of Datasets for a
    sequence key)."""
    ds = Dataset()
    if charset is not None:
        ds.SpecificCharacterSet = charset
    if level is not None:
        ds.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        if isinstance(value, list) and all(isinstance(v, Dataset) for v in value):
            setattr(ds, keyword, Sequence(value))
        else:
            setattr(ds, keyword, value)
    return ds


def values(responses: Iterable[Dataset], keyword: str) -> set[str]:
    """The set of `keyword` values (as text) of some responses."""
    return {str(r.get(keyword, "")) for r in responses}


def pydicom_file(name: str) -> Path:
    """One of pydicom's test files (those shipped with it, not downloaded)."""
    found = get_testdata_file(name)
    assert isinstance(found, str), name
    return Path(found)


def part10(dataset: Dataset, path: Path) -> Path:
    """Write `dataset` as a Part 10 file (for peers that load files)."""
    dataset.save_as(path, enforce_file_format=True)
    return path


# --- a corpus: four patients, five studies, six series, nine instances, with names in
# three character sets, for the find tests and the cross-check with Orthanc

BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
CR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1"
U = "1.2.826.0.1.3680043.10.1137"  # a UID root for this corpus

# Symbolic names -> UIDs (studies ST-, series SE-, instances IM-)
UID = {
    name: f"{U}.{n}"
    for n, name in enumerate(
        "SA SB SC SD SE A1 A2 B1 C1 D1 E1 A1-1 A1-2 A1-3 A2-1 B1-1 B1-2 C1-1 D1-1 E1-1".split(),
        start=1,
    )
}
NAME = {uid: name for name, uid in UID.items()}

PATIENTS: dict[str, dict[str, str]] = {
    "P1": {"PatientName": "Doe^John", "PatientBirthDate": "19600101", "PatientSex": "M"},
    "P2": {
        "PatientName": "doe^jane",
        "PatientBirthDate": "19851231",
        "PatientSex": "F",
        "OtherPatientNames": "Roe^Jane",
    },
    "P3": {"PatientName": "Müller^Jürgen", "PatientBirthDate": "19700505", "PatientSex": "M"},
    "P4": {
        "PatientName": "Yamada^Tarou=山田^太郎=やまだ^たろう",
        "PatientBirthDate": "19901010",
        "PatientSex": "M",
        "SpecificCharacterSet": "ISO_IR 192",
    },
}
STUDIES: dict[str, tuple[str, dict[str, str]]] = {
    "SA": (
        "P1",
        {
            "StudyDate": "20200115",
            "StudyTime": "101500",
            "AccessionNumber": "ACC-100",
            "StudyDescription": "CHEST CT",
            "ReferringPhysicianName": "Ref^One",
        },
    ),
    "SB": (
        "P1",
        {
            "StudyDate": "20201231",
            "StudyTime": "235959",
            "AccessionNumber": "ACC-200",
            "StudyDescription": "BRAIN MR",
            "ReferringPhysicianName": "Ref^Two",
        },
    ),
    "SC": (
        "P2",
        {
            "StudyDate": "20210301",
            "StudyTime": "0800",
            "AccessionNumber": "ACC-300",
            "StudyDescription": "CHEST XRAY",
            "ReferringPhysicianName": "Ref^One",
        },
    ),
    "SD": (
        "P3",
        {
            "StudyDate": "20190601",
            "StudyTime": "1200",
            "AccessionNumber": "X-1",
            "StudyDescription": "KNEE",
            "ReferringPhysicianName": "",
        },
    ),
    "SE": (
        "P4",
        {
            "StudyDate": "20220202",
            "StudyTime": "09",
            "AccessionNumber": "X-2",
            "StudyDescription": "HEAD",
            "ReferringPhysicianName": "",
        },
    ),
}
SERIES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "A1": (
        "SA",
        CT_IMAGE_STORAGE,
        {
            "Modality": "CT",
            "SeriesNumber": 1,
            "SeriesDescription": "AXIAL",
            "SeriesDate": "20200115",
        },
    ),
    "A2": (
        "SA",
        BASIC_TEXT_SR,
        {
            "Modality": "SR",
            "SeriesNumber": 2,
            "SeriesDescription": "REPORT",
            "SeriesDate": "20200116",
        },
    ),
    "B1": (
        "SB",
        MR_IMAGE_STORAGE,
        {
            "Modality": "MR",
            "SeriesNumber": 1,
            "SeriesDescription": "T1 AXIAL",
            "SeriesDate": "20201231",
        },
    ),
    "C1": (
        "SC",
        CR_IMAGE_STORAGE,
        {"Modality": "CR", "SeriesNumber": 1, "SeriesDescription": "PA", "SeriesDate": "20210301"},
    ),
    "D1": (
        "SD",
        CT_IMAGE_STORAGE,
        {
            "Modality": "CT",
            "SeriesNumber": 3,
            "SeriesDescription": "SAGITTAL",
            "SeriesDate": "20190601",
        },
    ),
    "E1": (
        "SE",
        MR_IMAGE_STORAGE,
        {"Modality": "MR", "SeriesNumber": 1, "SeriesDescription": "DWI", "SeriesDate": "20220202"},
    ),
}
IMAGES: dict[str, tuple[str, int, dict[str, Any]]] = {
    "A1-1": (
        "A1",
        1,
        {
            "ContentDate": "20200115",
            "ImageComments": "first slice",
            "ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"],
        },
    ),
    "A1-2": ("A1", 2, {"ContentDate": "20200115"}),
    "A1-3": ("A1", 3, {"ContentDate": "20200116"}),
    "A2-1": ("A2", 1, {"ContentDate": "20200116"}),
    "B1-1": ("B1", 1, {"ContentDate": "20201231"}),
    "B1-2": ("B1", 2, {"ContentDate": "20210101"}),
    "C1-1": ("C1", 1, {"ContentDate": "20210301"}),
    "D1-1": ("D1", 1, {"ContentDate": "20190601"}),
    "E1-1": ("E1", 1, {"ContentDate": "20220202"}),
}


def code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def corpus() -> Iterator[Dataset]:
    for image, (series, number, image_attrs) in IMAGES.items():
        study, sop_class, series_attrs = SERIES[series]
        patient, study_attrs = STUDIES[study]
        attrs: dict[str, Any] = {
            "PatientID": patient,
            **PATIENTS[patient],
            **study_attrs,
            **series_attrs,
            **image_attrs,
        }
        ds = make_instance(
            sop_class_uid=sop_class,
            SOPInstanceUID=UID[image],
            SeriesInstanceUID=UID[series],
            StudyInstanceUID=UID[study],
            InstanceNumber=number,
            **attrs,
        )
        if study == "SA":
            ds.ProcedureCodeSequence = [
                code("CT-CHEST", "LOCAL", "CT chest"),
                code("XR-1", "LOCAL", "extra"),
            ]
        yield ds
