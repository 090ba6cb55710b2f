"""`--queryhelp`: the keys each level of each information model knows.

The tables are those of PS3.4 C.6.1.1 (Patient Root), C.6.2.1 (Study Root) and K.6.1
(Modality Worklist), as data: (tag, key type, depth), depth 1 for an attribute inside
a sequence (">" in the standard). Names and VRs come from the data dictionary. Each
row shows the --key that asks for it; a row inside a sequence, the nested form
(`--key 8,1120[0].8,1150=`, cli/dicomscu/keys.py). The worklist's Scheduled Procedure Step
rows come from `cli.dicomscu.worklist_keys`, the one list of the keys `--worklist` moves into
that sequence, so that the help and the behaviour cannot differ.

Key types (PS3.4 C.2.2.1): U unique key, one per level, identifies an entity; R
required key, which every SCP matches on; O optional key, which an SCP may match on or
only return. PS3.4 also lets an SCP support "all other Attributes" of the level as
optional keys.
"""

from __future__ import annotations

from pydicom.datadict import dictionary_description, dictionary_VR

from cli.dicomscu.worklist_keys import SCHEDULED_PROCEDURE_STEP_SEQUENCE, STEP_KEYS
from dimse.models import Root

Row = tuple[int, str, int]

_PATIENT_LEVEL: tuple[Row, ...] = (
    (0x00100010, "R", 0),  # Patient's Name
    (0x00100020, "U", 0),  # Patient ID
    (0x00100021, "O", 0),  # Issuer of Patient ID
    (0x00081120, "O", 0),  # Referenced Patient Sequence
    (0x00081150, "O", 1),
    (0x00081155, "O", 1),
    (0x00100030, "O", 0),  # Patient's Birth Date
    (0x00100032, "O", 0),
    (0x00100040, "O", 0),
    (0x00101000, "O", 0),
    (0x00101001, "O", 0),
    (0x00102160, "O", 0),
    (0x00104000, "O", 0),
    (0x00201200, "O", 0),  # Number of Patient Related Studies (PS3.4 C.3.4)
    (0x00201202, "O", 0),
    (0x00201204, "O", 0),
)

_STUDY_LEVEL_PATIENT_ROOT: tuple[Row, ...] = (
    (0x00080020, "R", 0),  # Study Date
    (0x00080030, "R", 0),  # Study Time
    (0x00080050, "R", 0),  # Accession Number
    (0x00200010, "R", 0),  # Study ID
    (0x0020000D, "U", 0),  # Study Instance UID
    (0x00080061, "O", 0),  # Modalities in Study
    (0x00080062, "O", 0),
    (0x00080090, "O", 0),
    (0x00081030, "O", 0),
    (0x00081032, "O", 0),  # Procedure Code Sequence
    (0x00080100, "O", 1),
    (0x00080102, "O", 1),
    (0x00080103, "O", 1),
    (0x00080104, "O", 1),
    (0x00081060, "O", 0),
    (0x00081080, "O", 0),
    (0x00081110, "O", 0),  # Referenced Study Sequence
    (0x00081150, "O", 1),
    (0x00081155, "O", 1),
    (0x00101010, "O", 0),
    (0x00101020, "O", 0),
    (0x00101030, "O", 0),
    (0x00102180, "O", 0),
    (0x001021B0, "O", 0),
    (0x00201070, "O", 0),
    (0x00201206, "O", 0),
    (0x00201208, "O", 0),
)

#: Study Root, Table C.6-5: the patient's attributes are attributes of the study.
_STUDY_LEVEL_STUDY_ROOT: tuple[Row, ...] = (
    (0x00080020, "R", 0),
    (0x00080030, "R", 0),
    (0x00080050, "R", 0),
    (0x00100010, "R", 0),  # Patient's Name
    (0x00100020, "R", 0),  # Patient ID
    (0x00200010, "R", 0),
    (0x0020000D, "U", 0),
    (0x00080061, "O", 0),
    (0x00080062, "O", 0),
    (0x00080090, "O", 0),
    (0x00081030, "O", 0),
    (0x00081032, "O", 0),
    (0x00080100, "O", 1),
    (0x00080102, "O", 1),
    (0x00080103, "O", 1),
    (0x00080104, "O", 1),
    (0x00081060, "O", 0),
    (0x00081080, "O", 0),
    (0x00081110, "O", 0),
    (0x00081150, "O", 1),
    (0x00081155, "O", 1),
    (0x00081120, "O", 0),
    (0x00081150, "O", 1),
    (0x00081155, "O", 1),
    (0x00100021, "O", 0),
    (0x00100030, "O", 0),
    (0x00100032, "O", 0),
    (0x00100040, "O", 0),
    (0x00101000, "O", 0),
    (0x00101001, "O", 0),
    (0x00101010, "O", 0),
    (0x00101020, "O", 0),
    (0x00101030, "O", 0),
    (0x00102160, "O", 0),
    (0x00102180, "O", 0),
    (0x001021B0, "O", 0),
    (0x00104000, "O", 0),
    (0x00201070, "O", 0),
    (0x00201200, "O", 0),
    (0x00201202, "O", 0),
    (0x00201204, "O", 0),
    (0x00201206, "O", 0),
    (0x00201208, "O", 0),
)

#: Tables C.6-3 and C.6-6 (the same in both models).
_SERIES_LEVEL: tuple[Row, ...] = (
    (0x00080060, "R", 0),  # Modality
    (0x00200011, "R", 0),  # Series Number
    (0x0020000E, "U", 0),  # Series Instance UID
    (0x00201209, "O", 0),  # Number of Series Related Instances
    (0x00400275, "O", 0),  # Request Attributes Sequence
    (0x00401001, "O", 1),
    (0x00400009, "O", 1),
    (0x00400244, "O", 0),  # Performed Procedure Step Start Date
    (0x00400245, "O", 0),
)

#: Tables C.6-4 and C.6-7 (the same in both models).
_IMAGE_LEVEL: tuple[Row, ...] = (
    (0x00200013, "R", 0),  # Instance Number
    (0x00080018, "U", 0),  # SOP Instance UID
    (0x00080016, "O", 0),  # SOP Class UID
    (0x00083001, "O", 0),  # Alternate Representation Sequence
    (0x00081150, "O", 1),
    (0x00081155, "O", 1),
    (0x0040A043, "O", 0),  # Concept Name Code Sequence (SR documents)
    (0x0040A504, "O", 0),  # Content Template Sequence (SR documents)
)

#: Modality Worklist, Table K.6-1: the Scheduled Procedure Step (its sequence and the
#: attributes inside it), then the keys of the other entities, at the top level.
_WORKLIST: tuple[Row, ...] = (
    (SCHEDULED_PROCEDURE_STEP_SEQUENCE, "R", 0),
    *((tag, key_type, 1) for tag, key_type in STEP_KEYS),
    (0x00400500, "O", 0),  # Scheduled Specimen Sequence (of the step, outside its sequence)
    (0x22000005, "O", 0),  # Barcode Value (likewise)
    (0x00401001, "O", 0),  # Requested Procedure ID
    (0x00321060, "O", 0),  # Requested Procedure Description
    (0x00321064, "O", 0),  # Requested Procedure Code Sequence
    (0x0020000D, "O", 0),  # Study Instance UID
    (0x00081110, "O", 0),  # Referenced Study Sequence
    (0x00081150, "O", 1),
    (0x00081155, "O", 1),
    (0x00401003, "O", 0),  # Requested Procedure Priority
    (0x00401004, "O", 0),  # Patient Transport Arrangements
    (0x00080050, "O", 0),  # Accession Number (Imaging Service Request)
    (0x00321032, "O", 0),  # Requesting Physician
    (0x00080090, "O", 0),  # Referring Physician's Name
    (0x00380010, "O", 0),  # Admission ID (Visit)
    (0x00380300, "O", 0),  # Current Patient Location
    (0x00081120, "O", 0),  # Referenced Patient Sequence
    (0x00081150, "O", 1),
    (0x00081155, "O", 1),
    (0x00100010, "R", 0),  # Patient's Name
    (0x00100020, "R", 0),  # Patient ID
    (0x00100021, "O", 0),  # Issuer of Patient ID
    (0x00100030, "O", 0),  # Patient's Birth Date
    (0x00100040, "O", 0),  # Patient's Sex
    (0x00101030, "O", 0),  # Patient's Weight
    (0x00403001, "O", 0),  # Confidentiality Constraint on Patient Data Description
    (0x00380500, "O", 0),  # Patient State
    (0x001021C0, "O", 0),  # Pregnancy Status
    (0x00102000, "O", 0),  # Medical Alerts
    (0x00102110, "O", 0),  # Allergies
    (0x00380050, "O", 0),  # Special Needs
)

#: root -> [(level, option, table name, rows)]
TABLES: dict[Root, list[tuple[str, str, str, tuple[Row, ...]]]] = {
    Root.PATIENT: [
        ("PATIENT", "--patient", "PS3.4 Table C.6-1", _PATIENT_LEVEL),
        ("STUDY", "--study", "PS3.4 Table C.6-2", _STUDY_LEVEL_PATIENT_ROOT),
        ("SERIES", "--series", "PS3.4 Table C.6-3", _SERIES_LEVEL),
        ("IMAGE", "--image", "PS3.4 Table C.6-4", _IMAGE_LEVEL),
    ],
    Root.STUDY: [
        ("STUDY", "--study", "PS3.4 Table C.6-5", _STUDY_LEVEL_STUDY_ROOT),
        ("SERIES", "--series", "PS3.4 Table C.6-6", _SERIES_LEVEL),
        ("IMAGE", "--image", "PS3.4 Table C.6-7", _IMAGE_LEVEL),
    ],
    Root.WORKLIST: [("", "", "PS3.4 Table K.6-1", _WORKLIST)],
}

_TITLES = {
    Root.PATIENT: "Patient Root Query/Retrieve Information Model (--patientroot)",
    Root.STUDY: "Study Root Query/Retrieve Information Model (--studyroot)",
    Root.WORKLIST: "Modality Worklist Information Model (--worklist)",
}

_INTRODUCTION = """\
Query keys, for -k/--key GGGG,EEEE=VALUE (match) or GGGG,EEEE= (return only).
Key types (PS3.4 C.2.2.1): U unique key (one per level), R required key (every
server matches on it), O optional key (a server may match on it, or only return it).
A server may also support any other attribute of the level as an optional key.
A key inside a sequence (marked >) is SQ[0].GGGG,EEEE=VALUE: the sequence, [0] (a
sequence key holds one item, PS3.4 C.2.2.2.6), a dot, the key inside; the form
nests (40,100[0].40,8[0].8,100=X). A sequence given empty (8,1110=) asks for all
of it. dicomscu adds (0008,0005) Specific Character Set, (0008,0052) Query/Retrieve
Level, and the unique keys of the levels above the query level with empty values;
a --key with the same tag replaces them. C-MOVE and C-GET take the unique keys,
without wildcards. Values are checked against their VR before anything is sent:
dates YYYYMMDD, times HHMMSS, ranges with - (PS3.4 C.2.2.2.5); * and ? only in AE,
CS, LO, LT, PN, SH, ST, UC, UR and UT values (C.2.2.2.4).
"""

_WORKLIST_NOTE = """\
 With --worklist, the keys of the Scheduled Procedure Step (marked > under (0040,0100))
 go inside the Scheduled Procedure Step Sequence by themselves: --key 40,1=AA32 is
 sent as --key 40,100[0].40,1=AA32, where a server looks for it; -V says which keys
 were moved. The other keys stay at the top level.
"""


def _example(parents: list[int], tag: int, worklist: bool) -> str:
    """The --key that asks for the attribute at `tag` inside the sequences `parents`
    (outermost first); for a worklist, without the Scheduled Procedure Step Sequence
    that dicomscu adds by itself."""
    if worklist and parents[:1] == [SCHEDULED_PROCEDURE_STEP_SEQUENCE]:
        parents = parents[1:]
    steps = "".join(f"{t >> 16:x},{t & 0xFFFF:x}[0]." for t in parents)
    return f"--key {steps}{tag >> 16:x},{tag & 0xFFFF:x}="


def _rows_text(rows: tuple[Row, ...], worklist: bool) -> list[str]:
    lines = []
    parents: list[int] = []  # the sequence at each depth above the current row
    for tag, key_type, depth in rows:
        del parents[depth:]
        where = f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
        marker = ">" * depth
        vr = dictionary_VR(tag).split(" or ")[0]
        example = _example(parents, tag, worklist)
        lines.append(
            f"  {marker}{where:<{13 - depth}} {vr:<3} {key_type}  "
            f"{dictionary_description(tag):<40} {example}".rstrip()
        )
        parents.append(tag)
    return lines


def query_help(roots: list[Root] | None = None) -> str:
    """The help text for `roots` (all three models when None or empty)."""
    chosen = roots or [Root.PATIENT, Root.STUDY, Root.WORKLIST]
    parts = [_INTRODUCTION + "\n"]
    for root in chosen:
        parts.append(f"{_TITLES[root]}\n")
        for level, option, table, rows in TABLES[root]:
            if level:
                parts.append(f" {level} level ({option}), {table}:\n")
            else:
                parts.append(f" no levels, {table}:\n")
                parts.append(_WORKLIST_NOTE)
            parts.extend(line + "\n" for line in _rows_text(rows, root is Root.WORKLIST))
            parts.append("\n")
    return "".join(parts)
