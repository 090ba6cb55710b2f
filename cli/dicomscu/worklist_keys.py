"""Where the keys of a Modality Worklist query belong (PS3.4 Table K.6-1).

A worklist item is one Scheduled Procedure Step with its Requested Procedure, Imaging
Service Request, Visit and Patient (PS3.4 K.6.1.2.1), and Table K.6-1 puts the step's
own attributes inside the Scheduled Procedure Step Sequence (0040,0100), which "shall
contain only a single Item" in a query and is matched by Sequence Matching (PS3.4
C.2.2.2.6). A server looks for Scheduled Station AE Title there, never at the top of
the identifier: sent at the top, `-k 40,1=AA32` matches no worklist item.

So for `--worklist` a key of one of these attributes, typed as gdcmscu users type
keys (`-k 40,1=AA32`), is moved into the one item of (0040,0100), created when needed;
the keys of the other entities (Patient's Name, Accession Number, Requested
Procedure ID...) stay at the top level, and so do the two attributes that K.6-1
lists with the step but outside the sequence: Scheduled Specimen Sequence
(0040,0500) and Barcode Value (2200,0005). A key typed inside a sequence
(`-k 40,100[0].40,1=AA32`, `cli.dicomscu.keys`) is where it was typed. A key inside one of
the step's own sequences (`-k 40,8[0].8,100=X`, Scheduled Protocol Code Sequence) is
moved with its sequence.

`--find` keys are never moved: a Query/Retrieve identifier is sent as typed.
"""

from __future__ import annotations

from cli.dicomscu.keys import Key, last_of_each

SCHEDULED_PROCEDURE_STEP_SEQUENCE = 0x00400100

#: (tag, matching key type) of the attributes inside the Scheduled Procedure Step
#: Sequence: the rows of PS3.4 Table K.6-1 marked ">" under it, in its order, then
#: those of "All other Attributes of the Scheduled Procedure Step Sequence", the
#: other attributes of the sequence in PS3.3 Table C.4-10 (Scheduled Procedure Step
#: Module), optional keys (O).
STEP_KEYS: tuple[tuple[int, str], ...] = (
    (0x00400001, "R"),  # Scheduled Station AE Title
    (0x00400002, "R"),  # Scheduled Procedure Step Start Date
    (0x00400003, "R"),  # Scheduled Procedure Step Start Time
    (0x00080060, "R"),  # Modality
    (0x00400006, "R"),  # Scheduled Performing Physician's Name
    (0x00400007, "O"),  # Scheduled Procedure Step Description
    (0x00400010, "O"),  # Scheduled Station Name
    (0x00400011, "O"),  # Scheduled Procedure Step Location
    (0x0018990C, "O"),  # Referenced Defined Protocol Sequence
    (0x0018990D, "O"),  # Referenced Performed Protocol Sequence
    (0x00400008, "O"),  # Scheduled Protocol Code Sequence
    (0x00400012, "O"),  # Pre-Medication
    (0x00400009, "O"),  # Scheduled Procedure Step ID
    (0x00321070, "O"),  # Requested Contrast Agent
    (0x00400020, "O"),  # Scheduled Procedure Step Status
    # "All other Attributes of the Scheduled Procedure Step Sequence" (Table C.4-10)
    (0x00400004, "O"),  # Scheduled Procedure Step End Date
    (0x00400005, "O"),  # Scheduled Procedure Step End Time
    (0x0040000B, "O"),  # Scheduled Performing Physician Identification Sequence
    (0x00400400, "O"),  # Comments on the Scheduled Procedure Step
    (0x00102210, "O"),  # Anatomical Orientation Type
)

STEP_TAGS = frozenset(tag for tag, _ in STEP_KEYS)


def belongs_in_step(key: Key) -> bool:
    """Whether `key`, typed at the top level (or inside one of the step's own
    sequences), belongs inside the Scheduled Procedure Step Sequence."""
    top = key.path[0][0] if key.path else key.tag
    return top in STEP_TAGS


def place_worklist_keys(keys: list[Key]) -> tuple[list[Key], list[Key]]:
    """(the keys, those of the step moved into (0040,0100)[0]; the keys that were
    moved, as they were typed). A moved key and one typed in the sequence for the same
    attribute: the later one given wins, as for any two keys of one tag."""
    placed: list[Key] = []
    moved: list[Key] = []
    for key in keys:
        if belongs_in_step(key):
            moved.append(key)
            placed.append(key.inside(SCHEDULED_PROCEDURE_STEP_SEQUENCE))
        else:
            placed.append(key)
    return last_of_each(placed), moved
