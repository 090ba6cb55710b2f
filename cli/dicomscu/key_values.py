"""Key values checked against their VR before a query is sent: one rule per VR.

A value that is not of its VR would reach pydicom, which warns (`Invalid value for VR
DA`) and sends it anyway, and then the server answers a failure, or nothing. Here each
value is checked first, and a bad one is refused with what to write instead.

The rules, one row of `RULES` per VR:

- The forms of one value are those of PS3.5 Table 6.2-1:
  DA `YYYYMMDD` (a real calendar date); TM `HH[MM[SS[.F{1,6}]]]` (HH 00-23, MM
  00-59, SS 00-60); DT `YYYY[MM[DD[HH[MM[SS[.F{1,6}]]]]]][&ZZXX]`, `&ZZXX` an offset
  from UTC, -1200 to +1400; AS `nnnD`, `nnnW`, `nnnM` or `nnnY`; UI digits and dots,
  at most 64 characters (PS3.5 9.1); IS an integer of at most 12 characters, -2^31
  to 2^31-1; DS a fixed or floating point number of at most 16 characters (digits,
  `+ - . E e`, leading and trailing spaces); AE at most 16 characters of the default
  repertoire without backslash or control characters, not all spaces; CS capital
  letters, digits, space and underscore, at most 16 characters.
- Range Matching (PS3.4 C.2.2.2.5) gives DA, TM and DT three more forms: `v1-v2`
  (v1 not after v2), `-v2` and `v1-`. A DT with a negative offset from UTC holds a
  `-` too: a value is one DT with an offset when it reads as one with at least the
  hour given (`2024010112-0500`), and a range otherwise, as dimse/archive/conditions.py reads
  it on our own server.
- Wild cards `*` and `?` (PS3.4 C.2.2.2.4) belong to AE, CS, LO, LT, PN, SH, ST, UC,
  UR and UT only; in a value of any other VR they are refused, with what to write
  instead (an empty value asks for any).
- Several values separated by a backslash: List of UID Matching for UI (PS3.4
  C.2.2.2.2), and for CS, IS and DS, whose attributes may have several values
  (`8,61=CT\\MR`); each value is checked. Not for DA, TM, DT and AS, where it would
  be Multiple Value Matching, which needs extended negotiation (C.2.2.2.8), nor AE,
  where a backslash is no character of the value (PS3.5 Table 6.2-1).
- PS3.4 C.2.2.2 lets a key's whole value be longer than the VR's maximum (a range, a
  list of UIDs): the lengths here are those of one value.
- An empty value always passes: it asks for the attribute (Universal Matching,
  C.2.2.3). VRs without a row (PN, LO, SH, LT, ST, UT, UC, UR...) take any text; their
  characters are checked against the character set in `cli.dicomscu.query`.

Decisions where the standard leaves room: UIDs are checked for their characters and
length, not for PS3.5 9.1's "no leading zero in a component", because archives hold
old UIDs with leading zeros and a key must be able to find them; and `-` alone (no
bound at all) is refused: it is none of C.2.2.2.5's forms, and an empty value says
"any" plainly.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass

WILDCARDS = ("*", "?")
#: PS3.4 C.2.2.2.4: the VRs Wild Card Matching is defined for.
WILDCARD_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})

_DA = re.compile(r"(\d{4})(\d{2})(\d{2})")
_TM = re.compile(r"(?:[01]\d|2[0-3])(?:[0-5]\d(?:(?:[0-5]\d|60)(?:\.\d{1,6})?)?)?")
_DT = re.compile(
    r"(\d{4})(?:(0[1-9]|1[0-2])(?:(0[1-9]|[12]\d|3[01])"
    r"(?:([01]\d|2[0-3])(?:[0-5]\d(?:(?:[0-5]\d|60)(?:\.\d{1,6})?)?)?)?)?)?"
    r"([+-](?:[01]\d|2[0-3])[0-5]\d)?"
)
_AS = re.compile(r"\d{3}[DWMY]")
_UI = re.compile(r"[0-9]+(?:\.[0-9]+)*")
_IS = re.compile(r" *[+-]?\d+ *")
_DS = re.compile(r" *[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)? *")
_AE = re.compile(r"[\x20-\x5b\x5d-\x7e]*")  # the default repertoire but backslash
_CS = re.compile(r"[A-Z0-9 _]*")


def _real_date(text: str) -> bool:
    match = _DA.fullmatch(text)
    if match is None:
        return False
    try:
        datetime.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return False
    return True


def _dt_single(text: str) -> bool:
    """One DT; with an offset from UTC only when the hour is given (see above)."""
    match = _DT.fullmatch(text)
    if match is None:
        return False
    offset = match[5]
    return offset is None or (match[4] is not None and -1200 <= int(offset) <= 1400)


def _int32(text: str) -> bool:
    return -(2**31) <= int(text) < 2**31


@dataclass(frozen=True, slots=True)
class Rule:
    """How the values of one VR are written.

    `valid(value)` says whether one value (no range, no backslash) is of the VR;
    `write` tells a person what to write; `ranges`: C.2.2.2.5 Range Matching;
    `several`: a backslash separates values; `wildcards`: C.2.2.2.4."""

    write: str
    valid: Callable[[str], bool]
    ranges: bool = False
    several: bool = False
    wildcards: bool = False


def _pattern(regex: re.Pattern[str], max_length: int | None = None) -> Callable[[str], bool]:
    def valid(value: str) -> bool:
        return (max_length is None or len(value) <= max_length) and bool(regex.fullmatch(value))

    return valid


def _all(*checks: Callable[[str], bool]) -> Callable[[str], bool]:
    def valid(value: str) -> bool:
        return all(check(value) for check in checks)

    return valid


RULES: dict[str, Rule] = {
    "DA": Rule(
        "write YYYYMMDD, or a range YYYYMMDD-YYYYMMDD (either side may be empty)",
        _real_date,
        ranges=True,
    ),
    "TM": Rule(
        "write HHMMSS (HH, HHMM and HHMMSS.FFFFFF too; 24-hour clock), or a range "
        "HHMMSS-HHMMSS (either side may be empty)",
        _pattern(_TM),
        ranges=True,
    ),
    "DT": Rule(
        "write YYYYMMDDHHMMSS.FFFFFF&ZZXX, each part after YYYY optional from the right "
        "and &ZZXX an optional offset from UTC (+0100), or a range of two such values "
        "joined by - (either side may be empty)",
        _dt_single,
        ranges=True,
    ),
    "AS": Rule("write an age as nnnD, nnnW, nnnM or nnnY (e.g. 045Y)", _pattern(_AS)),
    "UI": Rule(
        "write digits and dots, at most 64 characters (e.g. 1.2.840.10008.5.1.4.1.1.2), "
        "several UIDs separated by \\",
        _pattern(_UI, 64),
        several=True,
    ),
    "IS": Rule(
        "write an integer, at most 12 characters, from -2147483648 to 2147483647",
        _all(_pattern(_IS, 12), _int32),
        several=True,
    ),
    "DS": Rule(
        "write a decimal number of at most 16 characters (digits, + - . E e: 0.5, -1.25E3)",
        _pattern(_DS, 16),
        several=True,
    ),
    "AE": Rule(
        "write at most 16 characters of the default repertoire (ASCII), not all spaces, "
        "without backslash or control characters",
        _all(_pattern(_AE, 16), lambda v: v.strip(" ") != ""),
        wildcards=True,
    ),
    "CS": Rule(
        "write capital letters, digits, space and _, at most 16 characters (e.g. CT)",
        _pattern(_CS, 16),
        several=True,
        wildcards=True,
    ),
}


def _a(vr: str) -> str:
    """`a DA`, `an AS`: the article as the letters are spoken."""
    return f"an {vr}" if vr[0] in "AEFHILMNORSX" else f"a {vr}"


def value_problem(vr: str, text: str) -> str | None:
    """None when `text` may be the value of a key of VR `vr`; otherwise the rest of
    a sentence that starts with the key's name: `2004-01-01 is not a DA: write ...`."""
    rule = RULES.get(vr)
    if text == "" or rule is None:
        return None
    values = text.split("\\") if rule.several else [text]
    for value in values:
        if value == "":
            continue  # an empty value in a list: no condition (dimse/archive/conditions.py drops it)
        problem = _one_problem(vr, rule, value)
        if problem is not None:
            return problem
    return None


def _one_problem(vr: str, rule: Rule, value: str) -> str | None:
    if any(w in value for w in WILDCARDS):
        if not rule.wildcards:
            return (
                f"{value} is not {_a(vr)}: {rule.write}; * and ? are wild cards only in AE, CS, "
                "LO, LT, PN, SH, ST, UC, UR and UT values (PS3.4 C.2.2.2.4), and an empty "
                "value matches any"
            )
        value = value.replace("*", "").replace("?", "")
        if value == "" or rule.valid(value) or (vr == "AE" and value.strip(" ") == ""):
            return None
        return f"{value} is not {_a(vr)}: {rule.write}"
    if rule.valid(value):
        return None
    if rule.ranges and "-" in value:
        return _range_problem(vr, rule, value)
    return f"{value} is not {_a(vr)}: {rule.write}"


def _range_problem(vr: str, rule: Rule, value: str) -> str | None:
    """A range `v1-v2`, `-v2` or `v1-` (PS3.4 C.2.2.2.5), v1 not after v2."""
    for low, high in _splits(vr, value):
        if (low and not rule.valid(low)) or (high and not rule.valid(high)):
            continue
        if not low and not high:
            return (
                f"{value} is not {_a(vr)} range: give at least one bound, or leave the value "
                "empty to match any"
            )
        if low and high and _after(vr, low, high):
            return (
                f"{value} is not {_a(vr)} range: {low} is after {high} (PS3.4 C.2.2.2.5: the "
                "first bound comes first); write the earlier one first"
            )
        return None
    return f"{value} is not {_a(vr)}: {rule.write}"


def _splits(vr: str, value: str) -> list[tuple[str, str]]:
    """The ways to read `value` as low-high: at its only `-` for DA and TM; at each
    `-` for DT, whose offsets from UTC may hold one too."""
    if vr != "DT":
        low, _, high = value.partition("-")
        return [(low, high)] if value.count("-") == 1 else []
    return [(value[:i], value[i + 1 :]) for i, char in enumerate(value) if char == "-"]


def _after(vr: str, low: str, high: str) -> bool:
    """Whether the bound `low` is later than `high`, both valid values of `vr`.
    TM and DT compare at the precision written, as the server does: `1200` is the
    whole minute (dimse.archive.conditions.range_key). DT values with an offset are not compared
    (the server compares them as written; the user may mean the offsets)."""
    from dimse.archive.conditions import range_key

    if vr == "DT" and (_DT_OFFSET.search(low) or _DT_OFFSET.search(high)):
        return False
    low_key = range_key(vr, low)
    high_key = range_key(vr, high, upper=True)
    return low_key is not None and high_key is not None and low_key > high_key


_DT_OFFSET = re.compile(r"[+-]\d{4}$")
