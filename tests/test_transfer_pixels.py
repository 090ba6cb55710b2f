"""`dimse.transfer.pixels` and `dimse.transfer.convert`: decompressing encapsulated
Pixel Data (PS3.5 A.4) and choosing and making the syntax an instance is sent in
(PS3.4 B.4.1).

Every decompressed copy is judged by tests/fidelity.py against pydicom's own decoding
of the source: the same elements, the same pixel arrays, and a lossy source marked
Lossy Image Compression "01" (PS3.3 C.7.6.1.1.5).
"""

from __future__ import annotations

import re
from pathlib import Path

import pydicom
import pydicom.encaps
import pytest

from dimse.datasets import inflate
from dimse.file_check import check_file
from dimse.files import Part10Info, part10_bytes_header
from dimse.transfer.convert import Decompress, Unconvertible, choose, convert, convert_bytes
from dimse.transfer.pixels import CannotDecompress, decoder_available, decompress
from dimse.transfer.recode import Encoding, recode_bytes
from dimse.transfer.syntaxes import (
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    RLE_LOSSLESS,
    TransferSyntax,
    lookup,
)
from tests.fidelity import decompression_problems, differences, read
from tests.test_transfer_walk import DATA_ROOT, INSTANCES

JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
JPEG_2000 = "1.2.840.10008.1.2.4.91"
EXPLICIT_LE = Encoding(implicit=False, little=True)
#: Files whose pixel data pydicom itself cannot decode.
UNDECODABLE = ("JPEG2000-embedded-sequence-delimiter.dcm", "JPEG-lossy.dcm")

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def syntax_of(uid: str) -> TransferSyntax:
    syntax = lookup(uid)
    assert syntax is not None
    return syntax


def explicit_le(info: Part10Info) -> bytes:
    """The file's data set, in the Explicit VR Little Endian its syntax requires."""
    data = info.path.read_bytes()[info.dataset_offset :]
    if info.encoding:
        own = syntax_of(info.encoding)
        data = recode_bytes(data, Encoding(own.implicit, own.little), EXPLICIT_LE)
    return data


def write(path: Path, info: Part10Info, syntax: str, data: bytes) -> Path:
    path.write_bytes(part10_bytes_header(info.sop_class_uid, info.sop_instance_uid, syntax) + data)
    return path


def sample(name: str) -> Part10Info:
    return check_file(DATA_ROOT / "test_files" / name)


COMPRESSED_FILES = [
    (name, info) for name, info in INSTANCES if syntax_of(info.transfer_syntax).encapsulated
]


def test_the_compressed_files_are_found() -> None:
    syntaxes = {info.transfer_syntax for _, info in COMPRESSED_FILES}
    assert {JPEG_BASELINE, JPEG_LS_LOSSLESS, JPEG_2000, RLE_LOSSLESS} <= syntaxes


@pytest.mark.parametrize(
    ("name", "info"), COMPRESSED_FILES, ids=[name for name, _ in COMPRESSED_FILES]
)
def test_decompressed_is_what_pydicom_decodes(name: str, info: Part10Info, tmp_path: Path) -> None:
    syntax = syntax_of(info.transfer_syntax)
    reason = decoder_available(syntax)
    if reason is not None:
        pytest.skip(reason)
    data = explicit_le(info)
    if name.endswith(UNDECODABLE):
        with pytest.raises(CannotDecompress) as caught:
            decompress(data, syntax)
        assert syntax.name in str(caught.value)
        return
    decoded = decompress(data, syntax)
    assert decoded.lossy == syntax.lossy
    out = write(tmp_path / "out.dcm", info, EXPLICIT_VR_LITTLE_ENDIAN, decoded.data)
    shape = check_file(out)
    assert (shape.sop_class_uid, shape.sop_instance_uid) == (
        info.sop_class_uid,
        info.sop_instance_uid,
    )
    assert not shape.encoding
    assert differences(info.path, out, decompressed=True) == []
    assert decompression_problems(info.path, out, syntax.lossy) == []


def test_a_lossy_source_is_marked_lossy(tmp_path: Path) -> None:
    """PS3.3 C.7.6.1.1.5: "01", the method (C.7.6.1.1.5.1) and the ratio."""
    dataset = pydicom.dcmread(DATA_ROOT / "test_files" / "SC_rgb_dcmtk_+eb+cr.dcm")
    for keyword in (
        "LossyImageCompression",
        "LossyImageCompressionMethod",
        "LossyImageCompressionRatio",
    ):
        delattr(dataset, keyword)
    source = tmp_path / "unmarked.dcm"
    dataset.save_as(source)
    info = check_file(source)
    assert info.transfer_syntax == JPEG_BASELINE
    decoded = decompress(explicit_le(info), syntax_of(JPEG_BASELINE))
    out = read(write(tmp_path / "out.dcm", info, EXPLICIT_VR_LITTLE_ENDIAN, decoded.data))
    assert out.LossyImageCompression == "01"
    assert out.LossyImageCompressionMethod == "ISO_10918_1"
    ratio = out["LossyImageCompressionRatio"].value
    text = str(ratio.original_string if hasattr(ratio, "original_string") else ratio)
    assert len(text) <= 16 and re.fullmatch(r"[0-9.+\-Ee]+", text)
    frames = pydicom.encaps.generate_frames(dataset.PixelData, number_of_frames=1)
    compressed = sum(len(frame) for frame in frames)
    native = dataset.Rows * dataset.Columns * dataset.SamplesPerPixel
    assert abs(float(text) - native / compressed) < 0.01 * native / compressed
    assert differences(source, tmp_path / "out.dcm", decompressed=True) == []
    assert decompression_problems(source, tmp_path / "out.dcm", True) == []


def test_a_source_already_marked_keeps_its_own_values(tmp_path: Path) -> None:
    info = sample("JPGExtended.dcm")  # "01", ratio 76, and no method
    before = read(info.path)
    assert before.LossyImageCompression == "01" and "LossyImageCompressionMethod" not in before
    decoded = decompress(explicit_le(info), syntax_of(info.transfer_syntax))
    after = read(write(tmp_path / "out.dcm", info, EXPLICIT_VR_LITTLE_ENDIAN, decoded.data))
    assert after.LossyImageCompression == "01"
    assert "LossyImageCompressionMethod" not in after
    assert after["LossyImageCompressionRatio"].value == before["LossyImageCompressionRatio"].value


def test_nothing_to_decompress() -> None:
    info = sample("CT_small.dcm")
    with pytest.raises(CannotDecompress):
        decompress(explicit_le(info), syntax_of(RLE_LOSSLESS))


# -- choose (PS3.4 B.4.1) --------------------------------------------------------------------

UNCOMPRESSED_ACCEPTED = (EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN)


def test_own_syntax_accepted_goes_as_it_is() -> None:
    accepted = [EXPLICIT_VR_LITTLE_ENDIAN, JPEG_BASELINE]
    assert choose(JPEG_BASELINE, "", accepted, Decompress.NEVER) == JPEG_BASELINE
    assert choose(EXPLICIT_VR_BIG_ENDIAN, "", [EXPLICIT_VR_BIG_ENDIAN]) == EXPLICIT_VR_BIG_ENDIAN


def test_uncompressed_goes_in_what_was_accepted() -> None:
    accepted = [IMPLICIT_VR_LITTLE_ENDIAN]
    assert choose(EXPLICIT_VR_LITTLE_ENDIAN, "", accepted) == IMPLICIT_VR_LITTLE_ENDIAN
    assert choose(EXPLICIT_VR_BIG_ENDIAN, "", accepted) == IMPLICIT_VR_LITTLE_ENDIAN
    both = [EXPLICIT_VR_BIG_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN]  # our order, not the peer's
    assert choose(DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, "", both) == IMPLICIT_VR_LITTLE_ENDIAN


def test_lossy_jpeg_2000_needs_leave() -> None:
    with pytest.raises(Unconvertible) as caught:
        choose(JPEG_2000, "", UNCOMPRESSED_ACCEPTED, Decompress.LOSSLESS)
    assert "lossy" in caught.value.brief
    assert len(caught.value.brief) <= 64  # it goes into an Error Comment (LO)
    if decoder_available(syntax_of(JPEG_2000)) is not None:
        pytest.skip("no JPEG 2000 decoder installed")
    assert choose(JPEG_2000, "", UNCOMPRESSED_ACCEPTED, Decompress.LOSSY) == (
        EXPLICIT_VR_LITTLE_ENDIAN
    )


def test_lossless_jpeg_ls_is_decompressed_unless_never() -> None:
    if decoder_available(syntax_of(JPEG_LS_LOSSLESS)) is not None:
        pytest.skip("no JPEG-LS decoder installed")
    accepted = [IMPLICIT_VR_LITTLE_ENDIAN]
    assert choose(JPEG_LS_LOSSLESS, "", accepted) == IMPLICIT_VR_LITTLE_ENDIAN
    with pytest.raises(Unconvertible) as caught:
        choose(JPEG_LS_LOSSLESS, "", accepted, Decompress.NEVER)
    assert "not decompressed" in caught.value.brief


def test_we_do_not_compress() -> None:
    with pytest.raises(Unconvertible) as caught:
        choose(EXPLICIT_VR_LITTLE_ENDIAN, "", [JPEG_BASELINE], Decompress.LOSSY)
    assert "do not compress" in caught.value.brief
    with pytest.raises(Unconvertible):
        choose("1.2.3.4.5", "", [EXPLICIT_VR_LITTLE_ENDIAN])


# -- convert ---------------------------------------------------------------------------------


def converted(info: Part10Info, target: str) -> bytes:
    result = convert(info, target)
    try:
        data = result.stream.read()
    finally:
        result.close()
    assert len(data) == result.length
    return data


def test_deflated_to_explicit_and_back(tmp_path: Path) -> None:
    info = sample("image_dfl.dcm")
    explicit = converted(info, EXPLICIT_VR_LITTLE_ENDIAN)
    assert explicit == inflate(info.path.read_bytes()[info.dataset_offset :])
    out = write(tmp_path / "explicit.dcm", info, EXPLICIT_VR_LITTLE_ENDIAN, explicit)
    assert differences(info.path, out) == []
    deflated = convert_bytes(
        explicit, EXPLICIT_VR_LITTLE_ENDIAN, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN
    )
    assert inflate(deflated) == explicit
    again = write(tmp_path / "deflated.dcm", info, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, deflated)
    assert differences(info.path, again) == []
    big = convert_bytes(deflated, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_BIG_ENDIAN)
    assert (
        differences(info.path, write(tmp_path / "big.dcm", info, EXPLICIT_VR_BIG_ENDIAN, big)) == []
    )


@pytest.mark.parametrize(
    ("name", "target"),
    [
        ("MR_small_RLE.dcm", EXPLICIT_VR_BIG_ENDIAN),
        ("SC_rgb_rle_16bit.dcm", IMPLICIT_VR_LITTLE_ENDIAN),
        ("MR_small_jpeg_ls_lossless.dcm", DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN),
    ],
)
def test_convert_decompresses_to_any_uncompressed_syntax(
    name: str, target: str, tmp_path: Path
) -> None:
    info = sample(name)
    reason = decoder_available(syntax_of(info.transfer_syntax))
    if reason is not None:
        pytest.skip(reason)
    out = write(tmp_path / "out.dcm", info, target, converted(info, target))
    assert differences(info.path, out, decompressed=True) == []


def test_a_compressed_file_in_implicit_vr_is_put_right(tmp_path: Path) -> None:
    """SC_rgb_jpeg.dcm says JPEG Baseline and holds Implicit VR: sent in its own syntax,
    the data set is recoded to the Explicit VR Little Endian A.4 requires."""
    info = sample("SC_rgb_jpeg.dcm")
    assert info.encoding == IMPLICIT_VR_LITTLE_ENDIAN
    data = converted(info, JPEG_BASELINE)
    out = write(tmp_path / "out.dcm", info, JPEG_BASELINE, data)
    assert not check_file(out).encoding
    assert differences(info.path, out) == []


def test_convert_names_the_file_when_it_cannot(tmp_path: Path) -> None:
    info = sample("JPEG-lossy.dcm")
    with pytest.raises(Unconvertible) as caught:
        convert(info, EXPLICIT_VR_LITTLE_ENDIAN)
    assert "JPEG-lossy.dcm" in str(caught.value)
