"""What a service provider is configured with, for every driver: `dimse.scp.Provider`
(blocking) and `dimse.aio.Provider` (asyncio) take the same options and make the same
acceptor policy and session settings from them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dimse.engine import Engine
from dimse.handlers import Handlers
from dimse.reassembly import DEFAULT_MAX_IDENTIFIER
from dimse.serve import Settings
from dimse.transfer.convert import Decompress
from dul.connection import Connection, Timeouts
from dul.negotiation import AcceptorPolicy, IdentityCheck
from dul.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RJ, A_ASSOCIATE_RQ

if TYPE_CHECKING:
    import ssl

#: The largest P-DATA-TF a provider accepts unless told otherwise (PS3.8 D.1).
DEFAULT_MAX_PDU = 1 << 20


@dataclass
class ProviderOptions:
    """A provider's options.

    `max_associations`, `max_pending` (connections that have not sent their
    A-ASSOCIATE-RQ yet) and `max_per_caller` (associations of one calling AE title):
    the limits of `dul.admission.Admission`.
    `max_pdu`: the largest P-DATA-TF we receive (PS3.8 D.1); 1 MiB by default, so that
    a 2 MiB instance arrives in 3 PDUs rather than 128 (the receive buffer of each
    association is bounded by it).
    `ssl_context`: TLS on every connection (`dul.tls.server_context`).
    `identity_check`: the user identity hook (`dimse.identity.IdentityHook`); a
    username and passcode without TLS is refused unless `allow_password_without_tls`.
    `async_window`: what we grant (PS3.7 D.3.3.3): we invoke one operation at a time
    (C-GET sub-operations) and read requests as they come, answering them in order,
    so a requestor may keep up to 32 outstanding.
    `decompress`: which compressed instances C-MOVE and C-GET may decompress for a
    peer that takes only uncompressed ones; `spool_dir`: where a data set too large
    for memory is spooled, received or converted (None: the system's temporary
    folder; dicomscp gives its archive's). `max_identifier`: the longest request
    identifier kept; a longer one is read, dropped and refused (A700H, A701H).
    """

    ae_title: str = "DICOMSCP"
    host: str = "0.0.0.0"
    port: int = 11112
    timeouts: Timeouts = Timeouts()
    max_associations: int = 64
    max_pending: int = 256
    max_per_caller: int | None = None
    max_pdu: int = DEFAULT_MAX_PDU
    check_called_ae: bool = False
    calling_ae_allowed: Callable[[str], bool] | None = None
    ssl_context: ssl.SSLContext | None = None
    identity_check: IdentityCheck | None = None
    allow_password_without_tls: bool = False
    async_window: tuple[int, int] | None = (1, 32)
    decompress: Decompress = Decompress.LOSSLESS
    spool_dir: Path | None = None
    max_identifier: int = DEFAULT_MAX_IDENTIFIER

    def policy(self, handlers: Handlers) -> AcceptorPolicy:
        return AcceptorPolicy(
            ae_title=self.ae_title,
            contexts=handlers.contexts(),
            check_called_ae=self.check_called_ae,
            calling_ae_allowed=self.calling_ae_allowed,
            max_pdata_length=self.max_pdu,
            identity_check=self.identity_check,
            tls=self.ssl_context is not None,
            allow_password_without_tls=self.allow_password_without_tls,
            async_window=self.async_window,
        )

    def settings(self, handlers: Handlers) -> Settings:
        return Settings(
            handlers,
            ae_title=self.ae_title,
            timeouts=self.timeouts,
            decompress=self.decompress,
            spool_dir=self.spool_dir,
            max_identifier=self.max_identifier,
        )

    def engine(self, connection: Connection, now: float) -> Engine:
        """The engine of an association just accepted, with the server's timeouts."""
        return Engine(
            connection,
            max_identifier=self.max_identifier,
            spool_dir=self.spool_dir,
            idle=self.timeouts.idle,
            silent=self.timeouts.silent,
            now=now,
        )


def negotiator(
    handlers: Handlers, policy: AcceptorPolicy
) -> Callable[[A_ASSOCIATE_RQ], A_ASSOCIATE_AC | A_ASSOCIATE_RJ]:
    """The answer to each A-ASSOCIATE-RQ: the handlers' `accept` under `policy`."""

    def negotiate(request: A_ASSOCIATE_RQ) -> A_ASSOCIATE_AC | A_ASSOCIATE_RJ:
        return handlers.accept(request, policy)

    return negotiate
