"""C-FIND responses on stdout, in the layout of GDCM's data set printer (gdcmscu's).

Per response: `Find Response: N` (N from 1; `WL Find Response: N` for a worklist, as
gdcmscu), one line per element, then a blank line. An element line is

    (gggg,eeee) VR [value]            for a response received in explicit VR
    (gggg,eeee) ?? (VR) [value]       for one in implicit VR (the VR from the dictionary)

left-justified in 57 columns, then 9 spaces, then `# <length>,<VM> <name>`: the length
of the value as encoded, the dictionary's VM and the attribute's name. The value is
shown as encoded, with its padding (`[PATIENT ]`); an empty value as `(no value)`.
Tags are written in lower-case hexadecimal and binary numbers (US, UL, FL...) without
brackets, as GDCM writes them; sequences as GDCM does, their items indented. Where
the dictionary's VM is a range (1-n) the number of values present is printed (so
`# 10,1 Specific Character Set`, as gdcmscu shows it). The NUL that pads a UI value
is not printed; the length still counts it.

Values are re-encoded to show them as sent: pydicom strips the padding when it
decodes, and PS3.5 6.2 fixes what the padding is, so encoding gives back the bytes.

`--json` prints the responses as one JSON array in the DICOM JSON Model (PS3.18 F.2),
one object per response, written as they arrive so that a failed query still leaves
a valid array.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from typing import TextIO

from pydicom.charset import convert_encodings, decode_bytes
from pydicom.datadict import dictionary_VM
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.sequence import Sequence

VALUE_COLUMNS = 57
GAP = " " * 9
INDENT = "  "
MAX_BINARY_SHOWN = 16  # bytes of an OB/OW/UN value shown before "..."

_TEXT_VRS = frozenset("AE AS CS DA DS DT IS LO LT PN SH ST TM UC UI UR UT".split())
_NUMBER_VRS = frozenset("US SS UL SL UV SV FL FD".split())
_STRICTLY_ASCII_VRS = frozenset("AE AS CS DA DS DT IS TM UI UR".split())


#: A pipe whose reader went: the exit status of a tool killed by SIGPIPE (128 + 13),
#: without a word, as the standard Unix tools end.
EXIT_PIPE = 141


def stdout_gone() -> None:
    """Point stdout at /dev/null: what is still buffered, and Python's flush at exit,
    then go nowhere instead of raising BrokenPipeError again."""
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, sys.stdout.fileno())
    finally:
        os.close(null)


def _tag_text(tag: int) -> str:
    return f"({tag >> 16:04x},{tag & 0xFFFF:04x})"


def _vr(element: DataElement) -> str:
    return str(element.VR).split(" or ")[0]


def _encoded(element: DataElement, encodings: list[str]) -> bytes:
    """The value bytes of `element` as PS3.5 encodes them (Implicit VR Little Endian)."""
    buffer = DicomBytesIO()
    buffer.is_little_endian = True
    buffer.is_implicit_VR = True
    if " or " in str(element.VR):
        element = DataElement(element.tag, _vr(element), element.value)
    write_data_element(buffer, element, encodings)
    return buffer.getvalue()[8:]  # tag (4) and length (4) come first


def _value_text(element: DataElement, raw: bytes, encodings: list[str]) -> str:
    vr = _vr(element)
    if not raw:
        return "(no value)"
    if vr in _TEXT_VRS:
        if vr == "UI":
            raw = raw.rstrip(b"\x00")
        if vr in _STRICTLY_ASCII_VRS:
            text = raw.decode("ascii", "replace")
        else:
            text = decode_bytes(raw, encodings, set())
        return f"[{text}]"
    if vr in _NUMBER_VRS:
        values = element.value if isinstance(element.value, list | tuple) else [element.value]
        return "\\".join(str(v) for v in values)
    if vr == "AT":
        values = element.value if isinstance(element.value, list | tuple) else [element.value]
        return "\\".join(_tag_text(int(v)) for v in values)
    shown = "\\".join(f"{b:02x}" for b in raw[:MAX_BINARY_SHOWN])
    return shown + ("..." if len(raw) > MAX_BINARY_SHOWN else "")


def _vm_text(element: DataElement) -> str:
    """The dictionary's VM; where it is a range (1-n), the number of values present,
    as in gdcmscu's `# 10,1 Specific Character Set`."""
    try:
        vm = dictionary_VM(element.tag)
    except KeyError:
        return str(element.VM)
    if "-" in vm and element.VM:
        return str(element.VM)
    return vm


def _name(element: DataElement) -> str:
    return element.name or "Unknown Tag & Data"


def _line(indent: str, text: str, comment: str) -> str:
    return f"{indent}{text}".ljust(VALUE_COLUMNS) + GAP + f"# {comment}"


def _vr_text(element: DataElement, implicit: bool) -> str:
    return f"?? ({_vr(element)})" if implicit else _vr(element)


def _encodings(dataset: Dataset, inherited: list[str]) -> list[str]:
    charset = dataset.get("SpecificCharacterSet")
    if charset is None:
        return inherited
    return list(convert_encodings(charset))


def element_lines(
    dataset: Dataset, implicit: bool, depth: int = 0, inherited: list[str] | None = None
) -> Iterator[str]:
    """One line per element of `dataset` (and of its sequences, indented)."""
    encodings = _encodings(dataset, inherited or ["iso8859"])
    indent = INDENT * depth
    for element in dataset:
        head = f"{_tag_text(element.tag)} {_vr_text(element, implicit)}"
        if _vr(element) == "SQ":
            yield from _sequence_lines(element, implicit, depth, encodings)
            continue
        try:
            raw = _encoded(element, encodings)
            value = _value_text(element, raw, encodings)
        except Exception as exc:  # a peer's value pydicom cannot write back: say so, go on
            yield _line(indent, f"{head} (value not shown: {exc})", f"?,? {_name(element)}")
            continue
        yield _line(indent, f"{head} {value}", f"{len(raw)},{_vm_text(element)} {_name(element)}")


def _sequence_lines(
    element: DataElement, implicit: bool, depth: int, encodings: list[str]
) -> Iterator[str]:
    indent = INDENT * depth
    items: Sequence = element.value
    undefined = bool(getattr(element, "is_undefined_length", False))
    length = "u/l" if undefined else str(len(_encoded(element, encodings)))
    head = f"{_tag_text(element.tag)} {_vr_text(element, implicit)}"
    yield _line(
        indent,
        f"{head} (Sequence with {'undefined' if undefined else 'defined'} length)",
        f"{length},{_vm_text(element)} {_name(element)}",
    )
    for item in items:
        item_undefined = bool(getattr(item, "is_undefined_length_sequence_item", False))
        kind = "undefined" if item_undefined else "defined"
        yield f"{indent}{INDENT}(fffe,e000) na (Item with {kind} length)"
        yield from element_lines(item, implicit, depth + 2, encodings)
        if item_undefined:
            yield f"{indent}{INDENT}(fffe,e00d)"
    if undefined:
        yield f"{indent}(fffe,e0dd)"


def _is_implicit(dataset: Dataset) -> bool:
    implicit, _little = dataset.original_encoding
    return implicit is not False  # unknown (built here): print as gdcmscu does, implicit


class ResponsePrinter:
    """Writes C-FIND identifiers to `out` as they arrive: GDCM's layout or a JSON array."""

    def __init__(self, out: TextIO, *, as_json: bool = False, worklist: bool = False) -> None:
        self.out = out
        self.as_json = as_json
        self.title = "WL Find Response" if worklist else "Find Response"
        self.count = 0
        self._started = False

    def start(self) -> None:
        if self.as_json and not self._started:
            self.out.write("[")
            self.out.flush()
        self._started = True

    def response(self, identifier: Dataset) -> None:
        self.start()
        self.count += 1
        if self.as_json:
            separator = "\n" if self.count == 1 else ",\n"
            self.out.write(separator + json.dumps(identifier.to_json_dict(), ensure_ascii=False))
        else:
            lines = [f"{self.title}: {self.count}"]
            lines.extend(element_lines(identifier, _is_implicit(identifier)))
            self.out.write("\n".join(lines) + "\n\n")
        self.out.flush()

    def finish(self) -> None:
        if self.as_json:
            self.start()
            self.out.write("\n]\n" if self.count else "]\n")
            self.out.flush()
