"""The Value Representations as the encoding sees them (PS3.5 6.2, Table 6.2-1; 7.1.2).

Two facts per VR matter to the bytes:

- the header form in Explicit VR (7.1.2): most VRs have a 2-byte Value Length; the
  VRs of `LONG` have 2 reserved bytes and a 4-byte Value Length;
- the word size by which a value's bytes are reversed when the byte order changes
  (7.3): 2 for US, SS, OW and AT (a pair of 16-bit numbers), 4 for UL, SL, FL, OF and
  OL, 8 for FD, OD, SV, UV and OV. Text is a sequence of bytes and never swapped;
  nor are OB and UN ("OB and UN are not" affected by byte order, 6.2).

Pixel Data (7FE0,0010) is the exception the tables of Annex A make: see `recode.py`.
"""

from __future__ import annotations

#: Explicit VR headers with 2 reserved bytes and a 4-byte length (PS3.5 Table 7.1-1).
LONG = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
#: Explicit VR headers with a 2-byte length (PS3.5 Table 7.1-2).
SHORT = frozenset(
    {b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT"}
    | {b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US"}
)
#: Every VR of PS3.5 Table 6.2-1.
ALL = LONG | SHORT

#: Bytes reversed together when the byte order changes (PS3.5 7.3); absent: none.
WORD_SIZE: dict[bytes, int] = {
    b"US": 2,
    b"SS": 2,
    b"OW": 2,
    b"AT": 2,
    b"UL": 4,
    b"SL": 4,
    b"FL": 4,
    b"OF": 4,
    b"OL": 4,
    b"FD": 8,
    b"OD": 8,
    b"SV": 8,
    b"UV": 8,
    b"OV": 8,
}

#: The largest value a 2-byte Value Length can give (an even length, PS3.5 7.1.1).
SHORT_MAX = 0xFFFE
