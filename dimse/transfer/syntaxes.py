"""The transfer syntaxes (PS3.5 Annex A; UIDs from PS3.6 Table A-1): one table.

Each row says how a data set in that syntax is laid out, which is all that reading,
checking and converting it needs:

- `implicit`, `little`: the element headers and values (PS3.5 7.1.2, 7.1.3, 7.3);
- `deflated`: the whole data set is a raw deflate stream of Explicit VR Little Endian
  (A.5);
- `encapsulated`: the data set is Explicit VR Little Endian and the Pixel Data is
  fragments of a compressed stream (A.4);
- `lossy`: the compression may have lost information, so decompressing it needs the
  user's leave, and marks the instance as PS3.3 C.7.6.1.1.5 requires; `method` is its
  Lossy Image Compression Method term (C.7.6.1.1.5.1).

JPEG 2000 (4.91), JPEG-LS Near-Lossless (4.81) and HTJ2K (4.203) may hold lossless
streams too; they count as lossy here, as DCMTK counts them: nothing in the data set
proves otherwise.

A syntax that is not in the table is unknown: we neither accept it nor send in it,
since we could not check the data set's structure.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TransferSyntax:
    uid: str
    name: str
    implicit: bool = False
    little: bool = True
    deflated: bool = False
    encapsulated: bool = False
    lossy: bool = False
    method: str = ""  # Lossy Image Compression Method (0028,2114) when lossy

    @property
    def native(self) -> bool:
        """Uncompressed pixel data (deflate compresses the whole data set, not pixels)."""
        return not self.encapsulated


IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
ENCAPSULATED_UNCOMPRESSED = "1.2.840.10008.1.2.1.98"
DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.99"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"
RLE_LOSSLESS = "1.2.840.10008.1.2.5"

_T = TransferSyntax
_JPEG = "ISO_10918_1"
_JPEG_LS = "ISO_14495_1"
_J2K = "ISO_15444_1"
_J2K_2 = "ISO_15444_2"
_HTJ2K = "ISO_15444_15"

# fmt: off
TABLE: dict[str, TransferSyntax] = {t.uid: t for t in (
    _T(IMPLICIT_VR_LITTLE_ENDIAN, "Implicit VR Little Endian", implicit=True),
    _T(EXPLICIT_VR_LITTLE_ENDIAN, "Explicit VR Little Endian"),
    _T(ENCAPSULATED_UNCOMPRESSED, "Encapsulated Uncompressed Explicit VR Little Endian", encapsulated=True),
    _T(DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, "Deflated Explicit VR Little Endian", deflated=True),
    _T(EXPLICIT_VR_BIG_ENDIAN, "Explicit VR Big Endian", little=False),
    _T("1.2.840.10008.1.2.4.50", "JPEG Baseline (Process 1)", encapsulated=True, lossy=True, method=_JPEG),
    _T("1.2.840.10008.1.2.4.51", "JPEG Extended (Process 2 & 4)", encapsulated=True, lossy=True, method=_JPEG),
    _T("1.2.840.10008.1.2.4.57", "JPEG Lossless, Non-Hierarchical (Process 14)", encapsulated=True),
    _T("1.2.840.10008.1.2.4.70", "JPEG Lossless, First-Order Prediction (Process 14 [SV1])", encapsulated=True),
    _T("1.2.840.10008.1.2.4.80", "JPEG-LS Lossless", encapsulated=True),
    _T("1.2.840.10008.1.2.4.81", "JPEG-LS Near-Lossless", encapsulated=True, lossy=True, method=_JPEG_LS),
    _T("1.2.840.10008.1.2.4.90", "JPEG 2000 (Lossless Only)", encapsulated=True),
    _T("1.2.840.10008.1.2.4.91", "JPEG 2000", encapsulated=True, lossy=True, method=_J2K),
    _T("1.2.840.10008.1.2.4.92", "JPEG 2000 Part 2 Multi-component (Lossless Only)", encapsulated=True),
    _T("1.2.840.10008.1.2.4.93", "JPEG 2000 Part 2 Multi-component", encapsulated=True, lossy=True, method=_J2K_2),
    _T("1.2.840.10008.1.2.4.100", "MPEG2 Main Profile / Main Level", encapsulated=True, lossy=True, method="ISO_13818_2"),
    _T("1.2.840.10008.1.2.4.101", "MPEG2 Main Profile / High Level", encapsulated=True, lossy=True, method="ISO_13818_2"),
    _T("1.2.840.10008.1.2.4.102", "MPEG-4 AVC/H.264 High Profile / Level 4.1", encapsulated=True, lossy=True, method="ISO_14496_10"),
    _T("1.2.840.10008.1.2.4.103", "MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1", encapsulated=True, lossy=True, method="ISO_14496_10"),
    _T("1.2.840.10008.1.2.4.104", "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video", encapsulated=True, lossy=True, method="ISO_14496_10"),
    _T("1.2.840.10008.1.2.4.105", "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video", encapsulated=True, lossy=True, method="ISO_14496_10"),
    _T("1.2.840.10008.1.2.4.106", "MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2", encapsulated=True, lossy=True, method="ISO_14496_10"),
    _T("1.2.840.10008.1.2.4.107", "HEVC/H.265 Main Profile / Level 5.1", encapsulated=True, lossy=True, method="ISO_23008_2"),
    _T("1.2.840.10008.1.2.4.108", "HEVC/H.265 Main 10 Profile / Level 5.1", encapsulated=True, lossy=True, method="ISO_23008_2"),
    _T("1.2.840.10008.1.2.4.201", "High-Throughput JPEG 2000 (Lossless Only)", encapsulated=True),
    _T("1.2.840.10008.1.2.4.202", "High-Throughput JPEG 2000 with RPCL Options (Lossless Only)", encapsulated=True),
    _T("1.2.840.10008.1.2.4.203", "High-Throughput JPEG 2000", encapsulated=True, lossy=True, method=_HTJ2K),
    _T(RLE_LOSSLESS, "RLE Lossless", encapsulated=True),
)}
# fmt: on

#: The uncompressed syntaxes, in the order we prefer to send and receive them.
UNCOMPRESSED = (EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_BIG_ENDIAN)

#: Every syntax we can check and keep as received, Explicit VR Little Endian first.
KNOWN = tuple(dict.fromkeys((*UNCOMPRESSED, *TABLE)))

#: The encapsulated syntaxes, and deflate: the others a C-GET may bring back.
COMPRESSED = tuple(uid for uid in KNOWN if TABLE[uid].encapsulated or TABLE[uid].deflated)


def clean(uid: str) -> str:
    """A UID as sent or stored, without its NUL or space padding."""
    return uid.strip("\x00 ")


def lookup(uid: str) -> TransferSyntax | None:
    """The table's row for `uid` (padding ignored), None for a syntax we do not know."""
    return TABLE.get(clean(uid))


def name_of(uid: str) -> str:
    """`uid` with its name, for messages: "1.2.840.10008.1.2.4.50 (JPEG Baseline...)"."""
    row = lookup(uid)
    return (
        f"{clean(uid)} ({row.name})"
        if row is not None
        else f"{clean(uid)} (an unknown transfer syntax)"
    )
