"""Testing the conditions of a C-FIND identifier against stored values (PS3.4
C.2.2.2, C.2.2.3), and the values a response returns for the requested keys
(C.2.2.2.6), for the archive and the worklist. The conditions, the values as they are
compared, and the decisions where the standard leaves room (PN component groups and
case, several values, precision of TM and DT) are `dimse.archive.conditions`'.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from pydicom import config
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.valuerep import PersonName

from dimse.archive.conditions import (
    MAX_DEPTH,
    AnyOf,
    Condition,
    Key,
    QueryError,
    Range,
    SequenceMatch,
    Single,
    UidList,
    Universal,
    Wildcard,
    normalize,
    range_key,
    texts,
)

# --------------------------------------------------------------------------------------
# Testing stored values


@lru_cache(maxsize=4096)
def _segment(segment: str) -> re.Pattern[str]:
    """A run of a pattern between two `*`: literal characters and `?`. No quantifier,
    so matching it cannot backtrack."""
    return re.compile("".join("." if c == "?" else re.escape(c) for c in segment), re.DOTALL)


def wildcard_match(pattern: str, text: str) -> bool:
    """Whether `text` matches a DICOM wild card pattern (C.2.2.2.4) as a whole.

    Not a regular expression with `.*`: a key such as `*a*a*a*a*a*a*a*a*a*a*a*a*b`
    makes a backtracking engine run for hours (a C-FIND that hangs a thread). The
    pattern is cut at each `*` into runs of fixed length; the first must match at the
    start, the last at the end, and each one between at its leftmost place after the
    one before, which is never a worse choice. Time O(len(text) * len(pattern))."""
    runs = pattern.split("*")
    if len(runs) == 1:
        return _segment(pattern).fullmatch(text) is not None
    first, last = runs[0], runs[-1]
    end = len(text) - len(last)
    if end < len(first) or _segment(first).match(text) is None:
        return False
    if _segment(last).match(text, end) is None:
        return False
    position = len(first)
    for run in runs[1:-1]:
        if run:
            found = _segment(run).search(text, position, end)
            if found is None:
                return False
            position = found.end()
    return True


def _pn_groups_match(condition: Single | Wildcard, stored: str) -> bool:
    """PN with component groups: see the module docstring."""
    query = condition.value if isinstance(condition, Single) else condition.pattern
    if condition.fold:
        stored = stored.casefold()
    stored_groups = stored.split("=")

    def one(q: str, s: str) -> bool:
        if isinstance(condition, Single):
            return q == s
        return wildcard_match(q, s)

    if "=" not in query:
        return one(query, stored) or any(one(query, g) for g in stored_groups)
    for i, part in enumerate(query.split("=")):
        if part and not one(part, stored_groups[i] if i < len(stored_groups) else ""):
            return False
    return True


def values_match(condition: Condition, vr: str, values: Sequence[str]) -> bool:
    """Whether stored values (normalized, one string per value) satisfy a non-sequence
    condition: true when any value does (C.2.2.3)."""
    if isinstance(condition, Universal):
        return True
    if isinstance(condition, AnyOf):
        return any(values_match(option, vr, values) for option in condition.options)
    if isinstance(condition, UidList):
        return any(v in condition.uids for v in values)
    if isinstance(condition, Range):
        # A stored value stands for its first moment (`12` is 12:00:00), as in the
        # index's comparable column, so that SQL and Python agree.
        for v in values:
            key = range_key(vr, v)
            if key is None:
                continue
            if (condition.low is None or key >= condition.low) and (
                condition.high is None or key <= condition.high
            ):
                return True
        return False
    if isinstance(condition, (Single, Wildcard)):
        if vr == "PN":
            return any(_pn_groups_match(condition, v) for v in values)
        if isinstance(condition, Single):
            return condition.value in values
        return any(wildcard_match(condition.pattern, v) for v in values)
    raise TypeError(f"a {type(condition).__name__} is tested with element_matches")


def stored_values(vr: str, value: Any) -> list[str]:
    """The normalized values of a stored element's value."""
    return [normalize(vr, t) for t in texts(value)]


def element_matches(key: Key, dataset: Dataset) -> bool:
    """Whether `dataset` (a stored instance, a worklist item, a sequence item)
    satisfies `key`."""
    if isinstance(key.condition, Universal):
        return True
    element: DataElement | None = dataset.get(key.tag)
    if isinstance(key.condition, SequenceMatch):
        items = element.value if element is not None and element.VR == "SQ" else None
        return any(dataset_matches(key.condition.keys, item) for item in items or ())
    if element is None or element.VR == "SQ":
        return False
    return values_match(key.condition, key.vr, stored_values(key.vr, element.value))


def dataset_matches(keys: Iterable[Key], dataset: Dataset) -> bool:
    """Whether `dataset` satisfies every key."""
    return all(element_matches(key, dataset) for key in keys)


# --------------------------------------------------------------------------------------
# Response values


def copy_dataset(dataset: Dataset, depth: int = 0) -> Dataset:
    """A copy holding decoded values only, so that the response's own Specific
    Character Set encodes every string (a raw element would keep the source's bytes)."""
    if depth >= MAX_DEPTH:
        raise QueryError(f"a stored sequence nests deeper than {MAX_DEPTH}", unable=True)
    out = Dataset()
    for tag in dataset.keys():
        out.add(copy_element(dataset[tag], depth + 1))
    return out


def copy_element(element: DataElement, depth: int = 0) -> DataElement:
    """A decoded copy of a stored element (sequences copied item by item)."""
    if element.VR == "SQ":
        items = [copy_dataset(item, depth) for item in element.value or ()]
        return DataElement(element.tag, "SQ", DicomSequence(items))
    return DataElement(
        element.tag,
        element.VR,
        element.value,
        already_converted=True,
        validation_mode=config.IGNORE,
    )


def project_item(keys: Iterable[Key], item: Dataset, depth: int = 0) -> Dataset:
    """A stored sequence item reduced to the requested attributes (C.2.2.2.6)."""
    if depth >= MAX_DEPTH:
        raise QueryError(f"a stored sequence nests deeper than {MAX_DEPTH}", unable=True)
    projected = Dataset()
    for key in keys:
        projected.add(response_element(key, item, depth + 1))
    return projected


def response_element(key: Key, source: Dataset | None, depth: int = 0) -> DataElement:
    """The value of a requested key in a response, from `source` (a stored instance or
    worklist entry): the stored value; for Sequence Matching only the matching items,
    each holding only the requested attributes (C.2.2.2.6); a zero-length element
    when the source lacks it."""
    element = source.get(key.tag) if source is not None else None
    if element is None:
        return DataElement(key.tag, key.vr, DicomSequence() if key.vr == "SQ" else None)
    if element.VR != "SQ" or not isinstance(key.condition, SequenceMatch):
        return copy_element(element, depth)
    condition = key.condition
    items = [
        project_item(condition.keys, item, depth)
        for item in element.value or ()
        if dataset_matches(condition.keys, item)
    ]
    return DataElement(key.tag, "SQ", DicomSequence(items))


def person_name(value: str) -> PersonName:
    """A PersonName for a stored text, unchecked (it was checked when stored)."""
    return PersonName(value, validation_mode=config.IGNORE)
