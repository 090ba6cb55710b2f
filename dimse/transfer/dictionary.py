"""What Implicit VR leaves out, from the data dictionary (PS3.6): which attributes are
sequences.

A data set in Implicit VR does not say which values are sequences. The walk
(`walk.py`) must know, to check that a sequence's value is items and nothing else,
and the conversion to Explicit VR (`recode.py`) to write SQ. The dictionary is
pydicom's; its module of tables is read here on its own, without importing pydicom
itself (a quarter of a second that `dicomscu --store` does not otherwise pay), and
pydicom's public dictionary is the fallback should that module ever move.
"""

from __future__ import annotations

import functools
import importlib.util


def _pydicom_tables() -> dict[int, tuple[str, ...]]:
    spec = importlib.util.find_spec("pydicom")
    locations = spec.submodule_search_locations if spec else None
    if locations:
        path = f"{next(iter(locations))}/_dicom_dict.py"
        tables = importlib.util.spec_from_file_location("dimse_transfer_dicom_dict", path)
        if tables is not None and tables.loader is not None:
            module = importlib.util.module_from_spec(tables)
            try:
                tables.loader.exec_module(module)
                return dict(module.DicomDictionary)
            except (OSError, SyntaxError, AttributeError):
                pass
    from pydicom._dicom_dict import DicomDictionary

    return dict(DicomDictionary)


@functools.cache
def sequence_tags() -> frozenset[int]:
    """The tags the dictionary gives VR SQ (repeating groups aside: none is a sequence
    but (50xx,2600), retired)."""
    return frozenset(tag for tag, entry in _pydicom_tables().items() if entry[0] == "SQ")
