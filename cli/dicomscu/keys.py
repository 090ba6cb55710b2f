"""Query keys as gdcmscu reads them: `-k/--key gggg,eeee[=VALUE]`.

The tag is two hexadecimal numbers with optional leading zeros (`10,10` is
(0010,0010)). One separator follows, `=` or `,`, and everything after it to the end of
the argument is the value, spaces included: `10,10="A*"` (the shell removes the
quotes), `10,10,A*`, `10,20=` and `10,20` (the last two: return this attribute, match
anything). The VR comes from the data dictionary, as in gdcmscu.

A key inside a sequence (dicomscu's own form; gdcmscu has none) names the sequence,
the item in brackets and, after a dot, the key inside it: `40,100[0].40,1=AA32` is
Scheduled Station AE Title in the item of the Scheduled Procedure Step Sequence, and
the form nests, `8,1110[0].8,1150=...`. A C-FIND identifier's sequence key holds one
item (PS3.4 C.2.2.2.6), so the only index is 0; another index, or a tag before `[`
that is not a sequence, is read here but refused when the query is built
(`structure_problem`), as a usage error rather than gdcmscu's `Could not read Tag`.

A key that cannot be read is reported as gdcmscu does, `Could not read Tag: X`, with
the reason after it. Whether a value suits its VR (a date, a UID...) is checked when
the query is built (`cli.dicomscu.key_values`).

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
#: One step into a sequence: `gggg,eeee[N].`, before the key inside it.
_STEP = re.compile(r"([0-9A-Fa-f]{1,4}),([0-9A-Fa-f]{1,4})\[([0-9]+)\]\.")
_SEQUENCE_ALONE = re.compile(r"[0-9A-Fa-f]{1,4},[0-9A-Fa-f]{1,4}\[[0-9]+\](?:[=,].*)?", re.DOTALL)

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


#: The sequences around a key, outermost first: (tag of the sequence, item index).
Path: TypeAlias = tuple[tuple[int, int], ...]


def tag_text(tag: int) -> str:
    """`(gggg,eeee)`, as the standard writes a tag."""
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


@dataclass(frozen=True, slots=True)
class Key:
    """One key: the tag, its VR from the dictionary, the value as typed, and the
    sequences it is inside (`path`, empty for a key of the identifier itself)."""

    tag: int
    vr: str
    text: str
    path: Path = ()

    @property
    def name(self) -> str:
        from pydicom.datadict import dictionary_description

        return dictionary_description(self.tag)

    @property
    def tag_text(self) -> str:
        return tag_text(self.tag)

    @property
    def where(self) -> str:
        """The key's place: `(0010,0010)`, or `(0040,0100)[0].(0040,0001)` in a sequence."""
        return "".join(f"{tag_text(tag)}[{index}]." for tag, index in self.path) + self.tag_text

    @property
    def address(self) -> tuple[Path, int]:
        """What two keys share when the later one replaces the earlier."""
        return self.path, self.tag

    def inside(self, sequence: int) -> Key:
        """This key moved into the item of `sequence` (a tag of VR SQ)."""
        return Key(self.tag, self.vr, self.text, ((sequence, 0), *self.path))

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


def _dictionary_tag(argument: str, group_text: str, element_text: str) -> tuple[int, str]:
    """(tag, VR) of one `gggg,eeee` of an argument; KeySyntaxError when it is no
    attribute of the dictionary."""
    from pydicom.datadict import dictionary_has_tag, dictionary_VR

    group, element = int(group_text, 16), int(element_text, 16)
    tag = (group << 16) | element
    where = tag_text(tag)
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
    return tag, dictionary_VR(tag).split(" or ")[0]  # "US or SS": the first, as DCMTK does


def parse_key(argument: str) -> Key:
    """Read one `--key` argument; raises KeySyntaxError with the reason."""
    path: list[tuple[int, int]] = []
    position = 0
    while (step := _STEP.match(argument, position)) is not None:
        sequence, _ = _dictionary_tag(argument, step[1], step[2])
        path.append((sequence, int(step[3])))
        position = step.end()
    match = _KEY.fullmatch(argument, position)
    if match is None and _SEQUENCE_ALONE.fullmatch(argument, position):
        raise KeySyntaxError(
            argument,
            "[N] is followed by a dot and the key inside the sequence "
            "(40,100[0].40,1=AA32); to ask for a whole sequence, give it empty (40,100=)",
        )
    if match is None:
        raise KeySyntaxError(
            argument,
            "a key is GGGG,EEEE=VALUE, group and element in hexadecimal, "
            'e.g. --key 10,10="DOE^*" or --key 10,20= to ask for Patient ID; '
            "a key inside a sequence is SQ[0].GGGG,EEEE=VALUE, e.g. --key 40,100[0].40,1=AA32",
        )
    tag, vr = _dictionary_tag(argument, match[1], match[2])
    key = Key(tag, vr, match[3] or "", tuple(path))
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


def structure_problem(key: Key) -> str | None:
    """Why a key cannot stand where it was typed, or None: each step of its path must
    be a sequence (VR SQ) and name its item 0, the one item a sequence key of a C-FIND
    identifier holds (PS3.4 C.2.2.2.6)."""
    from pydicom.datadict import dictionary_description, dictionary_VR

    for depth, (sequence, index) in enumerate(key.path):
        vr = dictionary_VR(sequence).split(" or ")[0]
        outer = "".join(f"{tag_text(t)}[{i}]." for t, i in key.path[:depth])
        name = dictionary_description(sequence)
        short = f"{sequence >> 16:x},{sequence & 0xFFFF:x}"
        if vr != "SQ":
            return (
                f"{outer}{tag_text(sequence)} {name} has VR {vr}, not SQ: it has no items, so "
                f"[{index}] cannot follow it (e.g. 40,100[0].40,1=AA32 is a key inside a sequence)"
            )
        if index != 0:
            return (
                f"{outer}{tag_text(sequence)}[{index}] {name}: a sequence key of a C-FIND "
                "identifier holds exactly one item (PS3.4 C.2.2.2.6), so the index is always 0: "
                f"write {short}[0]."
            )
    return None


def parse_keys(arguments: list[str]) -> list[Key]:
    """All `--key` arguments in order; a later key for the same tag (at the same place)
    replaces an earlier one."""
    return last_of_each([parse_key(argument) for argument in arguments])


def last_of_each(keys: list[Key]) -> list[Key]:
    """The keys with, for each address, only the last one given; in the order of those."""
    by_address: dict[tuple[Path, int], Key] = {}
    for key in keys:
        by_address.pop(key.address, None)
        by_address[key.address] = key
    return list(by_address.values())
