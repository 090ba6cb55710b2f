"""Specific Character Set (0008,0005) of a query, from the locale the user types in.

gdcmscu always puts (0008,0005) in its queries, chosen from the locale: a name typed
in a UTF-8 terminal goes out as UTF-8 (ISO_IR 192); C, ASCII and ISO 8859-1 give
ISO_IR 100 (Latin alphabet No. 1, a superset of ASCII); the other parts of ISO 8859
their Defined Terms of PS3.3 C.12.1.1.2. A codeset with no DICOM term falls back to
ISO_IR 192: Python has already decoded the arguments, and UTF-8 can carry any text.

pydicom is imported only when text is encoded or decoded (`teach_pydicom`), not at
import: `dicomscu --store` and `--echo` never need it.
"""

from __future__ import annotations

import codecs
import functools
import locale
import re

UTF8 = "ISO_IR 192"
LATIN1 = "ISO_IR 100"

#: ISO 8859 part -> Defined Term (PS3.3 Table C.12-2; 8859-15 by CP 1787).
_ISO_8859_TERMS = {
    1: "ISO_IR 100",
    2: "ISO_IR 101",
    3: "ISO_IR 109",
    4: "ISO_IR 110",
    5: "ISO_IR 144",
    6: "ISO_IR 127",
    7: "ISO_IR 126",
    8: "ISO_IR 138",
    9: "ISO_IR 148",
    11: "ISO_IR 166",
    15: "ISO_IR 203",
}

#: Other locale codesets that DICOM has a single-byte or multi-byte term for.
_OTHER_TERMS = {
    "utf8": UTF8,
    "ansix3.41968": LATIN1,  # the C/POSIX locale's name for ASCII
    "ascii": LATIN1,
    "usascii": LATIN1,
    "646": LATIN1,
    "latin1": LATIN1,
    "tis620": "ISO_IR 166",
    "gb18030": "GB18030",
    "gbk": "GBK",
}


@functools.cache
def teach_pydicom() -> None:
    """pydicom 3.0 predates ISO_IR 203 (Latin alphabet No. 9, added to PS3.3 in 2018):
    teach it the Python codec so that values are encoded and responses decoded.
    Called before dicomscu has pydicom encode or decode a data set."""
    import pydicom.charset

    pydicom.charset.python_encoding.setdefault("ISO_IR 203", "iso8859_15")


def _normalized(codeset: str) -> str:
    return re.sub(r"[^a-z0-9.]", "", codeset.lower()).replace("iso8859", "iso8859-")


def charset_for_codeset(codeset: str) -> str:
    """The Specific Character Set term for a locale codeset name (`nl_langinfo(CODESET)`)."""
    name = _normalized(codeset)
    match = re.fullmatch(r"iso8859-(\d+)", name)
    if match:
        return _ISO_8859_TERMS.get(int(match[1]), UTF8)
    return _OTHER_TERMS.get(name.replace("-", ""), UTF8)


def locale_codeset() -> str:
    """The codeset of the LC_CTYPE locale (Python set it from the environment at start)."""
    try:
        return locale.nl_langinfo(locale.CODESET)
    except (AttributeError, ValueError):  # not on POSIX
        return locale.getpreferredencoding(False)


def locale_charset() -> str:
    """The Specific Character Set term for the current locale."""
    return charset_for_codeset(locale_codeset())


def python_codec(term: str) -> str:
    """The Python codec for a single Specific Character Set term."""
    teach_pydicom()
    import pydicom.charset

    return pydicom.charset.python_encoding.get(term, "utf-8")


def cannot_encode(text: str, term: str) -> str | None:
    """Why `text` cannot be written in `term`, or None when it can."""
    try:
        text.encode(python_codec(term))
    except UnicodeEncodeError as exc:
        bad = text[exc.start : exc.end]
        return f"{bad!r} cannot be written in {term} ({codecs.lookup(python_codec(term)).name})"
    return None
