"""The text-only fast path of `encode_dataset` writes exactly what pydicom writes.

It is taken for most C-FIND responses; every data set it refuses goes to pydicom's
writer, so the only thing to prove is byte equality where it does not refuse.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pydicom
import pydicom.data
import pytest
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from dimse.datasets import (
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    _encode_text_only,
    encode_dataset,
)

TEXT_VRS = (
    "AE",
    "AS",
    "CS",
    "DA",
    "DS",
    "DT",
    "IS",
    "LO",
    "LT",
    "PN",
    "SH",
    "ST",
    "TM",
    "UI",
    "UT",
)


def pydicom_bytes(dataset: Dataset, implicit: bool) -> bytes:
    buffer = DicomBytesIO()
    buffer.is_little_endian = True
    buffer.is_implicit_VR = implicit
    write_dataset(buffer, dataset)
    return buffer.getvalue()


def text_subsets() -> list[tuple[str, Dataset]]:
    subsets = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The files bundled with pydicom only: get_testdata_files() would try to
        # download pydicom's other test data, and CI has no network.
        bundled = Path(pydicom.data.__file__).parent / "test_files"
        for path in sorted(str(p) for p in bundled.glob("*.dcm")):
            try:
                full = pydicom.dcmread(path, stop_before_pixels=True)
                subset = Dataset()
                for element in full:
                    if element.VR in TEXT_VRS:
                        subset.add(element)
                pydicom_bytes(subset, True)
            except Exception:
                continue
            subsets.append((path.rsplit("/", 1)[-1], subset))
    return subsets


@pytest.mark.parametrize("implicit", [True, False], ids=["implicit", "explicit"])
def test_the_fast_path_writes_what_pydicom_writes(implicit: bool) -> None:
    compared = 0
    for name, subset in text_subsets():
        fast = _encode_text_only(subset, implicit)
        if fast is None:
            continue
        assert fast == pydicom_bytes(subset, implicit), name
        compared += 1
    assert compared > 50  # the fast path really is taken


def test_a_response_takes_the_fast_path_and_anything_else_falls_back() -> None:
    response = Dataset()
    response.QueryRetrieveLevel = "IMAGE"
    response.PatientName = "Doe^John"
    response.InstanceNumber = "7"
    response.ModalitiesInStudy = ["CT", "MR"]
    response.RetrieveAETitle = ""
    assert _encode_text_only(response, True) is not None
    assert encode_dataset(response, IMPLICIT_VR_LITTLE_ENDIAN) == pydicom_bytes(response, True)
    response.PatientName = "Gérard^Jean"  # needs a character set: pydicom's writer
    response.SpecificCharacterSet = "ISO_IR 100"
    assert _encode_text_only(response, False) is None
    assert encode_dataset(response, EXPLICIT_VR_LITTLE_ENDIAN) == pydicom_bytes(response, False)
    response.Rows = 512  # a binary VR: pydicom's writer
    assert _encode_text_only(response, True) is None
