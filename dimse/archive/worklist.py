"""Modality Worklist C-FIND (PS3.4 Annex K) answered from worklist files in a folder.

The folder holds one DICOM file per worklist entry, named `*.wl` or `*.dcm`, as for
DCMTK's wlmscpfs (which keeps them in a folder per AE title; here the folder is the one
given, not searched recursively). A file is read when it is new or changed (its size or
modification time), so an operator or a RIS bridge can drop files in at any time. A
file that cannot be read, or that has no Scheduled Procedure Step Sequence (so is no
worklist entry), is skipped with a warning in the log; the others are still answered.

Matching is that of every C-FIND (dimse/archive/conditions.py and matching.py,
PS3.4 C.2.2.2), on any key the identifier holds: the keys of PS3.4 K.6.1.2 (Patient
Name, Patient ID, Accession Number, Requested Procedure ID...) and, inside the
Scheduled Procedure Step Sequence (0040,0100), Scheduled Station AE Title, Scheduled
Procedure Step Start Date and Time (ranges), Modality, Scheduled Performing
Physician's Name... with Sequence Matching (C.2.2.2.6).

Each Scheduled Procedure Step is an entity of the Modality Worklist Information Model
(PS3.4 K.6.1.1), so when the identifier asks for the Scheduled Procedure Step Sequence,
a file with several steps gives one response per matching step, holding that step
alone; otherwise one response per matching file. Responses hold exactly the requested
keys (sequence items with only the requested attributes) and a Specific Character Set
chosen by dimse/archive/response_charset.py.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from dimse.archive.conditions import MAX_DEPTH, Key, SequenceMatch, Universal, compile_keys
from dimse.archive.matching import copy_dataset, dataset_matches, project_item, response_element
from dimse.archive.response_charset import request_character_set, set_character_set
from dimse.drivers.locks import new_lock

log = logging.getLogger(__name__)

SCHEDULED_PROCEDURE_STEP_SEQUENCE = 0x00400100
_SPECIFIC_CHARACTER_SET = 0x00080005
SUFFIXES = (".wl", ".dcm")


@dataclass(frozen=True, slots=True)
class _Entry:
    stamp: tuple[int, int]  # (size, mtime_ns): when either changes, read the file again
    dataset: Dataset | None  # None: unreadable, warned about once


def _decode_all(dataset: Dataset, depth: int = 0) -> None:
    """Decode every element now: a file that pydicom cannot fully read is found at load
    time, and the cached data set is not changed later by pydicom's lazy decoding while
    several threads read it."""
    if depth > MAX_DEPTH:
        raise ValueError(f"sequences nested deeper than {MAX_DEPTH}")
    for tag in dataset.keys():
        element = dataset[tag]
        if element.VR == "SQ":
            for item in element.value or ():
                _decode_all(item, depth + 1)


class Worklist:
    """The worklist entries in `folder` (see the module docstring); PN keys are matched
    case-sensitively unless `pn_case_sensitive=False` (dimse/archive/conditions.py)."""

    def __init__(self, folder: Path, *, pn_case_sensitive: bool = True) -> None:
        self.folder = Path(folder)
        self.fold_pn = not pn_case_sensitive
        self._lock = new_lock()
        self._cache: dict[str, _Entry] = {}

    def _load(self, path: Path, stamp: tuple[int, int]) -> Dataset | None:
        try:
            dataset = dcmread(path, force=True)
            _decode_all(dataset)
        except Exception as exc:  # pydicom raises many kinds; RecursionError too
            log.warning("worklist: %s skipped: it cannot be read as DICOM (%s)", path, exc)
            return None
        if SCHEDULED_PROCEDURE_STEP_SEQUENCE not in dataset:
            # pydicom reads almost any bytes as some data set when forced; a worklist
            # entry has this sequence (Type 1, PS3.4 K.6.1.2.2), so without it the file
            # is not one.
            log.warning(
                "worklist: %s skipped: no Scheduled Procedure Step Sequence (0040,0100)", path
            )
            return None
        return dataset

    def entries(self) -> list[tuple[Path, Dataset]]:
        """The readable worklist files, by name."""
        try:
            found = sorted(
                (e.name, e)
                for e in os.scandir(self.folder)
                if e.name.lower().endswith(SUFFIXES) and e.is_file()
            )
        except OSError as exc:
            log.warning("worklist: the folder %s cannot be listed: %s", self.folder, exc)
            return []
        out = []
        seen = set()
        for name, entry in found:
            try:
                info = entry.stat()
            except OSError:
                continue  # removed meanwhile
            stamp = (info.st_size, info.st_mtime_ns)
            seen.add(name)
            with self._lock:
                cached = self._cache.get(name)
            if cached is None or cached.stamp != stamp:
                cached = _Entry(stamp, self._load(Path(entry.path), stamp))
                with self._lock:
                    self._cache[name] = cached
            if cached.dataset is not None:
                out.append((Path(entry.path), cached.dataset))
        with self._lock:
            for name in set(self._cache) - seen:
                del self._cache[name]
        return out

    def find(self, identifier: Dataset) -> Iterator[Dataset]:
        """The C-FIND responses' identifiers (PS3.4 K.4.1.3). Raises
        `dimse.archive.conditions.QueryError` at once when the identifier cannot be answered."""
        keys = compile_keys(identifier, skip=(_SPECIFIC_CHARACTER_SET,), fold_pn=self.fold_pn)
        requested = request_character_set(identifier)
        return self._matches(keys, requested)

    def _matches(self, keys: list[Key], requested: tuple[str, ...]) -> Iterator[Dataset]:
        step_key = next((k for k in keys if k.tag == SCHEDULED_PROCEDURE_STEP_SEQUENCE), None)
        others = [k for k in keys if k is not step_key]
        for path, dataset in self.entries():
            if not dataset_matches(others, dataset):
                continue
            try:
                if step_key is None:
                    yield self._response(keys, dataset, requested)
                    continue
                for step in self._steps(step_key, dataset):
                    yield self._response(keys, dataset, requested, step)
            except Exception as exc:  # a value that cannot be copied: that file only
                log.warning("worklist: %s left out of the answer: %s", path, exc)

    @staticmethod
    def _steps(step_key: Key, dataset: Dataset) -> Iterator[Dataset]:
        element: DataElement | None = dataset.get(SCHEDULED_PROCEDURE_STEP_SEQUENCE)
        items = element.value if element is not None and element.VR == "SQ" else None
        for item in items or ():
            condition = step_key.condition
            if isinstance(condition, Universal) or (
                isinstance(condition, SequenceMatch) and dataset_matches(condition.keys, item)
            ):
                yield item

    @staticmethod
    def _response(
        keys: list[Key], dataset: Dataset, requested: tuple[str, ...], step: Dataset | None = None
    ) -> Dataset:
        response = Dataset()
        for key in keys:
            if step is not None and key.tag == SCHEDULED_PROCEDURE_STEP_SEQUENCE:
                # the one step of this response, with only the requested attributes
                condition = key.condition
                item = (
                    project_item(condition.keys, step)
                    if isinstance(condition, SequenceMatch)
                    else copy_dataset(step)
                )
                response.add(DataElement(key.tag, "SQ", DicomSequence([item])))
            else:
                response.add(response_element(key, dataset))
        set_character_set(response, requested)
        return response
