"""Opening an association as service user, the part every driver shares: the
A-ASSOCIATE-RQ built from what the caller asks, and what a closed TLS connection
means.

`dimse.client.connect` (blocking) and `dimse.aio.connect` (asyncio) take the same
arguments and differ only in how they wait.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dimse.scu import check_ae
from dul.errors import AssociationAborted, AssociationError, ConnectionFailed, DulTimeout
from dul.negotiation import ProposedContext, build_request
from dul.pdu import A_ASSOCIATE_RQ
from dul.user_information import UserIdentityRQSubItem


def association_request(
    calling_ae: str,
    called_ae: str,
    contexts: Sequence[ProposedContext],
    *,
    max_pdu: int,
    roles: Mapping[str, tuple[bool, bool]] | None,
    user_identity: UserIdentityRQSubItem | None,
    async_window: int | None,
) -> A_ASSOCIATE_RQ:
    """The A-ASSOCIATE-RQ; ValueError for an AE title we may not send.

    `async_window` proposes the Asynchronous Operations Window (PS3.7 D.3.3.3): up to
    that many requests outstanding at once (we perform one at a time)."""
    check_ae(calling_ae, "calling")
    check_ae(called_ae, "called")
    return build_request(
        calling_ae,
        called_ae,
        contexts,
        max_pdata_length=max_pdu,
        roles=roles,
        user_identity=user_identity,
        async_window=None if async_window is None else (async_window, 1),
    )


def tls_refusal(exc: AssociationError, host: str, port: int) -> ConnectionFailed | None:
    """What a TLS association that ended before its A-ASSOCIATE-AC means, if that is
    what happened: with TLS 1.3 the server checks our certificate after our side of
    the handshake is over, and its refusal arrives as a closed connection when we
    send the A-ASSOCIATE-RQ. None for other failures (a timeout, a rejection)."""
    if isinstance(exc, DulTimeout):  # a send that failed: timed out, or the peer closed
        import ssl  # imported already: this is a TLS association

        if not isinstance(exc.__cause__, ssl.SSLError | ConnectionError):
            return None
    elif not isinstance(exc, AssociationAborted):
        return None
    return ConnectionFailed(
        f"the TLS connection to {host}:{port} was closed before the association was "
        f"answered ({exc}); the server may require a client certificate, or refuse ours"
    )
