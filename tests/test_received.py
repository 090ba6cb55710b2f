"""dimse/received.py on its own: the check made before a C-STORE is acknowledged
(PS3.4 B.2.3; ROBUSTNESS 28 and 41). The archive checks the UIDs a second time from
what it indexes; these tests hold the first check to its answers without the second."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from dimse.datasets import encode_dataset
from dimse.received import check_data_set
from dimse.status import StoreStatus

EXPLICIT_LE = "1.2.840.10008.1.2.1"
CT = "1.2.840.10008.5.1.4.1.1.2"
INSTANCE = "1.2.826.0.1.3680043.8.498.28.1"


def encoded() -> bytes:
    ds = Dataset()
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = INSTANCE
    ds.PatientName = "Doe^John"
    return encode_dataset(ds, EXPLICIT_LE)


def test_the_command_s_instance_passes() -> None:
    assert check_data_set(encoded(), EXPLICIT_LE, CT, INSTANCE) is None


@pytest.mark.parametrize(
    ("sop_class", "sop_instance", "named"),
    [
        ("1.2.840.10008.5.1.4.1.1.4", INSTANCE, "(0008,0016)"),
        (CT, "1.2.826.0.1.3680043.8.498.28.2", "(0008,0018)"),
    ],
)
def test_a_data_set_of_another_instance_is_a900_naming_the_element(
    sop_class: str, sop_instance: str, named: str
) -> None:
    refusal = check_data_set(encoded(), EXPLICIT_LE, sop_class, sop_instance)
    assert refusal is not None
    assert refusal.status == StoreStatus.DATA_SET_DOES_NOT_MATCH_SOP_CLASS
    assert named in refusal.comment and len(refusal.comment) <= 64


def test_a_data_set_cut_short_is_c000() -> None:
    refusal = check_data_set(encoded()[:-3], EXPLICIT_LE, CT, INSTANCE)
    assert refusal is not None
    assert refusal.status == StoreStatus.CANNOT_UNDERSTAND
