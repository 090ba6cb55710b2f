"""Opening the association every operation of dicomscu works in.

Echo, find, worklist and move propose their one SOP Class in Implicit VR Little
Endian only, as gdcmscu does: every SCP must accept it (PS3.5 10.1), and the responses
then print as gdcmscu prints them, `(0010,0010) ?? (PN) [...]`. Store and get propose
more (`client.store_contexts`, `client.query_contexts`): the instances' own syntaxes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from cli.options import Settings
from dimse import client
from dimse.datasets import IMPLICIT_VR_LITTLE_ENDIAN
from dul.negotiation import ProposedContext

log = logging.getLogger("dicomscu")


def open_association(
    settings: Settings,
    contexts: Sequence[ProposedContext],
    roles: Mapping[str, tuple[bool, bool]] | None = None,
) -> client.Association:
    """An association with the server of `settings`; a context manager that releases it.

    Raises the `dul.errors.AssociationError` kinds, each with its reason."""
    log.info(
        "connecting to %s:%d as %r, calling %r (%d presentation context(s) proposed)",
        settings.host,
        settings.port,
        settings.calling_ae,
        settings.called_ae,
        len(contexts),
    )
    return client.connect(
        settings.host,
        settings.port,
        calling_ae=settings.calling_ae,
        called_ae=settings.called_ae,
        contexts=list(contexts),
        roles=roles,
        timeouts=settings.timeouts,
        max_pdu=settings.max_pdu,
    )


def implicit_only(abstract_syntax: str) -> list[ProposedContext]:
    """One presentation context: `abstract_syntax` in Implicit VR Little Endian."""
    return [ProposedContext(abstract_syntax, (IMPLICIT_VR_LITTLE_ENDIAN,))]
