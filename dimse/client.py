"""The service user (SCU) API, blocking: C-ECHO, C-STORE, C-FIND, C-MOVE, C-GET.

    from dimse import client
    from dimse.models import Root
    with client.connect("pacs", 104, called_ae="PACS",
                        contexts=client.query_contexts(Root.STUDY, "find")) as assoc:
        for response in assoc.find(query, Root.STUDY):
            print(response.status, response.identifier)

A failure status is a result, not an exception: read `result.status.category`.
Exceptions are for the association itself (`dul.errors.AssociationError` and its
kinds) and for asking what the association cannot carry (`NoPresentationContext`).

This module is a driver: the operations are `dimse.scu`'s flows, run in this thread
by `dimse.drivers.blocking.Runner` over a socket (`dul.drivers.sockets`).
`dimse.aio` offers the same names with asyncio. pydicom is imported where a data set
is handled, not at import: storing files as they are (`dicomscu --store`) and
C-ECHO never need it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dimse.drivers.blocking import Runner
from dimse.engine import Engine
from dimse.files import Part10Info
from dimse.message_base import Priority
from dimse.models import Root
from dimse.opening import association_request, tls_refusal
from dimse.proposals import get_roles as get_roles
from dimse.proposals import query_contexts as query_contexts
from dimse.proposals import store_contexts as store_contexts
from dimse.reassembly import DEFAULT_MAX_IDENTIFIER
from dimse.results import FindResponse, ReceivedInstance, RetrieveResponse, StoreResult
from dimse.scu import NoPresentationContext as NoPresentationContext
from dimse.scu import Requestor
from dimse.status import Status
from dimse.storage import InstanceWriter
from dimse.transfer.convert import Decompress
from dul.connection import Timeouts
from dul.drivers.sockets import Channel, request_association
from dul.errors import AssociationAborted, DulTimeout
from dul.negotiation import NegotiatedContext, ProposedContext
from dul.user_information import UserIdentityRQSubItem

if TYPE_CHECKING:
    import ssl

    from pydicom.dataset import Dataset


def connect(
    host: str,
    port: int,
    *,
    calling_ae: str = "DICOMSCU",
    called_ae: str = "ANY-SCP",
    contexts: Sequence[ProposedContext],
    roles: Mapping[str, tuple[bool, bool]] | None = None,
    timeouts: Timeouts = Timeouts(),
    max_pdu: int = 16384,
    ssl_context: ssl.SSLContext | None = None,
    user_identity: UserIdentityRQSubItem | None = None,
    async_window: int | None = None,
    decompress: Decompress = Decompress.LOSSLESS,
    max_identifier: int | None = DEFAULT_MAX_IDENTIFIER,
    spool_dir: Path | None = None,
) -> Association:
    """Open an association; use it as a context manager (released on exit).

    `async_window` proposes the Asynchronous Operations Window (PS3.7 D.3.3.3): up
    to that many requests outstanding at once (`store_many` uses what the peer grants).
    `decompress`: which compressed instances `store` may decompress for a peer that
    did not accept their syntax (`dimse.transfer.convert`). `max_identifier`: the
    longest response identifier kept (a hostile server's is dropped past it);
    `spool_dir`: where data sets too large for memory go (None: the system's).
    """
    request = association_request(
        calling_ae,
        called_ae,
        contexts,
        max_pdu=max_pdu,
        roles=roles,
        user_identity=user_identity,
        async_window=async_window,
    )
    try:
        channel = request_association(
            host, port, request, timeouts=timeouts, ssl_context=ssl_context
        )
    except (AssociationAborted, DulTimeout) as exc:
        refusal = tls_refusal(exc, host, port) if ssl_context is not None else None
        if refusal is None:
            raise
        raise refusal from exc
    engine = Engine(channel.connection, max_identifier=max_identifier, spool_dir=spool_dir)
    channel.endpoint = engine
    return Association(channel, engine, decompress)


def open_channel(host: str, port: int, options: dict[str, object]) -> Channel:
    """`connect`, for a flow's `Connect` effect: the channel, its engine the endpoint."""
    return connect(host, port, **options).channel  # type: ignore[arg-type]


class Association:
    """An open association, as service user. Not for use by several threads at once."""

    def __init__(
        self, channel: Channel, engine: Engine, decompress: Decompress = Decompress.LOSSLESS
    ) -> None:
        self.channel = channel
        self.engine = engine
        self.requestor = Requestor(engine, decompress)
        self._runner = Runner(channel, open_channel)

    # -- facts ------------------------------------------------------------------------

    @property
    def contexts(self) -> dict[int, NegotiatedContext]:
        return self.engine.contexts

    @property
    def peer(self) -> str:
        return self.engine.peer

    @property
    def timeouts(self) -> Timeouts:
        return self.channel.timeouts

    @property
    def decompress(self) -> Decompress:
        return self.requestor.decompress

    @property
    def window(self) -> int:
        """How many requests may be outstanding at once (PS3.7 D.3.3.3)."""
        return self.engine.window

    @property
    def identity_response(self) -> bytes | None:
        """The acceptor's User Identity Server-response (59H sub-item, PS3.7 D.3.3.7.2):
        None when the A-ASSOCIATE-AC has none (the identity was not confirmed), b"" for
        a confirmed username."""
        item = self.channel.accept.user_information.user_identity_response
        return None if item is None else item.server_response

    def describe_accepted(self) -> str:
        return self.requestor.describe_accepted()

    @property
    def received(self) -> list[ReceivedInstance]:
        """Instances received by C-GET on this association."""
        return self.requestor.received

    @property
    def refused(self) -> list[tuple[str, str]]:
        """Instances a C-GET brought that failed their check: (SOP Instance UID, why)."""
        return self.requestor.refused

    # -- operations (`dimse.scu` says what each does) ---------------------------------

    def echo(self) -> Status:
        return self._runner.run(self.requestor.echo())

    def store(
        self,
        source: str | os.PathLike[str] | Part10Info | Dataset,
        priority: int = Priority.LOW,
        progress: Callable[[int], None] | None = None,
        move_originator: tuple[str, int] | None = None,
    ) -> StoreResult:
        return self._runner.run(self.requestor.store(source, priority, progress, move_originator))

    def store_many(
        self, infos: Iterable[Part10Info], priority: int = Priority.LOW
    ) -> Iterator[tuple[Part10Info, StoreResult | NoPresentationContext | OSError]]:
        return self._runner.iterate(self.requestor.store_many(infos, priority))

    def find(
        self, identifier: Dataset, root: Root, priority: int = Priority.MEDIUM
    ) -> Iterator[FindResponse]:
        return self._runner.iterate(self.requestor.find(identifier, root, priority))

    def move(
        self, identifier: Dataset, root: Root, destination: str, priority: int = Priority.MEDIUM
    ) -> Iterator[RetrieveResponse]:
        return self._runner.iterate(self.requestor.move(identifier, root, destination, priority))

    def get(
        self,
        identifier: Dataset,
        root: Root,
        writer: InstanceWriter,
        priority: int = Priority.MEDIUM,
    ) -> Iterator[RetrieveResponse]:
        return self._runner.iterate(self.requestor.get(identifier, root, writer, priority))

    # -- ending -----------------------------------------------------------------------

    def release(self) -> None:
        self._runner.run(self.requestor.release())

    def abort(self) -> None:
        self._runner.run(self.requestor.abort())

    def __enter__(self) -> Association:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.release()
        else:
            self.abort()
