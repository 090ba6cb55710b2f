"""Query keys as gdcmscu reads them: `-k/--key gggg,eeee[=VALUE]`.

The tag is two hexadecimal numbers with optional leading zeros (`10,10` is
(0010,0010)). One separator follows, `=` or `,`, and everything after it to the end of
the argument is the value, spaces included: `10,10="A*"` (the shell removes the
quotes), `10,10,A*`, `10,20=` and `10,20` (the last two: return this attribute, match
anything). The VR comes from the data dictionary, as in gdcmscu.

A key that cannot be read is reported as gdcmscu does, `Could not read Tag: X`, with
the reason after it.

pydicom's dictionary is imported when a key is read, not at import: dicomscu checks
the keys of every run, and `--store` and `--echo` have none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from pydicom.sequence import Sequence

_KEY = re.compile(r"([0-9A-Fa-f]{1,4}),([0-9A-Fa-f]{1,4})(?:[=,](.*))?", re.DOTALL)

#: VRs whose value is a binary number (PS3.5 Table 6.2-1), converted from the text.
_INTEGER_VRS = frozenset({"US", "SS", "UL", "SL", "UV", "SV"})
_FLOAT_VRS = frozenset({"FL", "FD"})
#: VRs a value cannot be typed for on a command line; they may only be asked for.
_NO_TEXT_VALUE_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN", "SQ", "AT"})

KeyValue: TypeAlias = "str | int | float | list[int] | list[float] | Sequence"


class KeySyntaxError(ValueError):
    """A `--key` argument that cannot be read. `str()` is the message for a person."""

    def __init__(self, argument: str, why: str) -> None:
        super().__init__(f"Could not read Tag: {argument} ({why})")
        self.argument = argument
        self.why = why


@dataclass(frozen=True, slots=True)
class Key:
    """One key: the tag, its VR from the dictionary, and the value as typed."""

    tag: int
    vr: str
    text: str

    @property
    def name(self) -> str:
        from pydicom.datadict import dictionary_description

        return dictionary_description(self.tag)

    @property
    def tag_text(self) -> str:
        return f"({self.tag >> 16:04X},{self.tag & 0xFFFF:04X})"

    def value(self) -> KeyValue:
        """The value for a pydicom DataElement of this VR ('' asks for the attribute)."""
        if self.vr == "SQ":
            from pydicom.sequence import Sequence

            return Sequence([])
        if self.text == "":
            return ""
        parts = self.text.split("\\")
        if self.vr in _INTEGER_VRS:
            numbers = [int(p) for p in parts]
            return numbers[0] if len(numbers) == 1 else numbers
        if self.vr in _FLOAT_VRS:
            floats = [float(p) for p in parts]
            return floats[0] if len(floats) == 1 else floats
        return self.text


def parse_key(argument: str) -> Key:
    """Read one `--key` argument; raises KeySyntaxError with the reason."""
    from pydicom.datadict import dictionary_has_tag, dictionary_VR
    from pydicom.tag import Tag

    match = _KEY.fullmatch(argument)
    if match is None:
        raise KeySyntaxError(
            argument,
            "a key is GGGG,EEEE=VALUE, group and element in hexadecimal, "
            'e.g. --key 10,10="DOE^*" or --key 10,20= to ask for Patient ID',
        )
    group, element, text = int(match[1], 16), int(match[2], 16), match[3] or ""
    tag = int(Tag(group, element))
    where = f"({group:04X},{element:04X})"
    if group in (0x0000, 0x0002) or element == 0x0000:
        raise KeySyntaxError(
            argument,
            f"{where} is a command, file meta or group length element, not an attribute "
            "of a query identifier",
        )
    if not dictionary_has_tag(tag):
        raise KeySyntaxError(
            argument,
            f"{where} is not in the DICOM data dictionary, so its VR is not known",
        )
    vr = dictionary_VR(tag).split(" or ")[0]  # "US or SS": the first, as DCMTK does
    key = Key(tag, vr, text)
    _check_value(argument, key)
    return key


def _check_value(argument: str, key: Key) -> None:
    if key.text == "":
        return
    if key.vr in _NO_TEXT_VALUE_VRS:
        raise KeySyntaxError(
            argument,
            f"{key.name} {key.tag_text} has VR {key.vr}: it can only be asked for, "
            f"with an empty value ({key.tag_text[1:-1]}=)",
        )
    try:
        key.value()
    except ValueError:
        kind = "an integer" if key.vr in _INTEGER_VRS else "a number"
        raise KeySyntaxError(
            argument,
            f"{key.name} {key.tag_text} has VR {key.vr}: its value must be {kind} "
            "(several separated by a backslash)",
        ) from None


def parse_keys(arguments: list[str]) -> list[Key]:
    """All `--key` arguments in order; a later key for the same tag replaces an earlier one."""
    by_tag: dict[int, Key] = {}
    for argument in arguments:
        key = parse_key(argument)
        by_tag.pop(key.tag, None)
        by_tag[key.tag] = key
    return list(by_tag.values())
