"""The instances the benchmark sends and queries, built with pydicom from a fixed seed.

One template per size is encoded once with pydicom; the copies differ only in their
SOP Instance UID and Instance Number, replaced in the bytes (same lengths), so that
10,000 distinct instances take a second, not a minute. Everything is written under
the run's temporary directory and built at most once per run (`DataCache`).

- small: CT Image Storage, Explicit VR Little Endian, 64 x 60 16-bit pixels: 8.2 KB files.
- large: the same, 1024 x 1024 16-bit pixels: 2 MiB of pixel data a file.
- huge:  one instance whose pixel data is `size` bytes (1 GiB in the full run),
         written in 4 MiB chunks, never held whole in memory.

All instances of one set are in one study and one series of one patient, so that an
image-level C-FIND on that series matches them all (W4).
"""

from __future__ import annotations

import io
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import UID, ExplicitVRLittleEndian

SEED = 20240229
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
#: The SOP Instance UIDs are ROOT.<study n>.<10**7 + instance number>: same length for all.
_BASE_NUMBER = 10**7
_CHUNK = 4 << 20


@dataclass(frozen=True)
class InstanceSet:
    """A directory of `count` instance files (nothing else in it), one series."""

    name: str
    directory: Path
    files: tuple[Path, ...]
    file_bytes: int  # the size of one file
    pixel_bytes: int  # the pixel data of one instance
    patient_id: str
    study_uid: str
    series_uid: str

    @property
    def count(self) -> int:
        return len(self.files)

    @property
    def total_bytes(self) -> int:
        return self.file_bytes * self.count


def _uid_root(rng: random.Random) -> str:
    # 2.25.<a 128-bit integer> is a UID anyone may make (PS3.5 B.2); a fixed seed makes it
    # the same on every run.
    return f"2.25.{rng.getrandbits(96)}"


def _template(name: str, rows: int, columns: int, rng: random.Random) -> Dataset:
    root = _uid_root(rng)
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = f"{root}.3.{_BASE_NUMBER}"
    ds.StudyInstanceUID = f"{root}.1"
    ds.SeriesInstanceUID = f"{root}.2"
    ds.PatientID = f"BENCH-{name.upper()}"
    ds.PatientName = f"Bench^{name.capitalize()}"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyDate = "20240229"
    ds.StudyTime = "120000"
    ds.AccessionNumber = f"ACC-{name.upper()}"
    ds.StudyID = "1"
    ds.StudyDescription = f"dicom-ul benchmark ({name})"
    ds.ReferringPhysicianName = "Referring^Doctor"
    ds.Modality = "CT"
    ds.SeriesNumber = 1
    ds.SeriesDescription = f"benchmark {name}"
    ds.InstanceNumber = "99999999"  # 8 characters, replaced by %08d in the copies
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.ContentDate = "20240229"
    ds.ContentTime = "120001"
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(CT_IMAGE_STORAGE)
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    return ds


def _encode(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def write_series(
    directory: Path, name: str, count: int, rows: int, columns: int, seed: int = SEED
) -> InstanceSet:
    """`count` instances of rows x columns 16-bit pixels in directory/NNNNNN.dcm."""
    rng = random.Random(f"{seed}-{name}")
    ds = _template(name, rows, columns, rng)
    pixel_bytes = rows * columns * 2
    ds.PixelData = rng.randbytes(pixel_bytes)
    data = _encode(ds)
    uid = ds.SOPInstanceUID.encode()
    assert data.count(uid) == 2, "the SOP Instance UID is in the meta and the data set"
    assert data.count(b"99999999") == 1
    prefix = uid[: -len(str(_BASE_NUMBER))]
    directory.mkdir(parents=True, exist_ok=True)
    files = []
    for n in range(1, count + 1):
        copy = data.replace(uid, prefix + str(_BASE_NUMBER + n).encode()).replace(
            b"99999999", b"%08d" % n
        )
        path = directory / f"{n:06d}.dcm"
        path.write_bytes(copy)
        files.append(path)
    return InstanceSet(
        name,
        directory,
        tuple(files),
        len(data),
        pixel_bytes,
        str(ds.PatientID),
        str(ds.StudyInstanceUID),
        str(ds.SeriesInstanceUID),
    )


def write_huge(directory: Path, pixel_bytes: int, seed: int = SEED) -> InstanceSet:
    """One instance with `pixel_bytes` of pixel data (a multiple of 2 x 32768), streamed
    to disk: the header from pydicom, then (7FE0,0010) OW and its value in chunks."""
    columns = 32768
    if pixel_bytes % (2 * columns):
        raise ValueError(f"pixel_bytes must be a multiple of {2 * columns}")
    rows = pixel_bytes // (2 * columns)
    if not 0 < rows <= 0xFFFF:
        raise ValueError(f"{pixel_bytes} bytes of pixel data need {rows} rows: not a US")
    rng = random.Random(f"{seed}-huge")
    ds = _template("huge", rows, columns, rng)
    uid = ds.SOPInstanceUID[: -len(str(_BASE_NUMBER))] + str(_BASE_NUMBER + 1)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.InstanceNumber = "1"
    header = _encode(ds)
    block = rng.randbytes(1 << 20)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "000001.dcm"
    with path.open("wb") as f:
        f.write(header)
        f.write(struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, pixel_bytes))
        chunk = block * (_CHUNK // len(block))
        left = pixel_bytes
        while left:
            piece = chunk[: min(left, len(chunk))]
            f.write(piece)
            left -= len(piece)
    return InstanceSet(
        "huge",
        directory,
        (path,),
        path.stat().st_size,
        pixel_bytes,
        str(ds.PatientID),
        str(ds.StudyInstanceUID),
        str(ds.SeriesInstanceUID),
    )


class DataCache:
    """Builds each instance set once per run, under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._sets: dict[tuple[str, int], InstanceSet] = {}

    def small(self, count: int) -> InstanceSet:
        """`count` instances of about 8 KB (W1, W3, W4). The first n of a larger set are
        not reused for a smaller one: each set is its own directory (storescu +sd sends
        a whole directory)."""
        return self._get("small", count, lambda d: write_series(d, "small", count, 60, 64))

    def large(self, count: int) -> InstanceSet:
        """`count` instances of 2 MiB of pixel data (W2, W3)."""
        return self._get("large", count, lambda d: write_series(d, "large", count, 1024, 1024))

    def huge(self, pixel_bytes: int) -> InstanceSet:
        """One instance of `pixel_bytes` of pixel data (W6)."""
        return self._get("huge", pixel_bytes, lambda d: write_huge(d, pixel_bytes))

    def _get(self, kind: str, size: int, build: Callable[[Path], InstanceSet]) -> InstanceSet:
        key = (kind, size)
        if key not in self._sets:
            self._sets[key] = build(self.root / f"{kind}-{size}")
        return self._sets[key]
