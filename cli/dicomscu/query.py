"""The identifier of a C-FIND, C-MOVE or C-GET, built as gdcmscu builds it.

- (0008,0005) Specific Character Set from the locale (`cli.dicomscu.charset`), or the user's
  key 8,5. Every key's value must be writable in the character set so declared, or
  in the default repertoire for the VRs (0008,0005) does not apply to (PS3.5 6.1.2.3);
  what is not is refused here, before anything is sent, rather than sent as `?`.
- (0008,0052) Query/Retrieve Level: PATIENT, STUDY (the default), SERIES or IMAGE.
- The unique keys of the levels above the query level, empty, so that each answer can
  be placed in the hierarchy (PS3.4 C.4.1.2.1): Patient ID above STUDY in the Patient
  Root model, Study Instance UID above SERIES, Series Instance UID above IMAGE.
- The user's keys, each replacing an automatic one with the same tag. A key inside a
  sequence (`-k 8,1110[0].8,1150=...`, `cli.dicomscu.keys`) goes into the one item of that
  sequence, created when needed (PS3.4 C.2.2.2.6); several keys in one sequence share
  its item. It is sent as typed: Sequence Matching is a matching of C-FIND.

A Modality Worklist query (PS3.4 K.6) has no levels: the user's keys and (0008,0005);
the keys of the Scheduled Procedure Step go into its sequence (`cli.dicomscu.worklist_keys`),
and -V says which were moved.

Before anything is built, each key is checked: its path (`cli.dicomscu.keys.structure_problem`),
its value against its VR (`cli.dicomscu.key_values`), its text against the character set. A
key refused here never reaches pydicom, which would warn and send it anyway.

`QueryError` is a query that cannot be sent as asked; its message says what to change.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence as DicomSequence
from pydicom.valuerep import PersonName

from cli.dicomscu.charset import EXTENSIBLE_VRS, cannot_encode, charset_problem, declared_terms
from cli.dicomscu.key_values import value_problem
from cli.dicomscu.keys import Key, structure_problem
from cli.dicomscu.uids import make_uid
from cli.dicomscu.worklist_keys import place_worklist_keys
from dimse.datasets import EXPLICIT_VR_LITTLE_ENDIAN, encode_dataset
from dimse.files import part10_bytes_header
from dimse.models import MODELS, UNIQUE_KEYS, Root, levels_of

DEFAULT_LEVEL = "STUDY"
SPECIFIC_CHARACTER_SET = 0x00080005
QUERY_RETRIEVE_LEVEL = 0x00080052
WILDCARDS = ("*", "?")

log = logging.getLogger("dicomscu")


class QueryError(ValueError):
    """A query that cannot be sent as it was asked for."""


@dataclass(frozen=True, slots=True)
class Query:
    """What to ask: the operation ('find', 'move', 'get' or 'worklist'), the model,
    the level (None for a worklist), and the identifier to send."""

    operation: str
    root: Root
    level: str | None
    identifier: Dataset

    @property
    def sop_class_uid(self) -> str:
        """The SOP Class of the information model for this operation (PS3.4 C.6, K.6)."""
        uids = MODELS[self.root]
        uid = {"find": uids.find, "worklist": uids.find, "move": uids.move, "get": uids.get}[
            self.operation
        ]
        assert uid is not None
        return uid


def choose_model(operation: str, roots: list[Root], levels: list[str]) -> tuple[Root, str | None]:
    """The information model and level for `operation`, or QueryError.

    roots and levels are every --patientroot/--studyroot and --patient/... given.
    """
    if operation == "worklist":
        return Root.WORKLIST, None
    distinct_roots = list(dict.fromkeys(roots))
    if not distinct_roots:
        raise QueryError(
            f"--{operation} needs an information model: add --patientroot (Patient Root: "
            "PATIENT, STUDY, SERIES, IMAGE levels) or --studyroot (Study Root: STUDY, "
            "SERIES, IMAGE levels)"
        )
    if len(distinct_roots) > 1:
        raise QueryError("--patientroot and --studyroot were both given: choose one model")
    root = distinct_roots[0]
    distinct_levels = list(dict.fromkeys(levels))
    if len(distinct_levels) > 1:
        given = ", ".join(f"--{level.lower()}" for level in distinct_levels)
        raise QueryError(f"several query levels were given ({given}): choose one")
    level = distinct_levels[0] if distinct_levels else DEFAULT_LEVEL
    if level not in levels_of(root):
        raise QueryError(
            "the Study Root model has no PATIENT level (PS3.4 C.6.2): query patients "
            "with --patientroot --patient, or use --studyroot with --study, --series or "
            "--image"
        )
    return root, level


def build_identifier(root: Root, level: str | None, keys: list[Key], charset: str) -> Dataset:
    """The identifier: (0008,0005), (0008,0052), unique keys above the level, user keys.

    `charset` is the locale's term, used unless a key gives (0008,0005). QueryError
    for a key that cannot be sent (see the module docstring)."""
    declared = next(
        (key for key in keys if key.tag == SPECIFIC_CHARACTER_SET and not key.path), None
    )
    terms = [charset] if declared is None else declared_terms(declared.text)
    if declared is not None and (problem := charset_problem(terms)) is not None:
        raise QueryError(f"the value of {declared.name} {declared.tag_text}: {problem}")
    for key in keys:
        if (problem := structure_problem(key)) is not None:
            raise QueryError(problem)
        if key is not declared:
            _check_encodable(key, terms, declared is not None)
        check_value(key)
    if root is Root.WORKLIST:
        keys = _worklist_keys(keys)
    _warn_of_sequences_asked_whole_that_hold_keys(keys)
    identifier = Dataset()
    identifier.add(
        DataElement(SPECIFIC_CHARACTER_SET, "CS", terms[0] if len(terms) == 1 else terms)
    )
    if level is not None:
        identifier.add(DataElement(QUERY_RETRIEVE_LEVEL, "CS", level))
        model_levels = levels_of(root)
        above = model_levels[: model_levels.index(level)]
        for upper in above:
            keyword = UNIQUE_KEYS[upper]
            tag = _tag_of(keyword)
            identifier.add(DataElement(tag, dictionary_VR(tag), ""))
    for key in keys:
        if key is not declared:
            _add_key(identifier, key)
    return identifier


def check_value(key: Key) -> None:
    """QueryError when the key's value is not of its VR (`cli.dicomscu.key_values`)."""
    problem = value_problem(key.vr, key.text)
    if problem is not None:
        raise QueryError(f"{key.where} {key.name} {problem}")


def _worklist_keys(keys: list[Key]) -> list[Key]:
    """The keys of a worklist query, those of the Scheduled Procedure Step moved into
    its sequence (said at -V, in one line)."""
    placed, moved = place_worklist_keys(keys)
    if moved:
        log.info(
            "worklist: into the Scheduled Procedure Step Sequence (0040,0100), where PS3.4 "
            "Table K.6-1 puts the step's attributes: %s",
            ", ".join(f"{key.where} {key.name}" for key in moved),
        )
    return placed


def _warn_of_sequences_asked_whole_that_hold_keys(keys: list[Key]) -> None:
    """A sequence given empty asks for all of it, but one that holds keys returns of
    each item only those keys (PS3.4 C.2.2.2.6): say so when both were given."""
    holding = {
        tuple(tag for tag, _ in key.path[: n + 1]) for key in keys for n in range(len(key.path))
    }
    for key in keys:
        if key.vr == "SQ" and (*(tag for tag, _ in key.path), key.tag) in holding:
            log.warning(
                "%s %s was asked for whole, but keys inside it were given too: of each of "
                "its items a server returns only those keys (PS3.4 C.2.2.2.6); ask for the "
                "others too, or leave the keys inside it out",
                key.where,
                key.name,
            )


def _add_key(identifier: Dataset, key: Key) -> None:
    """Add `key` to the identifier, inside the one item of each sequence of its path
    (created when needed; an empty sequence asked for gets its item)."""
    container = identifier
    for sequence, _ in key.path:
        if sequence not in container:
            container.add(DataElement(sequence, "SQ", DicomSequence([Dataset()])))
        items = container[sequence].value
        if len(items) == 0:
            items.append(Dataset())
        container = items[0]
    if key.vr == "SQ" and key.tag in container:
        return  # the sequence already holds keys: asking for it empty adds nothing
    container.add(DataElement(key.tag, key.vr, key.value()))


def _check_encodable(key: Key, terms: list[str], declared: bool) -> None:
    """QueryError unless the key's value can be written in the identifier's character
    set (PS3.5 6.1.2.3: only SH, LO, UC, ST, LT, UT and PN take it; the other VRs keep
    the default repertoire)."""
    if key.vr not in EXTENSIBLE_VRS:
        problem = cannot_encode(key.text, [""])
        if problem is not None:
            raise QueryError(
                f"the value of {key.name} {key.where}: {problem}; a value of VR {key.vr} "
                "uses the default repertoire whatever (0008,0005) says (PS3.5 6.1.2.3)"
            )
        return
    problem = cannot_encode(key.text, terms)
    if problem is None:
        return
    if declared:
        raise QueryError(
            f"the value of {key.name} {key.where}: {problem}, the character set of the "
            "key 8,5 (Specific Character Set); give one that has these characters, e.g. "
            '-k "8,5=ISO_IR 192" (UTF-8), or leave the key out to use the locale\'s'
        )
    raise QueryError(
        f"the value of {key.name} {key.where}: {problem}, the character set of "
        "this locale; run dicomscu in a UTF-8 locale (e.g. LC_ALL=C.UTF-8)"
    )


def _tag_of(keyword: str) -> int:
    tag = tag_for_keyword(keyword)
    assert tag is not None, keyword
    return tag


def build_query(
    operation: str, roots: list[Root], levels: list[str], keys: list[Key], charset: str
) -> Query:
    """The whole query for `operation`; QueryError if the model or level is wrong."""
    root, level = choose_model(operation, roots, levels)
    return Query(operation, root, level, build_identifier(root, level, keys, charset))


def check_retrieve_keys(query: Query) -> None:
    """C-MOVE and C-GET match with unique keys, never wildcards (PS3.4 C.4.2.2.1)."""
    for element in _elements(query.identifier):
        value = element.value
        values = value if isinstance(value, MultiValue | list | tuple) else [value]
        for text in (str(v) for v in values if isinstance(v, str | PersonName)):
            if any(w in text for w in WILDCARDS):
                raise QueryError(
                    f"{element.name} {_tag_text(element.tag)} = {text!r}: wildcards (* and ?) "
                    f"are not allowed in C-{query.operation.upper()} keys (PS3.4 C.4.2.2.1); "
                    "give the unique key of the entity to retrieve, e.g. --key 20,d=<Study "
                    "Instance UID>; run the same query with --find first to learn it"
                )


def _elements(dataset: Dataset) -> Iterator[DataElement]:
    """Every element of `dataset`, those inside sequence items included."""
    for element in dataset:
        yield element
        if element.VR == "SQ":
            for item in element.value or ():
                yield from _elements(item)


def missing_unique_keys(query: Query) -> list[str]:
    """The unique keys a retrieve at this level should carry a value for but does not."""
    if query.level is None:
        return []
    levels = levels_of(query.root)
    wanted = levels[: levels.index(query.level) + 1]
    missing = []
    for level in wanted:
        keyword = UNIQUE_KEYS[level]
        value = query.identifier.get(keyword)
        if value is None or value == "":
            tag = _tag_of(keyword)
            missing.append(f"{keyword} {_tag_text(tag)}")
    return missing


def _tag_text(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def write_query_file(query: Query, path: Path, root_uid: str | None) -> None:
    """Write the identifier as a DICOM Part 10 file: preamble, DICM, file meta group
    (Media Storage SOP Class = the information model's SOP Class, a new Instance UID,
    Explicit VR Little Endian) and the identifier, as dcmdump and pydicom read it."""
    header = part10_bytes_header(query.sop_class_uid, make_uid(root_uid), EXPLICIT_VR_LITTLE_ENDIAN)
    body = encode_dataset(query.identifier, EXPLICIT_VR_LITTLE_ENDIAN)
    path.write_bytes(header + body)
