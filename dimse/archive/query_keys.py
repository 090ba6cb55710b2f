"""The attributes of each level of the Query/Retrieve information models, and which of
them the archive's index keeps in columns.

PS3.4 C.6.1.1 (Patient Root) and C.6.2.1 (Study Root) give, for each level, a Unique
Key, Required Keys and Optional Keys; "all other attributes" of the level's entity are
optional keys too. This module answers two questions about a key of an identifier:

- Which entity does it describe (`entity_of`)? Patient, study, series or composite
  object instance. In the Study Root model there is no patient level: the patient's
  attributes are keys of the study level (PS3.4 C.6.2.1.1), so the caller maps PATIENT
  to STUDY there (`model_level`).
- Is it in the index (`INDEXED`)? Those are matched in SQL and returned from the row;
  the others are read from a stored instance of the entity.

A key that no table here names (a private attribute, a module attribute we did not
list) is taken to belong to the level of the query: "all other attributes at this
level" (PS3.4 C.6.1.1.2-5), answered from a stored instance.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.datadict import dictionary_VR, tag_for_keyword

from dimse.models import LEVELS, Root

PATIENT, STUDY, SERIES, IMAGE = LEVELS

#: Elements of an identifier that are never matched: they say how the query is to be
#: read (PS3.4 C.2.2.2: Specific Character Set "is never matched"; C.4.1.1.3.1:
#: Query/Retrieve Level; C.4.1.1.3.1.1 Query/Retrieve View; C.2.2.2.5 Timezone Offset
#: From UTC) or are filled by the server (Retrieve AE Title, Instance Availability).
NOT_MATCHED = frozenset(
    {
        0x00080005,  # Specific Character Set
        0x00080052,  # Query/Retrieve Level
        0x00080053,  # Query/Retrieve View
        0x00080201,  # Timezone Offset From UTC
        0x00080054,  # Retrieve AE Title
        0x00080056,  # Instance Availability
    }
)


@dataclass(frozen=True, slots=True)
class Column:
    """An attribute the index keeps: one SQL column named by its keyword, holding the
    normalized text of its value (dimse.archive.conditions.normalize); DA, TM and DT have a twin
    column `<keyword>__k` with the comparable form used for range matching."""

    keyword: str
    tag: int
    vr: str
    entity: str

    @property
    def ranged(self) -> bool:
        return self.vr in ("DA", "TM", "DT")


def _columns(entity: str, keywords: str) -> tuple[Column, ...]:
    out = []
    for keyword in keywords.split():
        tag = tag_for_keyword(keyword)
        if tag is None:  # a typo here must not pass silently
            raise ValueError(f"{keyword} is not a DICOM keyword")
        out.append(Column(keyword, tag, dictionary_VR(tag), entity))
    return tuple(out)


#: The indexed attributes of each entity: the unique key first, then the required keys
#: of PS3.4 C.6.1.1/C.6.2.1, then optional ones that sites commonly query.
INDEXED: dict[str, tuple[Column, ...]] = {
    PATIENT: _columns(
        PATIENT,
        "PatientID PatientName IssuerOfPatientID PatientBirthDate PatientBirthTime "
        "PatientSex EthnicGroup PatientComments",
    ),
    STUDY: _columns(
        STUDY,
        "StudyInstanceUID StudyDate StudyTime AccessionNumber StudyID StudyDescription "
        "ReferringPhysicianName NameOfPhysiciansReadingStudy PatientAge PatientSize "
        "PatientWeight AdmittingDiagnosesDescription",
    ),
    SERIES: _columns(
        SERIES,
        "SeriesInstanceUID Modality SeriesNumber SeriesDescription SeriesDate SeriesTime "
        "BodyPartExamined ProtocolName Laterality PerformedProcedureStepStartDate "
        "PerformedProcedureStepStartTime Manufacturer InstitutionName StationName",
    ),
    IMAGE: _columns(
        IMAGE,
        "SOPInstanceUID SOPClassUID InstanceNumber ContentDate ContentTime AcquisitionDate "
        "AcquisitionTime AcquisitionDateTime AcquisitionNumber NumberOfFrames Rows Columns",
    ),
}

COLUMNS_BY_TAG: dict[int, Column] = {c.tag: c for cs in INDEXED.values() for c in cs}

#: Standard keys of PS3.4 C.6.1.1.2-5 and C.3.4 that are not in a column: their entity.
#: Those of Table C.3-1 (the counts, Modalities/SOP Classes in Study) are computed by
#: the index; the others are read from a stored instance.
_OTHER_KEYS: dict[str, list[str]] = {
    PATIENT: (
        "IssuerOfPatientIDQualifiersSequence ReferencedPatientSequence "
        "OtherPatientIDsSequence OtherPatientNames PatientSpeciesDescription "
        "PatientSpeciesCodeSequence PatientBreedDescription PatientBreedCodeSequence "
        "BreedRegistrationSequence ResponsiblePerson ResponsiblePersonRole "
        "ResponsibleOrganization PatientIdentityRemoved DeidentificationMethod "
        "NumberOfPatientRelatedStudies NumberOfPatientRelatedSeries "
        "NumberOfPatientRelatedInstances"
    ).split(),
    STUDY: (
        "ProcedureCodeSequence ReferencedStudySequence AdmittingDiagnosesCodeSequence "
        "Occupation AdditionalPatientHistory IssuerOfAccessionNumberSequence "
        "PhysiciansOfRecord RequestingService ReasonForPerformedProcedureCodeSequence "
        "NumberOfStudyRelatedSeries NumberOfStudyRelatedInstances ModalitiesInStudy "
        "SOPClassesInStudy AnatomicRegionsInStudyCodeSequence"
    ).split(),
    SERIES: (
        "NumberOfSeriesRelatedInstances PerformingPhysicianName OperatorsName "
        "RequestAttributesSequence ReferencedPerformedProcedureStepSequence "
        "ManufacturerModelName FrameOfReferenceUID PerformedProcedureStepID "
        "PerformedProcedureStepDescription SeriesType"
    ).split(),
    IMAGE: (
        "AlternateRepresentationSequence ConceptNameCodeSequence ContentTemplateSequence "
        "ImageType ImageComments AvailableTransferSyntaxUID CompletionFlag VerificationFlag "
        "SamplesPerPixel BitsAllocated"
    ).split(),
}

_ENTITY_BY_TAG: dict[int, str] = {c.tag: c.entity for c in COLUMNS_BY_TAG.values()}
for _entity, _keywords in _OTHER_KEYS.items():
    for _keyword in _keywords:
        _tag = tag_for_keyword(_keyword)
        if _tag is None:
            raise ValueError(f"{_keyword} is not a DICOM keyword")
        _ENTITY_BY_TAG[_tag] = _entity


def entity_of(tag: int) -> str | None:
    """The entity a standard key describes, or None when no table here names it."""
    return _ENTITY_BY_TAG.get(tag)


def model_level(entity: str, root: Root) -> str:
    """The level at which an entity's attributes are keys in `root`: the patient's
    attributes are study-level keys in the Study Root model (PS3.4 C.6.2.1.1)."""
    if root is Root.STUDY and entity == PATIENT:
        return STUDY
    return entity
