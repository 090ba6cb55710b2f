"""Decompressing encapsulated Pixel Data (PS3.5 A.4), for a peer that takes nothing else.

The decoding is pydicom's (its pixel data back ends, `pydicom.pixels`) with the
pylibjpeg family of codecs: pylibjpeg-libjpeg for JPEG and JPEG-LS, pylibjpeg-openjpeg
for JPEG 2000 and HTJ2K, pylibjpeg-rle or pydicom's own RLE decoder. They are
wheels on PyPI, kept by pydicom's authors and wired into pydicom's decoders, which
is why they are chosen over python-gdcm; they come with the optional extra
`dicom-ul[transcode]`, and without it a refusal says what to install.

Only the pixels go through pydicom. The data set is otherwise kept byte for byte:
the decoded Pixel Data and the attributes decoding changes are spliced into the
original bytes (`_splice`), so no text or private element is written back from
pydicom's values. The changed attributes are those pydicom's `decompress` changes:

- Pixel Data, now native (OB for 8 bits allocated or fewer, else OW; PS3.5 8.1.1);
- Photometric Interpretation and Planar Configuration, as the decoder gives them:
  the colour space is kept as coded (`as_rgb=False`), so a lossless YBR image stays
  exactly what was coded (a conversion to RGB would round);
- Number of Frames, where present;
- for a lossy syntax, Lossy Image Compression "01" with its Method and Ratio
  (PS3.3 C.7.6.1.1.5): an image once compressed with loss must say so for ever.
  An instance already marked "01" keeps its own values.

The SOP Instance UID is kept: decompression adds no loss of its own.
"""

from __future__ import annotations

import logging
import struct
import warnings
from dataclasses import dataclass

from dimse.transfer.syntaxes import ENCAPSULATED_UNCOMPRESSED, TransferSyntax
from dimse.transfer.walk import PIXEL_DATA, Element, walk

log = logging.getLogger("dimse.transfer")

INSTALL_HINT = "install the decoders with pip install 'dicom-ul[transcode]'"

_PHOTOMETRIC_INTERPRETATION = 0x00280004
_PLANAR_CONFIGURATION = 0x00280006
_NUMBER_OF_FRAMES = 0x00280008
_LOSSY_IMAGE_COMPRESSION = 0x00282110
_LOSSY_RATIO = 0x00282112
_LOSSY_METHOD = 0x00282114
#: Colour spaces whose chrominance is subsampled, which only compressed data can be.
_SUBSAMPLED = frozenset({"YBR_FULL_422", "YBR_PARTIAL_422", "YBR_PARTIAL_420"})


class CannotDecompress(Exception):
    """Why an instance's pixel data cannot be decompressed here (a sentence)."""


@dataclass(frozen=True, slots=True)
class Decoded:
    """The decompressed data set (Explicit VR Little Endian) and what was done."""

    data: bytes
    lossy: bool


def decoder_available(syntax: TransferSyntax) -> str | None:
    """None when pixel data in `syntax` can be decompressed here, else why not."""
    if syntax.uid == ENCAPSULATED_UNCOMPRESSED:
        return None
    try:
        from pydicom.pixels.decoders.base import get_decoder
    except ImportError:  # pragma: no cover - pydicom is a dependency
        return f"pydicom cannot decode pixel data; {INSTALL_HINT}"
    try:
        decoder = get_decoder(syntax.uid)
    except NotImplementedError:
        return f"no decoder for {syntax.name} exists in pydicom"
    if not decoder.is_available:
        return f"no decoder for {syntax.name} is installed; {INSTALL_HINT}"
    return None


def _element(tag: int, vr: bytes, value: bytes) -> bytes:
    """An Explicit VR Little Endian element, its value padded to even length."""
    if len(value) % 2:
        value += b"\x00" if vr in (b"OB", b"UI") else b" "
    if vr in (b"OB", b"OW"):
        return struct.pack("<HH2sHI", tag >> 16, tag & 0xFFFF, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr, len(value)) + value


def _text(data: bytes, element: Element | None) -> str:
    if element is None:
        return ""
    return data[element.start : element.end].decode("latin-1").strip("\x00 ")


def _splice(data: bytes, elements: list[Element], changes: dict[int, bytes | None]) -> bytes:
    """The data set with the elements of `changes` replaced (None: removed) or added."""
    parts: list[bytes] = []
    pending = sorted(changes.items())
    for element in elements:
        while pending and pending[0][0] < element.tag:
            _tag, new = pending.pop(0)
            if new is not None:
                parts.append(new)
        if pending and pending[0][0] == element.tag:
            _, new = pending.pop(0)
            if new is not None:
                parts.append(new)
            continue
        parts.append(data[element.offset : element.end])
    parts += [new for _, new in pending if new is not None]
    return b"".join(parts)


def _decode_pixels(
    data: bytes, syntax: TransferSyntax, pixel: Element
) -> tuple[bytes, dict[str, object]]:
    """(native Pixel Data, the image pixel attributes after decoding) by pydicom."""
    if syntax.uid == ENCAPSULATED_UNCOMPRESSED:  # PS3.5 A.4.11: each frame as it is
        fragments = (pixel.fragments or [])[1:]
        return b"".join(data[start : start + length] for start, length in fragments), {}
    import io

    from pydicom.dataset import FileMetaDataset
    from pydicom.filereader import read_dataset
    from pydicom.pixels.utils import decompress
    from pydicom.uid import UID

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = read_dataset(io.BytesIO(data), False, True)
        dataset.file_meta = FileMetaDataset()
        dataset.file_meta.TransferSyntaxUID = UID(syntax.uid)
        decompress(dataset, as_rgb=False, generate_instance_uid=False)
    for warning in caught:
        log.info("pydicom, decompressing %s: %s", syntax.name, warning.message)
    photometric: str = str(dataset.get("PhotometricInterpretation", "") or "")
    if photometric in _SUBSAMPLED:
        # The decoders give every sample of every pixel: native data is YBR_FULL, as
        # PS3.3 C.7.6.3.1.2 says of a decompressed YBR_FULL_422 image.
        photometric = "YBR_FULL"
    changed: dict[str, object] = {
        "photometric": photometric,
        "planar": dataset.get("PlanarConfiguration"),
        "frames": dataset.get("NumberOfFrames"),
    }
    return bytes(dataset.PixelData), changed


def decompress(data: bytes, syntax: TransferSyntax) -> Decoded:
    """The Explicit VR Little Endian data set `data` (in encapsulated `syntax`) with
    its Pixel Data decompressed; `CannotDecompress` with the reason otherwise."""
    problem = decoder_available(syntax)
    if problem is not None:
        raise CannotDecompress(problem)
    shape = walk(data, implicit=False, little=True, keep=True)
    assert shape.elements is not None
    by_tag = {element.tag: element for element in shape.elements}
    pixel = by_tag.get(PIXEL_DATA)
    if pixel is None or pixel.fragments is None:
        raise CannotDecompress("the data set has no encapsulated Pixel Data to decompress")
    bits = by_tag.get(0x00280100)
    bits_allocated = (
        struct.unpack_from("<H", data, bits.start)[0] if bits and bits.end - bits.start == 2 else 0
    )
    try:
        native, attributes = _decode_pixels(data, syntax, pixel)
    except CannotDecompress:
        raise
    except Exception as exc:  # a codec's error about the stream: a reason, not a crash
        raise CannotDecompress(f"the {syntax.name} pixel data cannot be decoded: {exc}") from None
    changes: dict[int, bytes | None] = {
        PIXEL_DATA: _element(PIXEL_DATA, b"OB" if bits_allocated <= 8 else b"OW", native)
    }
    if attributes.get("photometric"):
        changes[_PHOTOMETRIC_INTERPRETATION] = _element(
            _PHOTOMETRIC_INTERPRETATION, b"CS", str(attributes["photometric"]).encode("ascii")
        )
    if attributes.get("planar") is not None:
        changes[_PLANAR_CONFIGURATION] = _element(
            _PLANAR_CONFIGURATION,
            b"US",
            struct.pack("<H", int(attributes["planar"])),  # type: ignore[call-overload]
        )
    if syntax.lossy and _text(data, by_tag.get(_LOSSY_IMAGE_COMPRESSION)) != "01":
        compressed = sum(length for _, length in pixel.fragments)
        ratio = f"{len(native) / max(compressed, 1):.4g}"[:16]
        changes[_LOSSY_IMAGE_COMPRESSION] = _element(_LOSSY_IMAGE_COMPRESSION, b"CS", b"01")
        changes[_LOSSY_RATIO] = _element(_LOSSY_RATIO, b"DS", ratio.encode("ascii"))
        changes[_LOSSY_METHOD] = _element(_LOSSY_METHOD, b"CS", syntax.method.encode("ascii"))
    return Decoded(_splice(data, shape.elements, changes), syntax.lossy)
