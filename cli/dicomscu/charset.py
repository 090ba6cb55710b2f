"""Specific Character Set (0008,0005) of a query, from the locale the user types in.

gdcmscu always puts (0008,0005) in its queries, chosen from the locale: a name typed
in a UTF-8 terminal goes out as UTF-8 (ISO_IR 192); C, ASCII and ISO 8859-1 give
ISO_IR 100 (Latin alphabet No. 1, a superset of ASCII); the other parts of ISO 8859
their Defined Terms of PS3.3 C.12.1.1.2. A codeset with no DICOM term falls back to
ISO_IR 192: Python has already decoded the arguments, and UTF-8 can carry any text.

A user's key 8,5 replaces that choice, and may declare code extensions (several
values, ISO 2022: `\\ISO 2022 IR 87`). Either way each key's value must be writable in
the character set the identifier declares (`cannot_encode`): pydicom would otherwise
put `?` (a wildcard!) in place of what it cannot encode, with a mere warning.

pydicom is imported only when text is encoded or decoded (`teach_pydicom`), not at
import: `dicomscu --store` and `--echo` never need it.
"""

from __future__ import annotations

import functools
import locale
import re
import warnings
from collections.abc import Sequence

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


#: VRs whose repertoire (0008,0005) extends or replaces (PS3.5 6.1.2.2, 6.1.2.3); the
#: other text VRs (AE, CS, DA, UI...) use the default repertoire only.
EXTENSIBLE_VRS = frozenset({"SH", "LO", "UC", "ST", "LT", "UT", "PN"})

#: The default repertoire, ISO-IR 6 (PS3.5 6.1.2.1): ASCII. pydicom writes it as
#: Latin-1, which would let through what a peer cannot read.
_DEFAULT_TERMS = ("", "ISO_IR 6", "ISO 2022 IR 6")

#: Single-valued terms named in the message for an unknown one.
_SINGLE_TERMS = (
    "ISO_IR 100 (Latin-1)",
    "ISO_IR 101",
    "ISO_IR 109",
    "ISO_IR 110",
    "ISO_IR 126 (Greek)",
    "ISO_IR 127",
    "ISO_IR 138",
    "ISO_IR 144 (Cyrillic)",
    "ISO_IR 148",
    "ISO_IR 166",
    "ISO_IR 203",
    "ISO_IR 13",
    "ISO_IR 192 (UTF-8)",
    "GB18030",
    "GBK",
)


def declared_terms(text: str) -> list[str]:
    """The terms of a (0008,0005) value as typed: split at backslashes, the spaces
    around each removed (they are not significant in CS, PS3.5 6.2)."""
    return [term.strip() for term in text.split("\\")]


def _squeezed(term: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", term.upper())


def charset_problem(terms: Sequence[str]) -> str | None:
    """Why `terms`, the values of (0008,0005), cannot be used, or None when they can
    (PS3.3 C.12.1.1.2: value 1 may be empty for the default repertoire; several
    values mean ISO 2022 code extensions)."""
    teach_pydicom()
    import pydicom.charset

    known = pydicom.charset.python_encoding
    for number, term in enumerate(terms, start=1):
        if term == "" and number > 1:
            return f"value {number} is empty; only value 1 may be (the default repertoire)"
        if term not in known:
            near = [t for t in known if t and _squeezed(t) == _squeezed(term)]
            if near:
                hint = f"did you mean {near[0]!r}?"
            else:
                hint = f"known terms: {', '.join(_SINGLE_TERMS)}; with code extensions, "
                hint += "ISO 2022 IR nnn terms, e.g. \\ISO 2022 IR 87 (Japanese)"
            return f"{term!r} is not a Defined Term of PS3.3 C.12.1.1.2 that dicomscu knows; {hint}"
        if len(terms) > 1 and term and not term.startswith("ISO 2022 "):
            if term in pydicom.charset.STAND_ALONE_ENCODINGS:
                return f"{term} allows no code extensions (PS3.3 C.12.1.1.2): give it alone"
            return (
                f"{term!r} is a term without code extensions: with several values, each is "
                "an ISO 2022 term, e.g. ISO 2022 IR 100 (PS3.3 C.12.1.1.2)"
            )
    return None


def python_codecs(terms: Sequence[str]) -> list[str]:
    """The Python codecs pydicom uses for `terms` (checked by `charset_problem`), but
    ASCII for a default repertoire in value 1 (PS3.5 6.1.2.1)."""
    teach_pydicom()
    import pydicom.charset

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # known terms give none; never let one through
        codecs = pydicom.charset.convert_encodings(list(terms))
    if terms[0] in _DEFAULT_TERMS:
        codecs[0] = "ascii"
    return codecs


def _encodable(text: str, codecs: list[str]) -> bool:
    """Whether pydicom can write `text` with `codecs`, code extensions included
    (PS3.5 6.1.2.4, 6.1.2.5). pydicom warns and writes `?` where it cannot: here that
    warning is the answer."""
    import pydicom.charset

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            pydicom.charset.encode_string(text, codecs)
        except (UserWarning, UnicodeError):
            return False
    return True


def describe(terms: Sequence[str]) -> str:
    """A character set as the user gave it: `ISO_IR 100`, `\\ISO 2022 IR 87`."""
    return "the default repertoire" if list(terms) == [""] else "\\".join(terms)


def cannot_encode(text: str, terms: str | Sequence[str]) -> str | None:
    """Why `text` cannot be written in the character set of `terms` (one term or the
    values of (0008,0005), checked by `charset_problem`), or None when it can."""
    terms = [terms] if isinstance(terms, str) else list(terms)
    codecs = python_codecs(terms)
    if _encodable(text, codecs):
        return None
    bad = "".join(dict.fromkeys(c for c in text if not _encodable(c, codecs)))
    return f"{bad!r} cannot be written in {describe(terms)} ({', '.join(codecs)})"
