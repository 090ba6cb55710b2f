"""Opening the association every operation of dicomscu works in.

Echo, find, worklist and move propose their one SOP Class in Implicit VR Little
Endian only, as gdcmscu does: every SCP must accept it (PS3.5 10.1), and the responses
then print as gdcmscu prints them, `(0010,0010) ?? (PN) [...]`. Store and get propose
more (`client.store_contexts`, `client.query_contexts`): the instances' own syntaxes.

TLS and the user identity come from `settings` (`--tls*`, `--username`...). With
`--identity-response`, an association whose A-ASSOCIATE-AC does not confirm the
identity (no 59H sub-item, PS3.7 D.3.3.7) is aborted: the user asked for proof.

With `--dump-pdus`, the association is opened inside `dul.drivers.recorder.recording`, so
that its channel records every PDU (`dimse.client.connect` has no parameter for it).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from cli.dicomscu.options import Settings
from dimse import client
from dimse.datasets import IMPLICIT_VR_LITTLE_ENDIAN
from dimse.upper_layer import AssociationError, AssociationRejected, ProposedContext, recording

log = logging.getLogger("dicomscu")


def open_association(
    settings: Settings,
    contexts: Sequence[ProposedContext],
    roles: Mapping[str, tuple[bool, bool]] | None = None,
    async_window: int | None = None,
) -> client.Association:
    """An association with the server of `settings`; a context manager that releases it.

    Raises the `dul.errors.AssociationError` kinds, each with its reason."""
    identity = ""  # described for the log; dimse.identity (and its hashing) only when used
    if settings.user_identity is not None:
        from dimse.identity import describe

        identity = describe(settings.user_identity)
    log.info(
        "connecting to %s:%d%s as %r, calling %r (%d presentation context(s) proposed%s)",
        settings.host,
        settings.port,
        " over TLS" if settings.ssl_context is not None else "",
        settings.calling_ae,
        settings.called_ae,
        len(contexts),
        f"; {identity}" if identity else "",
    )
    try:
        with recording(settings.pdu_recorder):
            association = client.connect(
                settings.host,
                settings.port,
                calling_ae=settings.calling_ae,
                called_ae=settings.called_ae,
                contexts=list(contexts),
                roles=roles,
                timeouts=settings.timeouts,
                max_pdu=settings.max_pdu,
                ssl_context=settings.ssl_context,
                async_window=async_window,
                user_identity=settings.user_identity,
                decompress=settings.decompress,
                max_identifier=settings.max_identifier,
            )
    except AssociationRejected as exc:
        if settings.user_identity is not None and (exc.source, exc.reason) == (2, 1):
            log.warning(
                "the server may have refused the user identity (%s): PS3.7 D.3.3.7.3 has a "
                "server refuse one this way",
                identity,
            )
        raise
    if settings.identity_response and association.identity_response is None:
        association.abort()
        raise AssociationError(
            f"{settings.host}:{settings.port} accepted the association without confirming "
            f"the user identity (no positive response, PS3.7 D.3.3.7), which "
            "--identity-response asks for; association aborted"
        )
    return association


def implicit_only(abstract_syntax: str) -> list[ProposedContext]:
    """One presentation context: `abstract_syntax` in Implicit VR Little Endian."""
    return [ProposedContext(abstract_syntax, (IMPLICIT_VR_LITTLE_ENDIAN,))]
