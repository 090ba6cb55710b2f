"""The Specific Character Set (0008,0005) of a C-FIND response.

PS3.4 C.2.2.2: Specific Character Set "specifies how other Attributes are encoded in
the Request and Response Identifiers". Values are kept as Python strings, so a response
can be written in any character set that holds them. The choice, in order:

1. Only default repertoire (ASCII) text: the request's Specific Character Set if it had
   one (an SCU may expect to see it echoed), otherwise none.
2. Other text that the request's character set can encode: the request's, so that an
   SCU that only reads its own character set can read the answer.
3. Otherwise ISO_IR 192 (UTF-8), which encodes everything.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from pydicom import config
from pydicom.charset import python_encoding
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from dimse.archive.conditions import texts

UTF8 = "ISO_IR 192"
_TEXT_VRS = frozenset({"LO", "LT", "PN", "SH", "ST", "UC", "UT"})


def request_character_set(identifier: Dataset) -> tuple[str, ...]:
    """The defined terms of the request's Specific Character Set, () when absent."""
    element: DataElement | None = identifier.get(0x00080005)
    return tuple(t.strip() for t in texts(element.value)) if element is not None else ()


def element_strings(element: DataElement) -> Iterator[str]:
    """The text values of an element, those in sequence items included."""
    if element.VR == "SQ":
        for item in element.value or ():
            yield from dataset_strings(item)
    elif element.VR in _TEXT_VRS:
        yield from texts(element.value)


def dataset_strings(dataset: Dataset) -> Iterator[str]:
    """The text values of a data set, those in sequence items included."""
    for tag in dataset.keys():
        yield from element_strings(dataset[tag])


def _codec(terms: Sequence[str]) -> str | None:
    """The Python codec of a character set used without code extensions; None for the
    ISO 2022 sets and for ISO_IR 13 (their repertoire is not that of any Python codec:
    their answers go out in UTF-8)."""
    if len(terms) != 1:
        return None
    term = terms[0]
    if term in ("", "ISO_IR 6"):
        return "ascii"
    if term.startswith("ISO 2022") or term == "ISO_IR 13":
        return None
    return python_encoding.get(term)


def choose_character_set(strings: Iterable[str], requested: Sequence[str]) -> tuple[str, ...]:
    """The terms to put in the response's (0008,0005), () for none (see module
    docstring); `strings` are the response's text values (the ASCII ones may be left
    out)."""
    other = [s for s in strings if not s.isascii()]
    if not other:
        return tuple(requested)
    codec = _codec(requested) if requested else None
    if codec is not None:
        try:
            for s in other:
                s.encode(codec)
        except UnicodeEncodeError:
            pass
        else:
            return tuple(requested)
    return (UTF8,)


def character_set_element(terms: Sequence[str]) -> DataElement | None:
    """The (0008,0005) element for `terms`, None for none."""
    if not terms:
        return None
    value: str | list[str] = terms[0] if len(terms) == 1 else list(terms)
    return DataElement(
        0x00080005, "CS", value, already_converted=True, validation_mode=config.IGNORE
    )


def set_character_set(response: Dataset, requested: Sequence[str]) -> None:
    """Add (0008,0005) to `response` as `choose_character_set` decides."""
    element = character_set_element(choose_character_set(dataset_strings(response), requested))
    if element is not None:
        response.add(element)
