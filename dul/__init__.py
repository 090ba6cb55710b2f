"""dul: the DICOM upper layer (PS3.8): PDU codec, state machine, transport.

The names below are the package's contract; see README.md for the map from the
sections of PS3.8 to the modules.
"""

from dul.errors import AbortReason, LocalProtocolError, PduError
from dul.pdu import (
    A_ABORT,
    A_ASSOCIATE_AC,
    A_ASSOCIATE_RJ,
    A_ASSOCIATE_RQ,
    A_RELEASE_RP,
    A_RELEASE_RQ,
    P_DATA_TF,
    Pdu,
    PresentationDataValue,
    decode_pdu,
    encode_pdu,
)

__all__ = [
    "A_ABORT",
    "A_ASSOCIATE_AC",
    "A_ASSOCIATE_RJ",
    "A_ASSOCIATE_RQ",
    "A_RELEASE_RP",
    "A_RELEASE_RQ",
    "P_DATA_TF",
    "AbortReason",
    "LocalProtocolError",
    "Pdu",
    "PduError",
    "PresentationDataValue",
    "decode_pdu",
    "encode_pdu",
]
