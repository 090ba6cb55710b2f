"""dicomscp, our server, run as a user runs it, against DCMTK's and pynetdicom's SCUs,
and its C-FIND answers against Orthanc's.

One dicomscp and one Orthanc (module-scoped) hold the same instances, stored by DCMTK
`storescu` into each: pydicom's bundled test files and nine generated instances
(four patients, five studies, seven series) whose names, dates and descriptions are
chosen so that exact, wild card (`*`, `?`), range, universal and UID list matching
tell them apart. Every C-FIND is sent with DCMTK `findscu` to both servers; the sets
of Unique Keys matched must be equal, and so must the values of the requested keys
that both return. C-MOVE goes to a DCMTK `storescp` that dicomscp knows as STORESCP
(`--destination`), C-GET writes into getscu's folder: exactly the matching instances
must arrive. The tests that need a server of their own (association limit, allow-list,
called AE title check, SIGTERM during a large C-STORE, restart, the log) start one.

Differences with Orthanc, intentional and checked as such:

- An open date range (`-20191231`, `-19700101`) does not match an entity whose date
  is empty in dicomscp; Orthanc matches it. PS3.4 C.2.2.2.5.1 defines `-<date1>` as
  "all dates prior to and including date1": an empty value is no date, so we think
  dicomscp is right (test_open_date_range_leaves_out_empty_dates).
- Person names: Orthanc's default (CaseSensitivePN false) matches PN case-
  insensitively; dicomscp matches case-sensitively, like every other VR. PS3.4
  C.2.2.2.1 allows both for PN; the cross-check runs Orthanc with CaseSensitivePN true,
  and test_pn_case_orthanc_default shows the difference with Orthanc's default.
- A PN stored with empty trailing components (`OB^^^^`) is returned as stored by
  Orthanc and without the empty trailing components (`OB`) by dicomscp: the same name
  (PS3.5 6.2.1 lets trailing empty components and their delimiters be left out), so
  the values are compared with them stripped.
- Orthanc adds Retrieve AE Title to every response, requested or not; only the
  requested keys are compared.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import signal
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import generate_uid

from tests import peers

pytest.register_assert_rewrite("tests.ourserver")  # before its import: it is a plugin too
from tests.ourserver import DicomSCP, Outcome, associate, start_dicomscp  # noqa: E402

pytest_plugins = ["tests.ourserver"]  # dicomscp_factory, pynetdicom_ae; logs of failed tests
pytestmark = pytest.mark.peers  # DCMTK's tools and Orthanc, nearly everywhere

#: pydicom's bundled instances whose file meta UIDs agree with their data sets.
BUNDLED = (
    "CT_small.dcm",
    "MR_small.dcm",
    "examples_overlay.dcm",
    "examples_palette.dcm",
    "examples_rgb_color.dcm",
    "liver_1frame.dcm",
    "reportsi.dcm",
    "waveform_ecg.dcm",
    "JPEG2000.dcm",
)

ROOT = "1.2.826.0.1.3680043.10.1151.7"  # the UIDs of the generated instances


@dataclass(frozen=True)
class Made:
    """A generated instance: patient, study, series and instance attributes."""

    patient_id: str
    patient_name: str
    birth_date: str
    sex: str
    study: int
    study_date: str
    study_time: str
    accession: str
    study_description: str
    series: int
    modality: str
    series_description: str
    number: int


#: Four patients, five studies, seven series, nine instances; names and values chosen
#: so that wild cards, ranges and case sensitivity tell them apart.
MADE = (
    Made("PX1", "Doe^John", "19650312", "M", 1, "20200115", "101500", "ACC-100", "CHEST CT", 1, "CT", "AXIAL 5mm", 1),
    Made("PX1", "Doe^John", "19650312", "M", 1, "20200115", "101500", "ACC-100", "CHEST CT", 1, "CT", "AXIAL 5mm", 2),
    Made("PX1", "Doe^John", "19650312", "M", 1, "20200115", "101500", "ACC-100", "CHEST CT", 2, "MR", "SAGITTAL", 1),
    Made("PX1", "Doe^John", "19650312", "M", 2, "20210310", "083000", "ACC-200", "HEAD MR", 3, "MR", "CORONAL", 1),
    Made("PX2", "Doe^Jane", "19701224", "F", 3, "20200116", "142000", "ACC-300", "CHEST XR", 4, "CT", "AXIAL 1mm", 1),
    Made("PX2", "Doe^Jane", "19701224", "F", 3, "20200116", "142000", "ACC-300", "CHEST XR", 4, "CT", "AXIAL 1mm", 2),
    Made("PX3", "doe^jim", "19800101", "M", 4, "20191231", "235959", "ACC-400", "abdomen", 5, "CT", "PORTAL", 1),
    Made("PX4", "Dae^Jo", "", "O", 5, "20220601", "000000", "ACC-5X0", "CHEST PA", 6, "MR", "T1 AXIAL", 1),
    Made("PX4", "Dae^Jo", "", "O", 5, "20220601", "000000", "ACC-5X0", "CHEST PA", 7, "CT", "SCOUT", 1),
)  # fmt: skip


def study_uid(n: int) -> str:
    return f"{ROOT}.1.{n}"


def series_uid(n: int) -> str:
    return f"{ROOT}.2.{n}"


def instance_uid(made: Made) -> str:
    return f"{ROOT}.3.{made.series}.{made.number}"


def bundled(name: str) -> Path:
    """One of pydicom's bundled test files (never downloaded)."""
    path = get_testdata_file(name, download=False)
    assert isinstance(path, str), f"pydicom has no bundled {name}"
    return Path(path)


def write_corpus(directory: Path) -> list[Path]:
    """The bundled instances (copied) and the generated ones, written to `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in BUNDLED:
        target = directory / name
        target.write_bytes(bundled(name).read_bytes())
        paths.append(target)
    sources = {
        "CT": bundled("CT_small.dcm"),
        "MR": bundled("MR_small.dcm"),
    }
    for made in MADE:
        ds = dcmread(sources[made.modality])
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.PatientID = made.patient_id
        ds.PatientName = made.patient_name
        ds.PatientBirthDate = made.birth_date
        ds.PatientSex = made.sex
        ds.StudyInstanceUID = study_uid(made.study)
        ds.StudyDate = made.study_date
        ds.StudyTime = made.study_time
        ds.AccessionNumber = made.accession
        ds.StudyDescription = made.study_description
        ds.StudyID = f"S{made.study}"
        ds.ReferringPhysicianName = "Ref^One" if made.study % 2 else "Ref^Two"
        ds.SeriesInstanceUID = series_uid(made.series)
        ds.SeriesNumber = made.series
        ds.SeriesDescription = made.series_description
        ds.SeriesDate = made.study_date
        ds.Modality = made.modality
        ds.SOPInstanceUID = instance_uid(made)
        ds.InstanceNumber = made.number
        ds.ContentDate = made.study_date
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        target = directory / f"made-{made.series}-{made.number}.dcm"
        ds.save_as(target, enforce_file_format=True)
        paths.append(target)
    return paths


# --------------------------------------------------------------------------------------
# The site: dicomscp and Orthanc holding the same instances, and a move destination.

UNIQUE = {
    "PATIENT": "PatientID",
    "STUDY": "StudyInstanceUID",
    "SERIES": "SeriesInstanceUID",
    "IMAGE": "SOPInstanceUID",
}
STORED = re.compile(r"Received Store Response \(([^)]*)\)")


@dataclass
class Site:
    ours: DicomSCP
    orthanc: peers.Orthanc
    storescp: peers.StoreSCP
    workdir: Path
    corpus: Path
    files: list[Path] = field(repr=False)
    stored: subprocess.CompletedProcess[str] = field(repr=False)  # storescu into dicomscp
    #: SOP Instance UID -> the header of its corpus file
    uids: dict[str, Dataset] = field(repr=False, default_factory=dict)


def storescu(
    peer: peers.Peer, *paths: Path, calling: str = "STORESCU"
) -> subprocess.CompletedProcess[str]:
    """DCMTK storescu of files or folders (+sd +r) over one association. It proposes
    the SOP classes of the files only (-R), with JPEG 2000 besides the uncompressed
    transfer syntaxes (-xw), so that JPEG2000.dcm goes as it is (without -xw, storescu
    3.6.7 tries to decompress it, cannot, and fails)."""
    return peers.run_dcmtk(
        "storescu", "-v", "-aet", calling, "-aec", peer.ae_title, "-xw", "-R", "+sd", "+r",
        peer.host, str(peer.port), *paths, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    workdir = tmp_path_factory.mktemp("dicomscp")
    corpus = workdir / "corpus"
    files = write_corpus(corpus)
    uids: dict[str, Dataset] = {}
    for path in files:
        header = dcmread(path, stop_before_pixels=True)
        uids[str(header.SOPInstanceUID)] = header
    assert len(uids) == len(files)
    with contextlib.ExitStack() as stack:
        storescp = stack.enter_context(peers.start_storescp(workdir / "storescp"))
        ours = stack.enter_context(
            start_dicomscp(
                workdir / "dicomscp",
                "--destination",
                f"STORESCP={storescp.host}:{storescp.port}",
            )
        )
        orthanc = stack.enter_context(
            peers.start_orthanc(workdir / "orthanc", extra_config={"CaseSensitivePN": True})
        )
        stored = storescu(ours, corpus)
        into_orthanc = storescu(orthanc, corpus)
        assert into_orthanc.returncode == 0, into_orthanc.stderr
        assert len(orthanc.instances()) == len(files)
        yield Site(ours, orthanc, storescp, workdir, corpus, files, stored, uids)


def find(
    peer: peers.Peer, workdir: Path, model: str, level: str, keys: Mapping[str, str]
) -> dict[str, Dataset]:
    """findscu's responses, by the value of the level's Unique Key."""
    query = {"QueryRetrieveLevel": level, **keys}
    query.setdefault(UNIQUE[level], "")
    responses = peers.findscu(peer, workdir, query, model=model)
    by_key = {_text(r[UNIQUE[level]]) if UNIQUE[level] in r else "": r for r in responses}
    assert len(by_key) == len(responses), f"two responses for one {UNIQUE[level]}"
    return by_key


def _text(element: Any) -> str:
    """An element's value as comparable text: values joined by a backslash, padding
    stripped, and a PN without its empty trailing components (PS3.5 6.2.1)."""
    value = element.value
    if value is None or value == "":
        return ""
    values = list(value) if isinstance(value, (list, MultiValue)) else [value]
    texts = []
    for v in values:
        text = str(v).strip(" \x00")
        if element.VR == "PN":
            text = "=".join(group.rstrip("^") for group in text.split("=")).rstrip("=")
        texts.append(text)
    return "\\".join(texts)


# --------------------------------------------------------------------------------------
# C-STORE and C-ECHO with DCMTK


def test_storescu_stores_every_instance(site: Site) -> None:
    result = site.stored
    statuses = STORED.findall(result.stdout + result.stderr)
    assert result.returncode == 0, result.stderr
    assert statuses == ["Success"] * len(site.files)
    # every instance is in the archive, with the SOP class it was sent as
    everything = find(site.ours, site.workdir, "-S", "IMAGE", {"SOPClassUID": ""})
    assert {uid: _text(r["SOPClassUID"]) for uid, r in everything.items()} == {
        uid: str(header.SOPClassUID) for uid, header in site.uids.items()
    }
    stored_lines = [
        line
        for line in site.ours.lines
        if re.search(r"C-STORE '[0-9.]+' from 'STORESCU': 0000", line)
    ]
    assert len(stored_lines) == len(site.files)


def test_stored_files_keep_their_transfer_syntax_and_data(site: Site) -> None:
    jpeg2000 = bundled("JPEG2000.dcm")
    original = dcmread(jpeg2000)
    stored = [
        p
        for p in (site.ours.archive / "instances").rglob("*.dcm")
        if p.name.startswith(original.SOPInstanceUID)
    ]
    assert len(stored) == 1
    copy = dcmread(stored[0])
    assert copy.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
    assert copy.PixelData == original.PixelData


def test_echoscu(site: Site) -> None:
    mark = site.ours.mark()
    result = peers.run_dcmtk(
        "echoscu", "-v", "-aet", "ECHOSCU", "-aec", "DICOMSCP", site.ours.host, str(site.ours.port)
    )
    assert "Received Echo Response (Success)" in result.stdout + result.stderr
    site.ours.wait_for_log(r"C-ECHO from 'ECHOSCU': 0000", start=mark)


def test_called_ae_title_not_checked_by_default(site: Site) -> None:
    result = peers.run_dcmtk(
        "echoscu", "-aec", "WHOEVER", site.ours.host, str(site.ours.port), check=False
    )
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------------------
# C-FIND: the same answers as Orthanc's


def S(n: int) -> str:
    return study_uid(n)


def SE(n: int) -> str:
    return series_uid(n)


def I(series: int, number: int) -> str:  # noqa: E743
    return f"{ROOT}.3.{series}.{number}"


PATIENT_KEYS = {
    "PatientName": "",
    "PatientBirthDate": "",
    "PatientSex": "",
    "NumberOfPatientRelatedStudies": "",
    "NumberOfPatientRelatedSeries": "",
    "NumberOfPatientRelatedInstances": "",
}
STUDY_KEYS = {
    "StudyDate": "",
    "StudyTime": "",
    "AccessionNumber": "",
    "StudyID": "",
    "StudyDescription": "",
    "ReferringPhysicianName": "",
    "ModalitiesInStudy": "",
    "NumberOfStudyRelatedSeries": "",
    "NumberOfStudyRelatedInstances": "",
}
STUDY_ROOT_STUDY_KEYS = {**STUDY_KEYS, "PatientName": "", "PatientID": "", "PatientBirthDate": ""}
SERIES_KEYS = {
    "Modality": "",
    "SeriesNumber": "",
    "SeriesDescription": "",
    "SeriesDate": "",
    "NumberOfSeriesRelatedInstances": "",
}
IMAGE_KEYS = {"SOPClassUID": "", "InstanceNumber": "", "ContentDate": "", "Rows": "", "Columns": ""}
ALL_PATIENTS = 13  # nine bundled files of nine patients (one without Patient ID) and PX1-PX4
ALL_STUDIES = 14


@dataclass(frozen=True)
class Query:
    model: str  # findscu's -P (patient root) or -S (study root)
    level: str
    keys: dict[str, str]
    expected: frozenset[str] | int  # the Unique Keys matched, or how many

    @property
    def id(self) -> str:
        keys = ",".join(f"{k}={v}" for k, v in self.keys.items() if v) or "universal"
        return f"{self.model[1]}-{self.level}-{keys}"


def q(model: str, level: str, expected: set[str] | int, **keys: str) -> Query:
    returned = {
        ("-P", "PATIENT"): PATIENT_KEYS,
        ("-P", "STUDY"): STUDY_KEYS,
        ("-S", "STUDY"): STUDY_ROOT_STUDY_KEYS,
    }.get(
        (model, level), SERIES_KEYS if level == "SERIES" else IMAGE_KEYS if level == "IMAGE" else {}
    )
    expect = frozenset(expected) if isinstance(expected, set) else expected
    return Query(model, level, {**returned, **keys}, expect)


QUERIES = [
    # Patient Root, PATIENT level
    q("-P", "PATIENT", ALL_PATIENTS),
    q("-P", "PATIENT", {"PX1"}, PatientName="Doe^John"),
    q("-P", "PATIENT", {"PX1", "PX2"}, PatientName="Doe*"),
    q("-P", "PATIENT", {"PX3"}, PatientName="doe*"),
    q("-P", "PATIENT", {"PX1", "PX2", "PX4"}, PatientName="D?e^J*"),
    q("-P", "PATIENT", {"PX1", "PX4"}, PatientName="*Jo*"),
    q("-P", "PATIENT", ALL_PATIENTS, PatientName="*"),
    q("-P", "PATIENT", {"1CT1", "4MR1", "13US1", "8NM1"}, PatientName="Compressed*"),
    q("-P", "PATIENT", {"PX1", "PX2", "PX3", "PX4"}, PatientID="PX?"),
    q("-P", "PATIENT", {"PX1", "PX2", "642341"}, PatientBirthDate="19600101-19751231"),
    q("-P", "PATIENT", {"PX2", "4MR1", "642341"}, PatientSex="F"),
    # Patient Root, lower levels
    q("-P", "STUDY", {S(1), S(2)}, PatientID="PX1"),
    q("-P", "STUDY", {S(2)}, PatientID="PX1", StudyDate="20210101-"),
    q("-P", "STUDY", {S(1), S(3)}, StudyDate="20200101-20201231"),
    q("-P", "SERIES", {SE(1), SE(2)}, PatientID="PX1", StudyInstanceUID=S(1)),
    q("-P", "SERIES", 5, Modality="CT"),
    q(
        "-P",
        "IMAGE",
        {I(4, 1), I(4, 2)},
        PatientID="PX2",
        StudyInstanceUID=S(3),
        SeriesInstanceUID=SE(4),
    ),
    # Study Root, STUDY level
    q("-S", "STUDY", ALL_STUDIES),
    q("-S", "STUDY", {S(1)}, StudyDate="20200115"),
    q("-S", "STUDY", {S(1), S(3)}, StudyDate="20200101-20201231"),
    q("-S", "STUDY", 2, StudyDate="20210101-"),
    q("-S", "STUDY", 4, StudyTime="080000-110000"),
    q("-S", "STUDY", 4, StudyTime="0800-1100"),
    q("-S", "STUDY", {S(1), S(2), S(3), S(4)}, AccessionNumber="ACC-?00"),
    q("-S", "STUDY", {S(1), S(2), S(3), S(4), S(5)}, AccessionNumber="ACC-*"),
    q("-S", "STUDY", {S(1), S(3), S(5)}, StudyDescription="CHEST*"),
    q("-S", "STUDY", set(), StudyDescription="chest*"),  # not PN: case-sensitive for both
    q("-S", "STUDY", {S(1), S(3)}, StudyInstanceUID=f"{S(1)}\\{S(3)}"),
    q("-S", "STUDY", {S(1), S(2), S(3)}, PatientName="Doe*"),
    q("-S", "STUDY", {S(1), S(2)}, PatientID="PX1"),
    q("-S", "STUDY", 5, ModalitiesInStudy="MR"),
    q("-S", "STUDY", {S(1), S(3), S(5)}, ReferringPhysicianName="Ref^One"),
    q("-S", "STUDY", {S(1), S(2), S(3), S(4), S(5)}, StudyID="S?"),
    # Study Root, SERIES and IMAGE levels
    q("-S", "SERIES", {SE(1), SE(2)}, StudyInstanceUID=S(1)),
    q("-S", "SERIES", 5, Modality="MR"),
    q("-S", "SERIES", {SE(1), SE(4), SE(6)}, SeriesDescription="*AXIAL*"),
    q("-S", "SERIES", {SE(2), SE(6)}, SeriesInstanceUID=f"{SE(2)}\\{SE(6)}"),
    q("-S", "SERIES", {SE(4)}, SeriesNumber="4"),
    q("-S", "SERIES", {SE(1), SE(2), SE(4)}, SeriesDate="20200115-20200116"),
    q("-S", "IMAGE", {I(1, 1), I(1, 2)}, StudyInstanceUID=S(1), SeriesInstanceUID=SE(1)),
    q("-S", "IMAGE", {I(1, 1), I(7, 1)}, SOPInstanceUID=f"{I(1, 1)}\\{I(7, 1)}"),
    q("-S", "IMAGE", 5, SOPClassUID="1.2.840.10008.5.1.4.1.1.4"),
    q("-S", "IMAGE", {I(1, 2), I(4, 2)}, InstanceNumber="2"),
    q("-S", "IMAGE", 18),
]


@pytest.mark.parametrize("query", QUERIES, ids=[query.id for query in QUERIES])
def test_findscu_answers_match_orthanc(site: Site, query: Query) -> None:
    ours = find(site.ours, site.workdir, query.model, query.level, query.keys)
    theirs = find(site.orthanc, site.workdir, query.model, query.level, query.keys)
    assert set(ours) == set(theirs)
    if isinstance(query.expected, int):
        assert len(ours) == query.expected
    else:
        assert set(ours) == query.expected
    # The values of the requested keys, where both return them
    requested = [*query.keys, UNIQUE[query.level]]
    differences = {
        (key, keyword): (_text(ours[key][keyword]), _text(theirs[key][keyword]))
        for key in ours
        for keyword in requested
        if keyword in ours[key] and keyword in theirs[key]
        and _text(ours[key][keyword]) != _text(theirs[key][keyword])
    }  # fmt: skip
    assert differences == {}
    # dicomscp returns every requested key (zero-length when it has no value)
    for response in ours.values():
        assert set(requested) <= {element.keyword for element in response}


def test_open_date_range_leaves_out_empty_dates(site: Site) -> None:
    """The one difference in which entities match: Orthanc puts an entity whose date is
    empty in an open range `-date`; dicomscp does not (see the module docstring)."""
    for model, level, key in (("-S", "STUDY", "StudyDate"), ("-P", "PATIENT", "PatientBirthDate")):
        date = "19700101" if key == "PatientBirthDate" else "20191231"
        ours = find(site.ours, site.workdir, model, level, {key: f"-{date}"})
        theirs = find(site.orthanc, site.workdir, model, level, {key: f"-{date}"})
        everything = find(site.ours, site.workdir, model, level, {key: ""})
        undated = {k for k, r in everything.items() if not _text(r[key])}
        dated_before = {k for k, r in everything.items() if _text(r[key]) and _text(r[key]) <= date}
        assert undated, "the corpus has entities without a date"
        assert set(ours) == dated_before
        assert set(theirs) == dated_before | undated


def test_pn_case_orthanc_default(site: Site, orthanc_factory: Any) -> None:
    """With its default settings, Orthanc matches Patient Name case-insensitively;
    dicomscp (and Orthanc with CaseSensitivePN) does not (see the module docstring)."""
    default = orthanc_factory()
    result = storescu(default, site.corpus)
    assert result.returncode == 0, result.stderr
    for name, ours_expected, insensitive in (
        ("doe*", {"PX3"}, {"PX1", "PX2", "PX3"}),
        ("DOE^JOHN", set(), {"PX1"}),
        ("Doe*", {"PX1", "PX2"}, {"PX1", "PX2", "PX3"}),
    ):
        keys = {"PatientName": name}
        assert set(find(site.ours, site.workdir, "-P", "PATIENT", keys)) == ours_expected
        assert set(find(site.orthanc, site.workdir, "-P", "PATIENT", keys)) == ours_expected
        assert set(find(default, site.workdir, "-P", "PATIENT", keys)) == insensitive


def test_findscu_bad_level_fails(site: Site) -> None:
    """A PATIENT level query in the Study Root model: no match, a failure status."""
    result = peers.run_dcmtk(
        "findscu", "-v", "-S", "-aec", "DICOMSCP", "-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientID=",
        site.ours.host, str(site.ours.port), check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert "Find Response: 1" not in output
    assert re.search(r"Received Final Find Response \((Failed|Error)", output), output


# --------------------------------------------------------------------------------------
# C-MOVE and C-GET with DCMTK


@pytest.fixture
def destination(site: Site) -> peers.StoreSCP:
    """The move destination (storescp, AE STORESCP), emptied."""
    for path in site.storescp.received_files():
        path.unlink()
    return site.storescp


def received_uids(directory: Path) -> dict[str, Dataset]:
    found: dict[str, Dataset] = {}
    for path in sorted(p for p in directory.iterdir() if p.is_file()):
        header = dcmread(path, stop_before_pixels=True)
        found[str(header.SOPInstanceUID)] = header
    return found


def movescu(
    site: Site, model: str, keys: Mapping[str, str], destination: str = "STORESCP"
) -> subprocess.CompletedProcess[str]:
    args = [f"{k}={v}" for k, v in keys.items()]
    return peers.run_dcmtk(
        "movescu", "-v", model, "-aet", "MOVESCU", "-aec", "DICOMSCP", "-aem", destination,
        *[a for key in args for a in ("-k", key)], site.ours.host, str(site.ours.port), check=False,
    )  # fmt: skip


def uids_of(site: Site, **attributes: str) -> set[str]:
    """The SOP Instance UIDs of the corpus whose headers have these values."""
    return {
        uid
        for uid, header in site.uids.items()
        if all(str(header.get(k, "")) == v for k, v in attributes.items())
    }


MOVES = [
    ("-S", {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": S(1)}, {"StudyInstanceUID": S(1)}),
    ("-P", {"QueryRetrieveLevel": "PATIENT", "PatientID": "PX2"}, {"PatientID": "PX2"}),
    (
        "-S",
        {"QueryRetrieveLevel": "SERIES", "StudyInstanceUID": S(5), "SeriesInstanceUID": SE(7)},
        {"SeriesInstanceUID": SE(7)},
    ),
    # JPEG2000.dcm: sent as it was stored, in JPEG 2000
    ("-P", {"QueryRetrieveLevel": "PATIENT", "PatientID": "8NM1"}, {"PatientID": "8NM1"}),
]


@pytest.mark.parametrize(
    ("model", "keys", "matching"),
    MOVES,
    ids=[f"{m[1]}-{'-'.join(k.values())}" for m, k, _ in MOVES],
)
def test_movescu_sends_exactly_the_matches(
    site: Site,
    destination: peers.StoreSCP,
    model: str,
    keys: dict[str, str],
    matching: dict[str, str],
) -> None:
    expected = uids_of(site, **matching)
    assert expected
    mark = site.ours.mark()
    result = movescu(site, model, keys)
    assert result.returncode == 0, result.stderr
    assert "Received Final Move Response (Success)" in result.stdout + result.stderr
    received = received_uids(destination.output_dir)
    assert set(received) == expected
    for uid, header in received.items():  # as stored: no transcoding
        assert header.file_meta.TransferSyntaxUID == site.uids[uid].file_meta.TransferSyntaxUID
    site.ours.wait_for_log(
        rf"C-MOVE from 'MOVESCU': {len(expected)} completed, 0 failed, 0 warning", start=mark
    )


def test_movescu_image_level_uid_list(site: Site, destination: peers.StoreSCP) -> None:
    keys = {
        "QueryRetrieveLevel": "IMAGE",
        "StudyInstanceUID": S(1),
        "SeriesInstanceUID": SE(1),
        "SOPInstanceUID": f"{I(1, 1)}\\{I(1, 2)}",
    }
    result = movescu(site, "-S", keys)
    assert result.returncode == 0, result.stderr
    assert set(received_uids(destination.output_dir)) == {I(1, 1), I(1, 2)}


def test_movescu_unknown_destination_a801(site: Site, destination: peers.StoreSCP) -> None:
    mark = site.ours.mark()
    result = movescu(
        site, "-S", {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": S(1)}, "NOWHERE"
    )
    output = result.stdout + result.stderr
    # DCMTK's name for A801H
    assert "Received Final Move Response (Refused: MoveDestinationUnknown)" in output, output
    assert received_uids(destination.output_dir) == {}
    site.ours.wait_for_log(r"C-MOVE from 'MOVESCU': A801", start=mark)


def getscu(
    site: Site, out: Path, model: str, keys: Mapping[str, str], *options: str
) -> subprocess.CompletedProcess[str]:
    out.mkdir(parents=True, exist_ok=True)
    args = [f"{k}={v}" for k, v in keys.items()]
    return peers.run_dcmtk(
        "getscu", "-v", model, "-aet", "GETSCU", "-aec", "DICOMSCP", "-od", out, *options,
        *[a for key in args for a in ("-k", key)], site.ours.host, str(site.ours.port), check=False,
    )  # fmt: skip


GETS = [
    ("-S", {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": S(1)}, {"StudyInstanceUID": S(1)}),
    ("-P", {"QueryRetrieveLevel": "PATIENT", "PatientID": "PX4"}, {"PatientID": "PX4"}),
    (
        "-S",
        {"QueryRetrieveLevel": "SERIES", "StudyInstanceUID": S(3), "SeriesInstanceUID": SE(4)},
        {"SeriesInstanceUID": SE(4)},
    ),
    (
        "-S",
        {
            "QueryRetrieveLevel": "IMAGE",
            "StudyInstanceUID": S(2),
            "SeriesInstanceUID": SE(3),
            "SOPInstanceUID": I(3, 1),
        },
        {"SOPInstanceUID": I(3, 1)},
    ),
]


@pytest.mark.parametrize(
    ("model", "keys", "matching"),
    GETS,
    ids=[f"{m[1]}-{k['QueryRetrieveLevel']}" for m, k, _ in GETS],
)
def test_getscu_writes_exactly_the_matches(
    site: Site, tmp_path: Path, model: str, keys: dict[str, str], matching: dict[str, str]
) -> None:
    expected = uids_of(site, **matching)
    assert expected
    mark = site.ours.mark()
    result = getscu(site, tmp_path / "got", model, keys)
    assert result.returncode == 0, result.stderr
    received = received_uids(tmp_path / "got")
    assert set(received) == expected
    for uid, header in received.items():
        assert header.PatientID == site.uids[uid].PatientID
    site.ours.wait_for_log(
        rf"C-GET from 'GETSCU': {len(expected)} completed, 0 failed, 0 warning", start=mark
    )


# --------------------------------------------------------------------------------------
# pynetdicom's SCUs


def test_pynetdicom_find(site: Site, pynetdicom_ae: Any) -> None:
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as FIND  # type: ignore[attr-defined]

    pynetdicom_ae.add_requested_context(FIND)
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.PatientName = "Doe*"
    query.StudyInstanceUID = ""
    query.AccessionNumber = ""
    assoc = pynetdicom_ae.associate(site.ours.host, site.ours.port, ae_title="DICOMSCP")
    assert assoc.is_established
    try:
        answers = list(assoc.send_c_find(query, FIND))
    finally:
        assoc.release()
    statuses = [status.Status for status, _ in answers]
    assert statuses == [0xFF00] * 3 + [0x0000]
    found = {
        str(identifier.StudyInstanceUID): str(identifier.AccessionNumber)
        for _, identifier in answers[:-1]
    }
    assert found == {S(1): "ACC-100", S(2): "ACC-200", S(3): "ACC-300"}


def test_pynetdicom_move(site: Site, destination: peers.StoreSCP, pynetdicom_ae: Any) -> None:
    from pynetdicom.sop_class import PatientRootQueryRetrieveInformationModelMove as MOVE  # type: ignore[attr-defined]

    pynetdicom_ae.add_requested_context(MOVE)
    query = Dataset()
    query.QueryRetrieveLevel = "PATIENT"
    query.PatientID = "PX1"
    assoc = pynetdicom_ae.associate(site.ours.host, site.ours.port, ae_title="DICOMSCP")
    assert assoc.is_established
    try:
        answers = list(assoc.send_c_move(query, "STORESCP", MOVE))
        unknown = list(assoc.send_c_move(query, "NOWHERE", MOVE))
    finally:
        assoc.release()
    final = answers[-1][0]
    expected = uids_of(site, PatientID="PX1")
    assert (
        final.Status,
        final.NumberOfCompletedSuboperations,
        final.NumberOfFailedSuboperations,
    ) == (0, len(expected), 0)
    assert set(received_uids(destination.output_dir)) == expected
    assert [status.Status for status, _ in unknown] == [0xA801]


def test_pynetdicom_get(site: Site, pynetdicom_ae: Any) -> None:
    from pynetdicom import build_role, evt
    from pynetdicom.sop_class import CTImageStorage, MRImageStorage  # type: ignore[attr-defined]
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet as GET  # type: ignore[attr-defined]

    pynetdicom_ae.add_requested_context(GET)
    for storage in (CTImageStorage, MRImageStorage):
        pynetdicom_ae.add_requested_context(storage)
    received: list[Dataset] = []

    def on_store(event: Any) -> int:
        received.append(event.dataset)
        return 0x0000

    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = S(1)
    assoc = pynetdicom_ae.associate(
        site.ours.host, site.ours.port, ae_title="DICOMSCP",
        ext_neg=[build_role(CTImageStorage, scp_role=True), build_role(MRImageStorage, scp_role=True)],
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )  # fmt: skip
    assert assoc.is_established
    try:
        answers = list(assoc.send_c_get(query, GET))
    finally:
        assoc.release()
    final = answers[-1][0]
    expected = uids_of(site, StudyInstanceUID=S(1))
    assert (final.Status, final.NumberOfCompletedSuboperations) == (0, len(expected))
    assert {str(ds.SOPInstanceUID) for ds in received} == expected
    assert all(ds.PixelData for ds in received)


def test_pynetdicom_store(dicomscp_factory: Any, pynetdicom_ae: Any, ct_small: Path) -> None:
    from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]
    from pynetdicom.sop_class import PatientRootQueryRetrieveInformationModelFind as FIND  # type: ignore[attr-defined]

    server = dicomscp_factory()
    pynetdicom_ae.add_requested_context(CTImageStorage)
    pynetdicom_ae.add_requested_context(FIND)
    dataset = dcmread(ct_small)
    assoc = pynetdicom_ae.associate(server.host, server.port, ae_title="DICOMSCP")
    assert assoc.is_established
    try:
        status = assoc.send_c_store(dataset)
        query = Dataset()
        query.QueryRetrieveLevel = "IMAGE"
        query.PatientID = dataset.PatientID
        query.StudyInstanceUID = dataset.StudyInstanceUID
        query.SeriesInstanceUID = dataset.SeriesInstanceUID
        query.SOPInstanceUID = ""
        found = [identifier for _, identifier in assoc.send_c_find(query, FIND) if identifier]
    finally:
        assoc.release()
    assert status.Status == 0x0000
    assert [str(ds.SOPInstanceUID) for ds in found] == [dataset.SOPInstanceUID]
    server.wait_for_log(rf"C-STORE '{re.escape(dataset.SOPInstanceUID)}' from 'PYNETDICOM': 0000")


# --------------------------------------------------------------------------------------
# Association acceptance: the limit, the allow-list, the called AE title


def test_association_limit(dicomscp_factory: Any, pynetdicom_ae: Any) -> None:
    server = dicomscp_factory("--max-associations", "1")
    first = associate(pynetdicom_ae, server)
    assert first.assoc.is_established
    try:
        second = associate(pynetdicom_ae, server)
        # rejected-transient, service-provider (presentation), local-limit-exceeded
        assert second.rejected
        assert (second.result, second.source, second.reason) == (2, 3, 2), second
        assert first.assoc.send_c_echo().Status == 0x0000  # the first one still works
    finally:
        first.assoc.release()
    # once the first is released, a new one is accepted (the server frees its slot
    # just after the release: poll, with a deadline)
    accepted: list[Outcome] = []

    def one_more() -> bool:
        outcome = associate(pynetdicom_ae, server)
        if outcome.assoc.is_established:
            outcome.assoc.release()
            accepted.append(outcome)
        return bool(accepted)

    peers.wait_until(one_more, 10, "an association after the first was released")


def test_rejection_over_the_limit_is_logged(dicomscp_factory: Any, pynetdicom_ae: Any) -> None:
    server = dicomscp_factory("--max-associations", "1")
    first = associate(pynetdicom_ae, server)
    assert first.assoc.is_established
    try:
        assert associate(pynetdicom_ae, server, calling="SECOND").rejected
        server.wait_for_log(r"'SECOND *'.*rejected.*local-limit-exceeded", timeout_s=5)
    finally:
        first.assoc.release()


def test_allow_list(dicomscp_factory: Any, pynetdicom_ae: Any) -> None:
    server = dicomscp_factory("--allow", "GOODSCU", "--allow", "OTHERSCU")
    for calling in ("GOODSCU", "OTHERSCU"):
        outcome = associate(pynetdicom_ae, server, calling=calling)
        assert outcome.assoc.is_established, calling
        outcome.assoc.release()
    refused = associate(pynetdicom_ae, server, calling="BADSCU")
    # rejected-permanent, service-user, calling-AE-title-not-recognized
    assert (refused.result, refused.source, refused.reason) == (1, 1, 3), refused
    # DCMTK sees the same
    result = peers.run_dcmtk(
        "echoscu", "-aet", "BADSCU", server.host, str(server.port), check=False
    )
    assert result.returncode != 0
    assert "Calling AE Title Not Recognized" in result.stdout + result.stderr
    # (the rejection is logged by dul.transport with the AE titles as received, padded)
    server.wait_for_log(r"'BADSCU *'.*rejected.*calling-AE-title-not-recognized", timeout_s=5)


def test_check_called_ae(dicomscp_factory: Any, pynetdicom_ae: Any) -> None:
    server = dicomscp_factory("--check-called-ae")
    refused = associate(pynetdicom_ae, server, called="SOMEONE")
    # rejected-permanent, service-user, called-AE-title-not-recognized
    assert (refused.result, refused.source, refused.reason) == (1, 1, 7), refused
    accepted = associate(pynetdicom_ae, server, called="DICOMSCP")
    assert accepted.assoc.is_established
    accepted.assoc.release()
    result = peers.run_dcmtk(
        "echoscu", "-aec", "ANY-SCP", server.host, str(server.port), check=False
    )
    assert result.returncode != 0
    assert "Called AE Title Not Recognized" in result.stdout + result.stderr


# --------------------------------------------------------------------------------------
# Stopping, restarting, logging


def _large_instance(path: Path, megabytes: int) -> Dataset:
    ds = dcmread(bundled("CT_small.dcm"))
    frames = max(1, megabytes // 32)
    ds.Rows = ds.Columns = 4096
    ds.NumberOfFrames = frames
    ds.PixelData = hashlib.sha256(b"dicomscp").digest() * (4096 * 4096 * 2 * frames // 32)
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(path, enforce_file_format=True)
    return ds


def _part_files(archive: Path) -> list[Path]:
    return list((archive / "instances").glob("*/.incoming-*.part"))


def _check_after_restart(
    factory: Any, archive: Path, original: Dataset, acknowledged: bool
) -> None:
    """Never an acknowledged instance lost: start on the archive again and look."""
    assert not _part_files(archive)
    restarted = factory(archive=archive, name="restarted")
    stored = list((archive / "instances").rglob(f"{original.SOPInstanceUID}.dcm"))
    if not acknowledged:
        return
    assert restarted.instance_count() == 1
    assert len(stored) == 1
    copy = dcmread(stored[0])
    assert copy.SOPInstanceUID == original.SOPInstanceUID
    assert hashlib.sha256(copy.PixelData).digest() == hashlib.sha256(original.PixelData).digest()


def test_sigterm_during_a_large_storescu_finishes_it(dicomscp_factory: Any, tmp_path: Path) -> None:
    """SIGTERM while storescu sends 128 MB: the server stops accepting, lets the store
    finish, answers it and exits 0; the instance is in the archive after a restart."""
    big = tmp_path / "big.dcm"
    original = _large_instance(big, 128)
    server = dicomscp_factory(name="first")
    sender = subprocess.Popen(
        [peers.dcmtk("storescu"), "-aec", "DICOMSCP", server.host, str(server.port), str(big)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        peers.wait_until(
            lambda: any(p.stat().st_size > 1_000_000 for p in _part_files(server.archive)),
            30, "the data set arriving", cast(Any, sender),
        )  # fmt: skip
        mark = server.mark()
        server.send_signal(signal.SIGTERM)
        server.wait_for_log("stopping", start=mark)
        output, _ = sender.communicate(timeout=60)
    finally:
        if sender.poll() is None:
            sender.kill()
    assert server.stop() == 0
    log = server.log_lines_since(mark)
    stored_at = [n for n, line in enumerate(log) if f"C-STORE '{original.SOPInstanceUID}'" in line]
    # the store was in flight when the signal came: answered after "stopping"
    assert stored_at and stored_at[0] > 0, "\n".join(log)
    assert log[stored_at[0]].endswith(": 0000")
    assert sender.returncode == 0, output
    _check_after_restart(dicomscp_factory, server.archive, original, acknowledged=True)


def test_sigterm_while_a_store_is_paused_waits_for_it(
    dicomscp_factory: Any, pynetdicom_ae: Any, tmp_path: Path
) -> None:
    """The same, made deterministic: pynetdicom stops sending (its P-DATA sent hook
    blocks) after 8 PDUs (of up to 1 MiB, our maximum) of a 32 MB data set; the server
    is signalled, keeps the association while it stops, and the store completes when
    the sender goes on."""
    import threading

    from pynetdicom import evt
    from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]

    original = _large_instance(tmp_path / "big.dcm", 32)
    server = dicomscp_factory(name="first")
    paused, resume = threading.Event(), threading.Event()
    sent = [0]

    def on_sent(event: Any) -> None:
        if type(event.pdu).__name__ == "P_DATA_TF":
            sent[0] += 1
            if sent[0] == 8:
                paused.set()
                resume.wait(60)

    pynetdicom_ae.add_requested_context(CTImageStorage)
    assoc = pynetdicom_ae.associate(
        server.host, server.port, ae_title="DICOMSCP", evt_handlers=[(evt.EVT_PDU_SENT, on_sent)]
    )
    assert assoc.is_established
    answer: list[Dataset] = []
    storing = threading.Thread(target=lambda: answer.append(assoc.send_c_store(original)))
    storing.start()
    try:
        assert paused.wait(30), "pynetdicom did not send 8 PDUs"
        parts = _part_files(server.archive)
        assert parts and parts[0].stat().st_size < len(original.PixelData)
        server.send_signal(signal.SIGTERM)
        server.wait_for_log("stopping")
        assert server.popen.poll() is None
    finally:
        resume.set()
        storing.join(60)
    assert answer and answer[0].Status == 0x0000
    assoc.release()
    assert server.stop() == 0
    _check_after_restart(dicomscp_factory, server.archive, original, acknowledged=True)


def test_restart_keeps_the_archive(dicomscp_factory: Any, tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus")[:4]
    first = dicomscp_factory(name="first")
    assert first.instance_count() == 0
    result = storescu(first, *corpus)
    assert result.returncode == 0, result.stderr
    before = find(first, tmp_path, "-S", "IMAGE", {"SOPClassUID": ""})
    assert first.stop() == 0
    second = dicomscp_factory(archive=first.archive, name="second")
    assert second.instance_count() == len(corpus)
    assert f"archive {first.archive} ({len(corpus)} instances)" in second.startup_line
    after = find(second, tmp_path, "-S", "IMAGE", {"SOPClassUID": ""})
    assert {k: _text(v["SOPClassUID"]) for k, v in after.items()} == {
        k: _text(v["SOPClassUID"]) for k, v in before.items()
    }
    assert len(after) == len(corpus)


def test_one_log_line_per_association_and_operation(
    dicomscp_factory: Any, storescp: peers.StoreSCP, tmp_path: Path
) -> None:
    server = dicomscp_factory(
        "--destination", f"STORESCP={storescp.host}:{storescp.port}", "--allow", "LOGSCU"
    )
    where = (server.host, str(server.port))
    corpus = write_corpus(tmp_path / "corpus")
    made = [p for p in corpus if p.name.startswith("made-1-")]  # two instances of series 1
    peers.run_dcmtk("echoscu", "-aet", "LOGSCU", "-aec", "DICOMSCP", *where)
    result = storescu(server, *made, calling="LOGSCU")
    assert result.returncode == 0, result.stderr
    peers.findscu(
        server,
        tmp_path,
        {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": ""},
        "-S",
        calling_ae_title="LOGSCU",
    )
    peers.run_dcmtk(
        "movescu", "-S", "-aet", "LOGSCU", "-aec", "DICOMSCP", "-aem", "STORESCP",
        "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={S(1)}", *where,
    )  # fmt: skip
    (tmp_path / "got").mkdir()
    peers.run_dcmtk(
        "getscu", "-S", "-aet", "LOGSCU", "-aec", "DICOMSCP", "-od", tmp_path / "got",
        "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={S(1)}", *where,
    )  # fmt: skip
    peers.run_dcmtk("echoscu", "-aet", "INTRUDER", *where, check=False)  # refused
    assert server.stop() == 0
    lines = server.lines
    opened = [
        line
        for line in lines
        if re.search(r"association from \S+ \('LOGSCU' -> 'DICOMSCP'\)$", line)
    ]
    ended = [line for line in lines if re.search(r"association from \S+ released$", line)]
    refused = [line for line in lines if re.search(r"'INTRUDER *'", line)]
    assert (len(opened), len(ended)) == (5, 5)  # echo, store, find, move, get
    assert len(refused) == 1 and "rejected" in refused[0]
    operations = [
        line for line in lines if re.search(r"\b(C-ECHO|C-STORE|C-FIND|C-MOVE|C-GET)\b", line)
    ]
    assert len(operations) == 6, "\n".join(operations)
    assert sum("C-ECHO from 'LOGSCU': 0000" in line for line in operations) == 1
    assert sum("from 'LOGSCU': 0000" in line and "C-STORE" in line for line in operations) == 2
    assert sum("C-FIND from 'LOGSCU': 1 matches" in line for line in operations) == 1
    assert sum("C-MOVE from 'LOGSCU': 2 completed, 0 failed" in line for line in operations) == 1
    assert sum("C-GET from 'LOGSCU': 2 completed, 0 failed" in line for line in operations) == 1
    assert lines[-1].endswith("stopped")


def test_malformed_keys_are_refused_with_a_status(site: Site, destination: peers.StoreSCP) -> None:
    """A key value that is no DA value, or a C-MOVE without the level's Unique Key: a
    failure status that says why (A900), not a crash of the handler."""
    mark = site.ours.mark()
    result = peers.run_dcmtk(
        "findscu", "-v", "-S", "-aec", "DICOMSCP", "-k", "QueryRetrieveLevel=STUDY",
        "-k", "StudyInstanceUID=", "-k", "StudyDate=2020-2021-2022",
        site.ours.host, str(site.ours.port), check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert "Find Response: 1" not in output
    assert "Received Final Find Response (Error: DataSetDoesNotMatchSOPClass)"  # A900 in output
    site.ours.wait_for_log(r"C-FIND from 'FINDSCU': A900 '2020-2021-2022' is not a DA", start=mark)
    result = movescu(site, "-S", {"QueryRetrieveLevel": "STUDY", "PatientID": "PX1"})
    output = result.stdout + result.stderr
    assert "Received Final Move Response (Error: DataSetDoesNotMatchSOPClass)" in output
    assert received_uids(destination.output_dir) == {}
    site.ours.wait_for_log(r"C-MOVE from 'MOVESCU': A900 .*StudyInstanceUID", start=mark)
    assert not any("Traceback" in line for line in site.ours.log_lines_since(mark))
