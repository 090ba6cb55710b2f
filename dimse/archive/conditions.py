"""The keys of a C-FIND identifier compiled into conditions (PS3.4 C.2.2.2), for the
archive and the worklist: the kinds of matching, the values as they are compared,
and the decisions where the standard leaves room.

Each key of a request identifier is compiled once into a `Condition`: plain data that
the archive's index turns into SQL where it can (dimse/archive/query_sql.py) and that
`dimse.archive.matching` applies to stored values in Python everywhere else. The
kinds of matching, in the standard's order:

- Single Value Matching (C.2.2.2.1): `Single`; case-sensitive, except PN (below).
- List of UID Matching (C.2.2.2.2): `UidList`, a UI key with several values.
- Universal Matching (C.2.2.2.3): `Universal`, a key of zero length (or `*`).
- Wild Card Matching (C.2.2.2.4): `Wildcard`, for AE, CS, LO, LT, PN, SH, ST, UC, UR
  and UT only; `*` is any run of characters, `?` one character.
- Range Matching (C.2.2.2.5): `Range`, for DA, TM and DT: `d1-d2`, `-d2`, `d1-`.
- Sequence Matching (C.2.2.2.6): `SequenceMatch`; an item with no keys, or no item,
  is Universal Matching and the whole sequence is returned.

A stored attribute with several values matches when any of its values matches
(C.2.2.3), and then all of them are returned.

Decisions where the standard leaves room (the conformance statement says the same):

- PN is matched case-sensitively by default, as DCMTK's dcmqrscp does (C.2.2.2.1
  allows insensitivity; Orthanc is insensitive unless `CaseSensitivePN` is set).
  `fold_pn=True` makes it insensitive to case (Unicode case folding, both sides).
- PN component groups (alphabetic=ideographic=phonetic, PS3.5 6.2): a key without `=`
  matches a stored name when it matches any one of its groups, so `Yamada*` and
  `山田*` both find `Yamada^Tarou=山田^太郎`; a key with `=` is matched group by group,
  an empty group of the key matching anything. Trailing `^` and `=` are not
  significant (PS3.5 6.2: trailing empty components may be left out).
- A key with several values that are not UIDs matches when any value matches (an OR).
  C.2.2.2.8 defines an AND only under Extended Negotiation of Multiple Value
  Matching, which we do not accept; without it the meaning "is undefined". Orthanc
  also reads it as an OR.
- A UI key of exactly `*` is Universal Matching: wild cards are not defined for UIDs,
  but SCUs send it and it can only mean "any".
- TM and DT values are compared at the precision written: the bound `1200` is the
  whole minute 12:00:00-12:00:59.999999, so the range `-1200` includes 12:00:30, and
  a single value `1200` is the range of that minute. DT offsets from UTC are not
  converted (values are compared as written). DA values must be 8 digits
  (`YYYY.MM.DD` of ACR-NEMA is read as YYYYMMDD).
- Leading and trailing spaces are not significant, except leading ones of LT, ST and
  UT (PS3.5 6.2). IS and DS compare as numbers (`007` equals `7`).
- Keys of binary VRs (OB, OW, UN...) are not matched: they are Universal Matching and
  only returned. Empty Value Matching (C.2.2.2.7, `""`) is not negotiated, so `""` is
  an ordinary value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from dimse.status import FindStatus, GetStatus, MoveStatus

WILDCARD_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})
RANGE_VRS = frozenset({"DA", "TM", "DT"})
#: VRs whose values cannot be keys: matched universally, returned as stored.
UNMATCHED_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
#: Leading spaces are significant in these (PS3.5 6.2).
_TEXT_VRS = frozenset({"LT", "ST", "UT"})
#: Deepest sequence nesting followed in a key or a stored value.
MAX_DEPTH = 32


class QueryError(Exception):
    """The identifier cannot be answered: it does not match the SOP class, or, when
    `unable`, it cannot be processed. The failure to send is the service's: A900H
    "Identifier does not match SOP Class" or C000H "Unable to process" (PS3.4
    C.4.1.1.4, C.4.2.1.5, C.4.3.1.4)."""

    def __init__(self, message: str, *, unable: bool = False) -> None:
        super().__init__(message)
        self.unable = unable

    def status_in(self, codes: type[FindStatus] | type[MoveStatus] | type[GetStatus]) -> int:
        """The failure to answer with, in the service whose codes are `codes`."""
        return codes.UNABLE_TO_PROCESS if self.unable else codes.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS

    @property
    def status(self) -> int:
        """The C-FIND failure (`status_in(FindStatus)`)."""
        return self.status_in(FindStatus)


# --------------------------------------------------------------------------------------
# Conditions


@dataclass(frozen=True, slots=True)
class Universal:
    """C.2.2.2.3: every entity matches."""


@dataclass(frozen=True, slots=True)
class Single:
    """C.2.2.2.1: the normalized value (PN: casefolded when `fold`)."""

    value: str
    fold: bool = False


@dataclass(frozen=True, slots=True)
class Wildcard:
    """C.2.2.2.4: `pattern` in DICOM syntax (`*`, `?`), normalized."""

    pattern: str
    fold: bool = False


@dataclass(frozen=True, slots=True)
class UidList:
    """C.2.2.2.2: any of the UIDs."""

    uids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Range:
    """C.2.2.2.5: comparable forms (`range_key`) of the bounds, None when open."""

    low: str | None
    high: str | None


@dataclass(frozen=True, slots=True)
class AnyOf:
    """Several values in a key that is not a UID: any of them (see module docstring)."""

    options: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class SequenceMatch:
    """C.2.2.2.6: at least one stored item matches every key of the request's item."""

    keys: tuple[Key, ...]


Condition = Universal | Single | Wildcard | UidList | Range | AnyOf | SequenceMatch

UNIVERSAL = Universal()


@dataclass(frozen=True, slots=True)
class Key:
    """One key of an identifier: its tag, VR and compiled condition."""

    tag: int
    vr: str
    condition: Condition


# --------------------------------------------------------------------------------------
# Values: normalized text and comparable forms


def normalize(vr: str, text: str) -> str:
    """One value as the index and the matcher compare it (see the module docstring)."""
    if vr == "UI":
        return text.strip("\x00 ")
    if vr in _TEXT_VRS:
        return text.rstrip(" \x00")
    text = text.strip(" \x00")
    if vr == "PN":
        groups = [g.rstrip("^ ") for g in text.split("=")]
        while groups and not groups[-1]:
            groups.pop()
        return "=".join(groups)
    if vr == "DA":
        return text.replace(".", "") if len(text) == 10 else text
    if vr == "TM":
        return text.replace(":", "")
    if vr == "IS":
        try:
            return str(int(text))
        except ValueError:
            return text
    if vr == "DS":
        try:
            return repr(float(text))
        except ValueError:
            return text
    return text


_TM = re.compile(r"(\d{2})(\d{2})?(\d{2})?(?:\.(\d{1,6}))?")
_DT = re.compile(r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,6}))?([+-]\d{4})?")
_DT_LOW = ("", "01", "01", "00", "00", "00")
_DT_HIGH = ("", "12", "31", "23", "59", "59")


def range_key(vr: str, value: str, *, upper: bool = False) -> str | None:
    """The form of a normalized DA, TM or DT value that compares as a string in time
    order; None when it is not a valid value. A TM or DT written at a coarser precision
    stands for its first moment, or with `upper` for its last (`1200` -> 120000.000000
    or 120059.999999)."""
    if vr == "DA":
        return value if len(value) == 8 and value.isdigit() else None
    if vr == "TM":
        m = _TM.fullmatch(value)
        if m is None:
            return None
        fill = "59" if upper else "00"
        hh, mm, ss, frac = m.groups()
        return f"{hh}{mm or fill}{ss or fill}.{(frac or '').ljust(6, '9' if upper else '0')}"
    if vr == "DT":
        m = _DT.fullmatch(value)
        if m is None:
            return None
        fills = _DT_HIGH if upper else _DT_LOW
        parts = [part or fills[i] for i, part in enumerate(m.groups()[:6])]
        frac = (m.group(7) or "").ljust(6, "9" if upper else "0")
        return "".join(parts) + "." + frac
    return None


def _single_dt_with_offset(value: str) -> bool:
    """A DT with a UTC offset (`2020010112-0500`), not a range: at least hour precision
    before the sign and a valid offset (PS3.5 Table 6.2-1)."""
    m = _DT.fullmatch(value)
    if m is None or m.group(8) is None or m.group(4) is None:
        return False
    offset = m.group(8)
    return int(offset[1:3]) <= 14 and int(offset[3:5]) <= 59


def _split_range(vr: str, value: str) -> tuple[str, str] | None:
    """(low, high) text of a range value, or None when it is a single value."""
    if "-" not in value or (vr == "DT" and _single_dt_with_offset(value)):
        return None
    if vr != "DT":
        low, _, high = value.partition("-")
        return low.strip(), high.strip()
    for i, char in enumerate(value):  # a DT's own offset may hold a "-" too
        if char == "-":
            low, high = value[:i].strip(), value[i + 1 :].strip()
            if (not low or _DT.fullmatch(low)) and (not high or _DT.fullmatch(high)):
                return low, high
    raise QueryError(f"{value!r} is neither a DT value nor a DT range")


# --------------------------------------------------------------------------------------
# Compiling the keys of an identifier


def texts(value: Any) -> list[str]:
    """The values of an element as text, one per value; [] when empty."""
    if value is None or value == "" or value == b"":
        return []
    if isinstance(value, (list, tuple, MultiValue)):
        return [_text(v) for v in value]
    return [_text(value)]


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")  # only binary VRs arrive as bytes; never matched
    original = getattr(value, "original_string", None)
    return str(original) if isinstance(original, str) else str(value)


def compile_condition(vr: str, value: Any, *, fold_pn: bool = False, depth: int = 0) -> Condition:
    """The condition a key of VR `vr` with (decoded) value `value` asks for."""
    if vr == "SQ":
        return _compile_sequence(value, fold_pn, depth)
    if vr in UNMATCHED_VRS:
        return UNIVERSAL
    values = [normalize(vr, t) for t in texts(value)]
    values = [v for v in values if v != ""] if len(values) > 1 else values
    if not values or values == [""]:
        return UNIVERSAL
    if vr == "UI":
        if values == ["*"]:
            return UNIVERSAL
        return Single(values[0]) if len(values) == 1 else UidList(tuple(dict.fromkeys(values)))
    options = [_compile_one(vr, v, fold_pn) for v in values]
    if any(isinstance(o, Universal) for o in options):
        return UNIVERSAL
    return options[0] if len(options) == 1 else AnyOf(tuple(options))


def _compile_one(vr: str, value: str, fold_pn: bool) -> Condition:
    fold = fold_pn and vr == "PN"
    if vr in RANGE_VRS:
        bounds = _split_range(vr, value)
        if bounds is None:
            if vr == "DA":
                if range_key(vr, value) is None:
                    raise QueryError(f"{value!r} is not a DA value (YYYYMMDD)")
                return Single(value)
            low, high = value, value
        else:
            low, high = bounds
            if not low and not high:
                return UNIVERSAL  # "-" alone: no bound on either side
        low_key = range_key(vr, low) if low else None
        high_key = range_key(vr, high, upper=True) if high else None
        if (low and low_key is None) or (high and high_key is None):
            raise QueryError(f"{value!r} is not a {vr} value or range")
        return Range(low_key, high_key)
    if vr in WILDCARD_VRS and ("*" in value or "?" in value):
        if value.strip("*") == "":
            return UNIVERSAL  # C.2.2.2.4 Note: "*" is equivalent to Universal Matching
        return Wildcard(value.casefold() if fold else value, fold)
    return Single(value.casefold() if fold else value, fold)


def _compile_sequence(value: Any, fold_pn: bool, depth: int) -> Condition:
    if depth >= MAX_DEPTH:
        raise QueryError(f"the identifier nests sequences deeper than {MAX_DEPTH}")
    items = list(value) if value else []
    if len(items) > 1:
        raise QueryError("a sequence key holds more than one item (PS3.4 C.2.2.2.6: one)")
    if not items:
        return UNIVERSAL
    keys = tuple(compile_keys(items[0], fold_pn=fold_pn, depth=depth + 1))
    return SequenceMatch(keys) if keys else UNIVERSAL


def compile_keys(
    dataset: Dataset,
    *,
    skip: Iterable[int] = (),
    fold_pn: bool = False,
    depth: int = 0,
) -> list[Key]:
    """The keys of an identifier (or of a sequence item), in tag order; group lengths,
    command and file meta elements, and the tags in `skip`, left out.

    Values are read through pydicom, which decodes text with the identifier's Specific
    Character Set (PS3.4 C.2.2.2: it "specifies how other Attributes are encoded").
    """
    skipped = frozenset(skip)
    keys = []
    for tag in dataset.keys():
        if tag in skipped or tag.element == 0 or tag.group in (0x0000, 0x0002):
            continue
        element = dataset[tag]
        keys.append(
            Key(
                int(tag),
                element.VR,
                compile_condition(element.VR, element.value, fold_pn=fold_pn, depth=depth),
            )
        )
    return keys
