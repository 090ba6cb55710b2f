"""The archive's C-FIND matching against Orthanc's, on the same instances.

The same files go into Orthanc (REST upload) and into the Archive (as the C-STORE SCP
gives them); the same query is sent to Orthanc with DCMTK's findscu and given to
`Archive.find`; the sets of Unique Keys matched must be equal, at each level of each
root. Orthanc runs with CaseSensitivePN, the standard's default and ours (Orthanc's
own default is case-insensitive).

Queries where the two differ by design are left out (and written down here):
Orthanc compares a PN value as a whole, we also match it group by group
(`山田^太郎` finds `Yamada^Tarou=山田^太郎`); Orthanc compares TM values as strings, we
compare them at the precision written (`0900` finds `09`); Orthanc puts an empty date
in an open range (`-20200101` finds a study without Study Date), we do not: an empty
value is no date "prior to" anything (C.2.2.2.5). The last is checked below.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dimse.archive.archive import Archive
from dimse.models import Root
from tests import peers
from tests.test_archive_data import UID, corpus, identifier, part10, pydicom_file, store_file

UNIQUE = {
    "PATIENT": "PatientID",
    "STUDY": "StudyInstanceUID",
    "SERIES": "SeriesInstanceUID",
    "IMAGE": "SOPInstanceUID",
}
TESTDATA = ["CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "SC_rgb_rle.dcm", "test-SR.dcm"]


@pytest.fixture(scope="module")
def loaded(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[peers.Orthanc, Archive, Path]]:
    workdir = tmp_path_factory.mktemp("orthanc-xcheck")
    files = [part10(ds, workdir / f"corpus-{n}.dcm") for n, ds in enumerate(corpus())]
    files += [pydicom_file(name) for name in TESTDATA]
    with (
        peers.start_orthanc(workdir / "orthanc", extra_config={"CaseSensitivePN": True}) as orthanc,
        Archive(workdir / "archive", fsync=False) as archive,
    ):
        for path in files:
            orthanc.upload(path)
            assert store_file(archive, path) == 0x0000, path
        yield orthanc, archive, workdir


def _unique(response: Any, keyword: str) -> str:
    value = response.get(keyword)
    return "" if value is None else str(value)


def _text(value: Any) -> str:
    return "\\".join(value) if isinstance(value, list) else str(value)


MODEL_FLAG = {Root.PATIENT: "-P", Root.STUDY: "-S"}

QUERIES: list[tuple[Root, str, dict[str, Any]]] = [
    (Root.PATIENT, "PATIENT", {}),
    (Root.PATIENT, "PATIENT", {"PatientName": "Doe^John"}),
    (Root.PATIENT, "PATIENT", {"PatientName": "?oe^*"}),
    (Root.PATIENT, "PATIENT", {"PatientName": "doe*"}),
    (Root.PATIENT, "PATIENT", {"PatientName": "Yamada*"}),
    (Root.PATIENT, "PATIENT", {"PatientID": ["P1", "P3"]}),
    (Root.PATIENT, "PATIENT", {"PatientBirthDate": "19600101-19701231"}),
    (Root.PATIENT, "PATIENT", {"PatientSex": "F"}),
    (Root.PATIENT, "STUDY", {"PatientID": "P1"}),
    (Root.PATIENT, "STUDY", {"StudyDate": "20200101-20201231"}),
    (Root.PATIENT, "SERIES", {"Modality": "CT"}),
    (Root.PATIENT, "IMAGE", {"SeriesInstanceUID": UID["A1"]}),
    (Root.STUDY, "STUDY", {}),
    (Root.STUDY, "STUDY", {"StudyDate": "20200115"}),
    (Root.STUDY, "STUDY", {"StudyDate": "20210101-"}),
    (Root.STUDY, "STUDY", {"StudyTime": "1000-1100"}),
    (Root.STUDY, "STUDY", {"AccessionNumber": "ACC-?00"}),
    (Root.STUDY, "STUDY", {"StudyDescription": "CHEST*"}),
    (Root.STUDY, "STUDY", {"StudyInstanceUID": [UID["SA"], UID["SC"]]}),
    (Root.STUDY, "STUDY", {"PatientName": "Doe*"}),
    (Root.STUDY, "STUDY", {"PatientName": "Müller*"}),
    (Root.STUDY, "STUDY", {"ModalitiesInStudy": "MR"}),
    (Root.STUDY, "STUDY", {"ReferringPhysicianName": "Ref^One"}),
    (Root.STUDY, "SERIES", {"StudyInstanceUID": UID["SA"]}),
    (Root.STUDY, "SERIES", {"Modality": "MR"}),
    (Root.STUDY, "SERIES", {"Modality": ["CT", "MR"]}),
    (Root.STUDY, "SERIES", {"SeriesInstanceUID": [UID["A2"], UID["C1"]]}),
    (Root.STUDY, "SERIES", {"SeriesDescription": "*AXIAL"}),
    (Root.STUDY, "SERIES", {"SeriesDate": "20200115-20200116"}),
    (Root.STUDY, "IMAGE", {"StudyInstanceUID": UID["SB"], "SeriesInstanceUID": UID["B1"]}),
    (Root.STUDY, "IMAGE", {"SOPInstanceUID": [UID["A1-3"], UID["E1-1"]]}),
    (Root.STUDY, "IMAGE", {"SOPClassUID": "1.2.840.10008.5.1.4.1.1.88.11"}),
    (Root.STUDY, "IMAGE", {"InstanceNumber": "2"}),
    (Root.STUDY, "IMAGE", {"ContentDate": "20200116-20201231"}),
    (Root.STUDY, "IMAGE", {}),
]


@pytest.mark.peers
@pytest.mark.parametrize(
    ("root", "level", "keys"),
    QUERIES,
    ids=[f"{r.value}-{lv}-{','.join(k) or 'all'}" for r, lv, k in QUERIES],
)
def test_the_same_matches_as_orthanc(
    loaded: tuple[peers.Orthanc, Archive, Path], root: Root, level: str, keys: dict[str, Any]
) -> None:
    orthanc, archive, workdir = loaded
    unique = UNIQUE[level]
    findscu_keys = {"QueryRetrieveLevel": level, **{k: _text(v) for k, v in keys.items()}}
    findscu_keys.setdefault(unique, "")
    if any(not str(v).isascii() for v in findscu_keys.values()):
        findscu_keys["SpecificCharacterSet"] = "ISO_IR 192"
    theirs = {
        _unique(r, unique)
        for r in peers.findscu(orthanc, workdir, findscu_keys, model=MODEL_FLAG[root])
    }
    ours = {_unique(r, unique) for r in archive.find(identifier(level, **keys), root, level)}
    assert ours == theirs
    if keys:  # the query did restrict something, or the comparison proves little
        everything = {_unique(r, unique) for r in archive.find(identifier(level), root, level)}
        assert ours != everything


@pytest.mark.peers
def test_orthanc_also_puts_empty_dates_in_open_ranges(
    loaded: tuple[peers.Orthanc, Archive, Path],
) -> None:
    orthanc, archive, workdir = loaded
    keys = {"QueryRetrieveLevel": "STUDY", "StudyDate": "-20200101", "StudyInstanceUID": ""}
    theirs = {
        _unique(r, "StudyInstanceUID") for r in peers.findscu(orthanc, workdir, keys, model="-S")
    }
    ours = {
        _unique(r, "StudyInstanceUID")
        for r in archive.find(identifier("STUDY", StudyDate="-20200101"), Root.STUDY, "STUDY")
    }
    assert ours and ours <= theirs
    undated = {
        _unique(r, "StudyInstanceUID")
        for r in archive.find(identifier("STUDY", StudyDate=""), Root.STUDY, "STUDY")
        if not r.StudyDate
    }
    assert theirs - ours <= undated
