"""The Storage SOP classes (PS3.4 B.5), from pydicom's UID dictionary.

An SCP accepts all of them. An SCU that must propose them all at once (C-GET, where
the instances come back on the same association) can fit at most 128 presentation
contexts, so `STORAGE_SOP_CLASSES` starts with the classes met most in practice.

The full list is read from pydicom's dictionary at first use (`storage_sop_classes()`,
or the names `STORAGE_SOP_CLASSES` and `STORAGE_SOP_CLASS_SET`), not at import:
`dicomscu --store` imports this module and never needs pydicom.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    STORAGE_SOP_CLASSES: tuple[str, ...]
    STORAGE_SOP_CLASS_SET: frozenset[str]

# The classes every archive sees daily, first, so that a C-GET proposing a subset
# still covers them.
COMMON_STORAGE_SOP_CLASSES = (
    "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
    "1.2.840.10008.5.1.4.1.1.4",  # MR Image Storage
    "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography Image Storage
    "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray Image Storage - For Presentation
    "1.2.840.10008.5.1.4.1.1.1.2",  # Digital Mammography X-Ray - For Presentation
    "1.2.840.10008.5.1.4.1.1.6.1",  # Ultrasound Image Storage
    "1.2.840.10008.5.1.4.1.1.3.1",  # Ultrasound Multi-frame Image Storage
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture Image Storage
    "1.2.840.10008.5.1.4.1.1.20",  # Nuclear Medicine Image Storage
    "1.2.840.10008.5.1.4.1.1.128",  # Positron Emission Tomography Image Storage
    "1.2.840.10008.5.1.4.1.1.481.1",  # RT Image Storage
    "1.2.840.10008.5.1.4.1.1.481.2",  # RT Dose Storage
    "1.2.840.10008.5.1.4.1.1.481.3",  # RT Structure Set Storage
    "1.2.840.10008.5.1.4.1.1.481.5",  # RT Plan Storage
    "1.2.840.10008.5.1.4.1.1.88.11",  # Basic Text SR Storage
    "1.2.840.10008.5.1.4.1.1.88.22",  # Enhanced SR Storage
    "1.2.840.10008.5.1.4.1.1.88.33",  # Comprehensive SR Storage
    "1.2.840.10008.5.1.4.1.1.104.1",  # Encapsulated PDF Storage
    "1.2.840.10008.5.1.4.1.1.11.1",  # Grayscale Softcopy Presentation State Storage
    "1.2.840.10008.5.1.4.1.1.12.1",  # X-Ray Angiographic Image Storage
)


@functools.cache
def storage_sop_classes() -> tuple[str, ...]:
    """All the Storage SOP classes: the common ones first, then the others by UID."""
    from pydicom._uid_dict import UID_dictionary

    found = [
        uid
        for uid, (name, kind, _info, retired, _keyword) in UID_dictionary.items()
        if kind == "SOP Class"
        and "Storage" in name
        and "Commitment" not in name
        and uid.startswith("1.2.840.10008.5.1.4.1.1.")
        and retired != "Retired"
    ]
    rest = sorted(set(found) - set(COMMON_STORAGE_SOP_CLASSES))
    return COMMON_STORAGE_SOP_CLASSES + tuple(rest)


@functools.cache
def storage_sop_class_set() -> frozenset[str]:
    return frozenset(storage_sop_classes())


def __getattr__(name: str) -> object:
    """`STORAGE_SOP_CLASSES` and `STORAGE_SOP_CLASS_SET`, computed at first use."""
    if name == "STORAGE_SOP_CLASSES":
        return storage_sop_classes()
    if name == "STORAGE_SOP_CLASS_SET":
        return storage_sop_class_set()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
