"""SOP classes of the services we speak, and the query/retrieve information models.

PS3.4 C.6 (Patient Root and Study Root Query/Retrieve Information Models) and K.6
(Modality Worklist Information Model); PS3.4 A.4 (Verification).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

VERIFICATION = "1.2.840.10008.1.1"

PATIENT_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
PATIENT_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.1.2"
PATIENT_ROOT_GET = "1.2.840.10008.5.1.4.1.2.1.3"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"
MODALITY_WORKLIST_FIND = "1.2.840.10008.5.1.4.31"


class Root(Enum):
    """The information model a query is made in."""

    PATIENT = "patient"
    STUDY = "study"
    WORKLIST = "worklist"


@dataclass(frozen=True, slots=True)
class ModelUIDs:
    find: str
    move: str | None
    get: str | None


MODELS: dict[Root, ModelUIDs] = {
    Root.PATIENT: ModelUIDs(PATIENT_ROOT_FIND, PATIENT_ROOT_MOVE, PATIENT_ROOT_GET),
    Root.STUDY: ModelUIDs(STUDY_ROOT_FIND, STUDY_ROOT_MOVE, STUDY_ROOT_GET),
    Root.WORKLIST: ModelUIDs(MODALITY_WORKLIST_FIND, None, None),
}

#: Query/Retrieve Level values (0008,0052), top down.
LEVELS = ("PATIENT", "STUDY", "SERIES", "IMAGE")

#: The unique key of each level (PS3.4 C.6.1.1, C.6.2.1).
UNIQUE_KEYS = {
    "PATIENT": "PatientID",
    "STUDY": "StudyInstanceUID",
    "SERIES": "SeriesInstanceUID",
    "IMAGE": "SOPInstanceUID",
}


def root_of(sop_class_uid: str) -> Root | None:
    """The information model of a Q/R SOP class UID, or None."""
    for root, uids in MODELS.items():
        if sop_class_uid in (uids.find, uids.move, uids.get):
            return root
    return None


def levels_of(root: Root) -> tuple[str, ...]:
    """The levels a root has: the Study Root model has no PATIENT level."""
    if root is Root.STUDY:
        return LEVELS[1:]
    if root is Root.PATIENT:
        return LEVELS
    return ()
