"""C-FIND and retrieve queries on the archive: every matching rule of PS3.4 C.2.2.2 at
every level of the Patient Root and Study Root models (C.6.1, C.6.2), the response
identifiers, and the instances named for C-MOVE/C-GET."""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.data import get_charset_files
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dimse.archive.archive import Archive
from dimse.archive.conditions import QueryError
from dimse.datasets import decode_dataset, encode_dataset
from dimse.models import Root
from tests.postgres import INDEXES
from tests.test_archive_data import (
    BASIC_TEXT_SR,
    CT_IMAGE_STORAGE,
    IMAGES,
    NAME,
    UID,
    corpus,
    identifier,
    store,
    store_file,
    values,
)


@pytest.fixture(scope="module", params=INDEXES)
def archive(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Archive]:
    """The corpus in an archive, once with each index back end: the same queries must
    give the same answers on SQLite and PostgreSQL."""
    with contextlib.ExitStack() as stack:
        index = None
        if request.param == "postgresql":
            index = stack.enter_context(request.getfixturevalue("pg_cluster").database())
        root = tmp_path_factory.mktemp("find") / "archive"
        archive = stack.enter_context(Archive(root, fsync=False, index=index, node="find"))
        for n, ds in enumerate(corpus()):
            syntax = ImplicitVRLittleEndian if n % 2 else ExplicitVRLittleEndian
            assert store(archive, ds, transfer_syntax=syntax) == 0x0000
        yield archive


UNIQUE = {
    "PATIENT": "PatientID",
    "STUDY": "StudyInstanceUID",
    "SERIES": "SeriesInstanceUID",
    "IMAGE": "SOPInstanceUID",
}


def found(archive: Archive, root: Root, level: str, **keys: Any) -> set[str]:
    """The symbolic names (or Patient IDs) of the entities matched."""
    responses = list(archive.find(identifier(level, **keys), root, level))
    matched = values(responses, UNIQUE[level])
    return {NAME.get(v, v) for v in matched}


def ids(*names: str) -> str | list[str]:
    uids = [UID[n] for n in names]
    return uids[0] if len(uids) == 1 else uids


def sequence_key(**item: str) -> list[Dataset]:
    ds = Dataset()
    for keyword, value in item.items():
        setattr(ds, keyword, value)
    return [ds]


BOTH = (Root.PATIENT, Root.STUDY)

# (roots, level, keys, expected): every matching rule at every level
CASES: list[tuple[tuple[Root, ...], str, dict[str, Any], set[str]]] = [
    # --- PATIENT level (Patient Root only)
    ((Root.PATIENT,), "PATIENT", {}, {"P1", "P2", "P3", "P4"}),
    ((Root.PATIENT,), "PATIENT", {"PatientID": "P2"}, {"P2"}),
    ((Root.PATIENT,), "PATIENT", {"PatientID": ["P1", "P3"]}, {"P1", "P3"}),
    ((Root.PATIENT,), "PATIENT", {"PatientName": "Doe^John"}, {"P1"}),
    ((Root.PATIENT,), "PATIENT", {"PatientName": "DOE^JOHN"}, set()),  # PN case-sensitive
    ((Root.PATIENT,), "PATIENT", {"PatientName": "Doe*"}, {"P1"}),
    ((Root.PATIENT,), "PATIENT", {"PatientName": "?oe^*"}, {"P1", "P2"}),
    ((Root.PATIENT,), "PATIENT", {"PatientName": "*"}, {"P1", "P2", "P3", "P4"}),
    ((Root.PATIENT,), "PATIENT", {"PatientName": "Yamada*"}, {"P4"}),
    ((Root.PATIENT,), "PATIENT", {"PatientName": "山田^太郎"}, {"P4"}),
    ((Root.PATIENT,), "PATIENT", {"PatientBirthDate": "19600101-19701231"}, {"P1", "P3"}),
    ((Root.PATIENT,), "PATIENT", {"PatientBirthDate": "-19650101"}, {"P1"}),
    ((Root.PATIENT,), "PATIENT", {"PatientBirthDate": "19800101-"}, {"P2", "P4"}),
    ((Root.PATIENT,), "PATIENT", {"PatientSex": "F"}, {"P2"}),
    ((Root.PATIENT,), "PATIENT", {"OtherPatientNames": "Roe*"}, {"P2"}),  # not indexed: from a file
    ((Root.PATIENT,), "PATIENT", {"NumberOfPatientRelatedStudies": "2"}, {"P1"}),
    ((Root.PATIENT,), "PATIENT", {"NumberOfPatientRelatedInstances": "6"}, {"P1"}),
    # --- STUDY level
    (BOTH, "STUDY", {}, {"SA", "SB", "SC", "SD", "SE"}),
    (BOTH, "STUDY", {"StudyInstanceUID": ids("SA", "SC")}, {"SA", "SC"}),
    (BOTH, "STUDY", {"StudyInstanceUID": ids("SB")}, {"SB"}),
    (BOTH, "STUDY", {"StudyDate": "20200115"}, {"SA"}),
    (BOTH, "STUDY", {"StudyDate": "20200101-20201231"}, {"SA", "SB"}),
    (BOTH, "STUDY", {"StudyDate": "-20200101"}, {"SD"}),
    (BOTH, "STUDY", {"StudyDate": "20210101-"}, {"SC", "SE"}),
    (BOTH, "STUDY", {"StudyTime": "1000-1100"}, {"SA"}),
    (BOTH, "STUDY", {"StudyTime": "2300-"}, {"SB"}),
    (BOTH, "STUDY", {"StudyTime": "-0800"}, {"SC"}),
    (BOTH, "STUDY", {"StudyTime": "0900"}, {"SE"}),
    (BOTH, "STUDY", {"AccessionNumber": "ACC-?00"}, {"SA", "SB", "SC"}),
    (BOTH, "STUDY", {"AccessionNumber": "ACC-1*"}, {"SA"}),
    (BOTH, "STUDY", {"AccessionNumber": "acc-100"}, set()),
    (BOTH, "STUDY", {"StudyDescription": "CHEST*"}, {"SA", "SC"}),
    (BOTH, "STUDY", {"ReferringPhysicianName": "Ref^One"}, {"SA", "SC"}),
    (BOTH, "STUDY", {"ModalitiesInStudy": "MR"}, {"SB", "SE"}),
    (BOTH, "STUDY", {"ModalitiesInStudy": "SR"}, {"SA"}),
    (BOTH, "STUDY", {"ModalitiesInStudy": ["CR", "MR"]}, {"SB", "SC", "SE"}),
    (BOTH, "STUDY", {"NumberOfStudyRelatedInstances": "4"}, {"SA"}),
    (BOTH, "STUDY", {"NumberOfStudyRelatedSeries": "2"}, {"SA"}),
    (BOTH, "STUDY", {"ProcedureCodeSequence": sequence_key(CodeValue="CT-CHEST")}, {"SA"}),
    (
        BOTH,
        "STUDY",
        {"ProcedureCodeSequence": sequence_key(CodeValue="XR-1", CodingSchemeDesignator="LOCAL")},
        {"SA"},
    ),
    (
        BOTH,
        "STUDY",
        {"ProcedureCodeSequence": sequence_key(CodeValue="CT-CHEST", CodeMeaning="extra")},
        set(),
    ),
    (BOTH, "STUDY", {"ProcedureCodeSequence": []}, {"SA", "SB", "SC", "SD", "SE"}),
    (BOTH, "STUDY", {"PatientID": "P1"}, {"SA", "SB"}),  # a unique key above (Patient Root)
    (BOTH, "STUDY", {"PatientName": "Doe*"}, {"SA", "SB"}),  # a study-level key in Study Root
    # --- SERIES level
    (BOTH, "SERIES", {"StudyInstanceUID": ids("SA")}, {"A1", "A2"}),
    (BOTH, "SERIES", {"StudyInstanceUID": ids("SA"), "Modality": "CT"}, {"A1"}),
    (BOTH, "SERIES", {"Modality": "CT"}, {"A1", "D1"}),  # no Unique Key above: every study
    (BOTH, "SERIES", {"Modality": ["CT", "MR"]}, {"A1", "B1", "D1", "E1"}),
    (BOTH, "SERIES", {"Modality": "?R"}, {"A2", "B1", "C1", "E1"}),
    (BOTH, "SERIES", {"SeriesNumber": "2"}, {"A2"}),
    (BOTH, "SERIES", {"SeriesNumber": "003"}, {"D1"}),
    (BOTH, "SERIES", {"SeriesInstanceUID": ids("A2", "C1")}, {"A2", "C1"}),
    (BOTH, "SERIES", {"SeriesDescription": "*AXIAL"}, {"A1", "B1"}),
    (BOTH, "SERIES", {"SeriesDate": "20200115-20200116"}, {"A1", "A2"}),
    (BOTH, "SERIES", {"NumberOfSeriesRelatedInstances": "3"}, {"A1"}),
    (BOTH, "SERIES", {"StudyInstanceUID": ids("SB", "SE"), "Modality": "MR"}, {"B1", "E1"}),
    (BOTH, "SERIES", {"PatientID": "P1", "Modality": "MR"}, {"B1"}),
    # --- IMAGE level
    (BOTH, "IMAGE", {"SeriesInstanceUID": ids("A1")}, {"A1-1", "A1-2", "A1-3"}),
    (BOTH, "IMAGE", {"SeriesInstanceUID": ids("A1"), "InstanceNumber": "2"}, {"A1-2"}),
    (
        BOTH,
        "IMAGE",
        {"StudyInstanceUID": ids("SB"), "SeriesInstanceUID": ids("B1")},
        {"B1-1", "B1-2"},
    ),
    (
        BOTH,
        "IMAGE",
        {"StudyInstanceUID": ids("SA"), "SeriesInstanceUID": ids("B1")},
        set(),
    ),  # not its study
    (BOTH, "IMAGE", {"SOPInstanceUID": ids("A1-3", "E1-1", "C1-1")}, {"A1-3", "E1-1", "C1-1"}),
    (BOTH, "IMAGE", {"SOPClassUID": BASIC_TEXT_SR}, {"A2-1"}),
    (BOTH, "IMAGE", {"ContentDate": "20200116-20201231"}, {"A1-3", "A2-1", "B1-1"}),
    (BOTH, "IMAGE", {"ImageComments": "first*"}, {"A1-1"}),  # not indexed: from the file
    (BOTH, "IMAGE", {"ImageType": "PRIMARY"}, {"A1-1"}),  # one of several stored values
    (
        BOTH,
        "IMAGE",
        {"SeriesInstanceUID": ids("A1"), "ImageComments": ""},
        {"A1-1", "A1-2", "A1-3"},
    ),
]


def case_id(case: tuple[Any, ...]) -> str:
    _roots, level, keys, _ = case
    return (
        f"{level}-"
        + ",".join(f"{k}={v if not isinstance(v, list) else len(v)}" for k, v in keys.items())[:60]
    )


@pytest.mark.parametrize(
    ("root", "level", "keys", "expected"),
    [
        pytest.param(
            root,
            level,
            keys,
            expected,
            id=f"{root.value}-{case_id((roots, level, keys, expected))}",
        )
        for roots, level, keys, expected in CASES
        for root in roots
    ],
)
def test_matching_at_each_level_of_each_root(
    archive: Archive, root: Root, level: str, keys: dict[str, Any], expected: set[str]
) -> None:
    assert found(archive, root, level, **keys) == expected


@pytest.mark.parametrize(
    ("root", "level", "keys"),
    [
        (Root.STUDY, "PATIENT", {}),
        (Root.PATIENT, "FRAME", {}),
        (Root.WORKLIST, "STUDY", {}),
        (Root.STUDY, "STUDY", {"StudyDate": "2020*"}),
        (Root.STUDY, "STUDY", {"StudyDate": "20200132x"}),
        (Root.STUDY, "STUDY", {"ProcedureCodeSequence": sequence_key(CodeValue="A") * 2}),
    ],
)
def test_an_identifier_that_cannot_be_answered_is_refused_at_once(
    archive: Archive, root: Root, level: str, keys: dict[str, Any]
) -> None:
    with pytest.raises(QueryError) as caught:
        archive.find(identifier(level, **keys), root, level)  # raised before any response
    assert caught.value.status == 0xA900


# --- the response identifiers


def only(archive: Archive, root: Root, level: str, query: Dataset) -> Dataset:
    (response,) = archive.find(query, root, level)
    return response


def test_a_response_holds_exactly_the_requested_keys(archive: Archive) -> None:
    query = identifier(
        "SERIES",
        StudyInstanceUID=UID["SA"],
        Modality="CT",
        SeriesDescription="",
        NumberOfSeriesRelatedInstances="",
    )
    response = only(archive, Root.STUDY, "SERIES", query)
    assert [e.keyword for e in response] == [
        "QueryRetrieveLevel",
        "Modality",
        "SeriesDescription",
        "StudyInstanceUID",
        "SeriesInstanceUID",  # the level's Unique Key, though not requested
        "NumberOfSeriesRelatedInstances",
    ]
    assert (response.QueryRetrieveLevel, response.Modality, response.SeriesDescription) == (
        "SERIES",
        "CT",
        "AXIAL",
    )
    assert (
        response.SeriesInstanceUID == UID["A1"]
        and int(response.NumberOfSeriesRelatedInstances) == 3
    )


def test_values_of_every_level_come_back_at_the_image_level(archive: Archive) -> None:
    query = identifier(
        "IMAGE",
        SOPInstanceUID=UID["A1-1"],
        PatientName="",
        PatientBirthDate="",
        StudyDate="",
        AccessionNumber="",
        Modality="",
        SeriesNumber="",
        InstanceNumber="",
        SOPClassUID="",
        ImageType="",
        AvailableTransferSyntaxUID="",
        InstanceAvailability="",
        RetrieveAETitle="",
    )
    r = only(archive, Root.PATIENT, "IMAGE", query)
    assert (str(r.PatientName), r.PatientBirthDate, r.StudyDate, r.AccessionNumber) == (
        "Doe^John",
        "19600101",
        "20200115",
        "ACC-100",
    )
    assert (r.Modality, r.SeriesNumber, r.InstanceNumber, r.SOPClassUID) == (
        "CT",
        1,
        1,
        CT_IMAGE_STORAGE,
    )
    assert list(r.ImageType) == ["ORIGINAL", "PRIMARY", "AXIAL"]
    assert (
        r.AvailableTransferSyntaxUID == ExplicitVRLittleEndian
    )  # the first instance was stored so
    assert r.InstanceAvailability == "ONLINE" and not r.RetrieveAETitle


def test_keys_of_a_level_below_the_query_are_returned_empty_and_not_matched(
    archive: Archive,
) -> None:
    query = identifier("STUDY", StudyInstanceUID=UID["SA"], Modality="MR", SOPInstanceUID="")
    response = only(archive, Root.STUDY, "STUDY", query)
    assert response["Modality"].is_empty and response["SOPInstanceUID"].is_empty


def test_an_empty_sequence_key_returns_the_whole_sequence(archive: Archive) -> None:
    query = identifier("STUDY", StudyInstanceUID=UID["SA"], ProcedureCodeSequence=[])
    items = only(archive, Root.STUDY, "STUDY", query).ProcedureCodeSequence
    assert [(i.CodeValue, i.CodingSchemeDesignator, i.CodeMeaning) for i in items] == [
        ("CT-CHEST", "LOCAL", "CT chest"),
        ("XR-1", "LOCAL", "extra"),
    ]


def test_a_matched_sequence_returns_the_matching_items_with_the_requested_attributes(
    archive: Archive,
) -> None:
    query = identifier(
        "STUDY",
        StudyInstanceUID="",
        ProcedureCodeSequence=sequence_key(CodeValue="XR*", CodeMeaning=""),
    )
    response = only(archive, Root.STUDY, "STUDY", query)
    (item,) = response.ProcedureCodeSequence
    assert (item.CodeValue, item.CodeMeaning) == (
        "XR-1",
        "extra",
    ) and "CodingSchemeDesignator" not in item


def test_a_query_in_latin_1_matches_and_is_answered_in_latin_1(archive: Archive) -> None:
    query = identifier("PATIENT", charset="ISO_IR 100", PatientName="Müller*", PatientID="")
    wire = encode_dataset(query, ExplicitVRLittleEndian)  # as the SCU sends it
    assert "Müller".encode("latin-1") in wire
    received = decode_dataset(wire, ExplicitVRLittleEndian)
    response = only(archive, Root.PATIENT, "PATIENT", received)
    assert response.SpecificCharacterSet == "ISO_IR 100"
    back = decode_dataset(encode_dataset(response, ExplicitVRLittleEndian), ExplicitVRLittleEndian)
    assert str(back.PatientName) == "Müller^Jürgen" and back.PatientID == "P3"


def test_a_name_the_query_character_set_cannot_hold_is_answered_in_utf8(archive: Archive) -> None:
    query = identifier("PATIENT", charset="ISO_IR 100", PatientID="P4", PatientName="")
    response = only(archive, Root.PATIENT, "PATIENT", query)
    assert response.SpecificCharacterSet == "ISO_IR 192"
    back = decode_dataset(encode_dataset(response, ExplicitVRLittleEndian), ExplicitVRLittleEndian)
    assert str(back.PatientName) == "Yamada^Tarou=山田^太郎=やまだ^たろう"


def test_an_ascii_answer_to_a_query_without_character_set_has_none(archive: Archive) -> None:
    response = only(
        archive, Root.PATIENT, "PATIENT", identifier("PATIENT", PatientID="P1", PatientName="")
    )
    assert "SpecificCharacterSet" not in response


def test_pn_can_be_matched_case_insensitively(tmp_path: Path) -> None:
    with Archive(tmp_path, fsync=False, pn_case_sensitive=False) as archive:
        for ds in corpus():
            store(archive, ds)
        assert found(archive, Root.PATIENT, "PATIENT", PatientName="DOE^*") == {"P1", "P2"}
        assert found(archive, Root.PATIENT, "PATIENT", PatientName="MÜLLER^JÜRGEN") == {"P3"}
        assert found(archive, Root.STUDY, "STUDY", AccessionNumber="acc-100") == set()  # only PN


def test_responses_can_be_consumed_partly(archive: Archive) -> None:
    responses = archive.find(identifier("IMAGE", SOPInstanceUID=""), Root.STUDY, "IMAGE")
    next(responses)
    assert isinstance(responses, types.GeneratorType)
    responses.close()  # e.g. after a C-CANCEL: the index connection goes back to the pool
    assert archive.count() == len(IMAGES)


# --- the instances of a C-MOVE or C-GET


@pytest.mark.parametrize(
    ("root", "level", "keys", "expected"),
    [
        (
            Root.PATIENT,
            "PATIENT",
            {"PatientID": "P1"},
            {"A1-1", "A1-2", "A1-3", "A2-1", "B1-1", "B1-2"},
        ),
        (
            Root.PATIENT,
            "STUDY",
            {"PatientID": "P1", "StudyInstanceUID": ids("SA")},
            {"A1-1", "A1-2", "A1-3", "A2-1"},
        ),
        (Root.PATIENT, "STUDY", {"PatientID": "P2", "StudyInstanceUID": ids("SA")}, set()),
        (Root.STUDY, "STUDY", {"StudyInstanceUID": ids("SB", "SC")}, {"B1-1", "B1-2", "C1-1"}),
        (
            Root.STUDY,
            "SERIES",
            {"StudyInstanceUID": ids("SA"), "SeriesInstanceUID": ids("A2")},
            {"A2-1"},
        ),
        (Root.STUDY, "SERIES", {"SeriesInstanceUID": ids("A2", "D1")}, {"A2-1", "D1-1"}),
        (Root.PATIENT, "IMAGE", {"SOPInstanceUID": ids("E1-1")}, {"E1-1"}),
        (
            Root.STUDY,
            "IMAGE",
            {"SeriesInstanceUID": ids("A1"), "SOPInstanceUID": ids("A1-2", "A1-3", "B1-1")},
            {"A1-2", "A1-3"},
        ),
        (
            Root.STUDY,
            "STUDY",
            {"StudyInstanceUID": ids("SA"), "PatientName": "Nobody"},
            {"A1-1", "A1-2", "A1-3", "A2-1"},
        ),
    ],
)
def test_instances_named_by_unique_keys(
    archive: Archive, root: Root, level: str, keys: dict[str, Any], expected: set[str]
) -> None:
    found = archive.instances(identifier(level, **keys), root, level)
    assert {NAME[i.sop_instance_uid] for i in found} == expected
    for instance in found:
        assert instance.path.is_file() and instance.path.is_relative_to(archive.root)
        assert instance.transfer_syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian)


@pytest.mark.parametrize(
    ("root", "level", "keys"),
    [
        (Root.STUDY, "STUDY", {}),
        (Root.STUDY, "SERIES", {"StudyInstanceUID": UID["SA"]}),
        (Root.PATIENT, "IMAGE", {"SOPInstanceUID": "*"}),
        (Root.STUDY, "PATIENT", {"PatientID": "P1"}),
    ],
)
def test_a_retrieve_without_the_levels_unique_key_is_refused(
    archive: Archive, root: Root, level: str, keys: dict[str, Any]
) -> None:
    with pytest.raises(QueryError):
        archive.instances(identifier(level, **keys), root, level)


# --- names in the character sets of pydicom's charset test files (PS3.5 Annex H, I, J)

CHARSET_FILES = sorted(Path(p).name for p in get_charset_files("chr*.dcm"))


@pytest.mark.parametrize("name", CHARSET_FILES)
def test_names_in_every_character_set_are_indexed_and_found(tmp_path: Path, name: str) -> None:
    path = Path(get_charset_files(name)[0])
    original = dcmread(path)
    with Archive(tmp_path, fsync=False) as archive:
        status = store_file(archive, path)
        if (
            original.file_meta.MediaStorageSOPInstanceUID != original.get("SOPInstanceUID")
            or "SeriesInstanceUID" not in original
        ):
            assert status == 0xA900  # these test files do not name their own instance
            return
        assert status == 0x0000
        person = str(original.PatientName)
        # the query in the file's own character set, encoded and decoded as on the wire
        query = identifier("IMAGE", PatientName=person, SOPInstanceUID="")
        query.SpecificCharacterSet = original.SpecificCharacterSet
        received = decode_dataset(
            encode_dataset(query, ExplicitVRLittleEndian), ExplicitVRLittleEndian
        )
        (response,) = archive.find(received, Root.PATIENT, "IMAGE")
        assert response.SOPInstanceUID == original.SOPInstanceUID
        back = decode_dataset(
            encode_dataset(response, ExplicitVRLittleEndian), ExplicitVRLittleEndian
        )
        assert str(back.PatientName) == person
        prefix = identifier("IMAGE", PatientName=person[:2] + "*", SOPInstanceUID="")
        assert len(list(archive.find(prefix, Root.STUDY, "IMAGE"))) == 1
