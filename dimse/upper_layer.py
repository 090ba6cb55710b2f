"""What a program of `dimse` needs from the upper layer, named in one place, so that
the programs speak to `dimse` only (`cli -> dimse -> dul`): the timeouts, the
association's errors, presentation contexts proposed, AE title rules, the user
identity sub-item, the implementation's identity, the PDU dump, and the supervisor
of several worker processes (`dul.drivers.prefork`).

TLS contexts are in `dimse.tls` (they import `ssl`, which a plain association does
without).
"""

from __future__ import annotations

from dul.admission import Tally
from dul.connection import Timeouts
from dul.drivers.prefork import Prefork, listen, tell_ready
from dul.drivers.recorder import PduRecorder, recording
from dul.drivers.server import HandOff
from dul.errors import (
    AssociationAborted,
    AssociationError,
    AssociationRejected,
    AssociationReleased,
    ConnectionFailed,
    DulTimeout,
)
from dul.negotiation import (
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    ProposedContext,
    valid_ae_title,
)
from dul.user_information import UserIdentityRQSubItem

__all__ = [
    "IMPLEMENTATION_CLASS_UID",
    "IMPLEMENTATION_VERSION_NAME",
    "AssociationAborted",
    "AssociationError",
    "AssociationRejected",
    "AssociationReleased",
    "ConnectionFailed",
    "DulTimeout",
    "HandOff",
    "PduRecorder",
    "Prefork",
    "ProposedContext",
    "Tally",
    "Timeouts",
    "UserIdentityRQSubItem",
    "listen",
    "recording",
    "tell_ready",
    "valid_ae_title",
]
