"""The asyncio API: the client and the server of `dimse.client` and `dimse.scp`, with
the same names, for one event loop holding many associations.

    from dimse import aio
    async with aio.connect("pacs", 104, called_ae="PACS", contexts=contexts) as assoc:
        status = await assoc.echo()
        result = await assoc.store("image.dcm")
        async for response in assoc.find(query, Root.STUDY):
            ...

    async with aio.Provider(MyHandlers(), ae_title="MYSCP", port=11112) as provider:
        await provider.serve_forever()

The operations and the protocol around the hooks are the flows of `dimse.scu` and
`dimse.serve`, the very ones the blocking API runs; here they are awaited
(`dimse.drivers.aio`) over `dul.drivers.aio`. Hooks may be coroutine functions
(`async def store(...)`), `find` an async generator; plain hooks run in a thread.
"""

from __future__ import annotations

import os
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Generator,
    Iterable,
    Mapping,
    Sequence,
)
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dimse.drivers.aio import AioRunner
from dimse.engine import Engine
from dimse.files import Part10Info
from dimse.handlers import Handlers
from dimse.message_base import Priority
from dimse.models import Root
from dimse.opening import association_request, tls_refusal
from dimse.provider_options import ProviderOptions, negotiator
from dimse.reassembly import DEFAULT_MAX_IDENTIFIER
from dimse.results import FindResponse, ReceivedInstance, RetrieveResponse, StoreResult
from dimse.scu import NoPresentationContext, Requestor
from dimse.serve import Session
from dimse.status import Status
from dimse.storage import InstanceWriter
from dimse.transfer.convert import Decompress
from dul.connection import Timeouts
from dul.drivers import aio as dul_aio
from dul.drivers.aio import AioChannel, AioServer
from dul.errors import AssociationAborted, DulTimeout
from dul.negotiation import NegotiatedContext, ProposedContext
from dul.user_information import UserIdentityRQSubItem

if TYPE_CHECKING:
    import ssl

    from pydicom.dataset import Dataset

__all__ = ["Association", "NoPresentationContext", "Provider", "connect"]


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
) -> Connecting:
    """Open an association (the arguments of `dimse.client.connect`): `await` it, or
    use it as an async context manager (released on exit, aborted on an error)."""
    request = association_request(
        calling_ae,
        called_ae,
        contexts,
        max_pdu=max_pdu,
        roles=roles,
        user_identity=user_identity,
        async_window=async_window,
    )

    async def opening() -> Association:
        try:
            channel = await dul_aio.request_association(
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

    return Connecting(opening())


class Connecting:
    """An association being opened: awaitable, and an async context manager."""

    def __init__(self, opening: Any) -> None:
        self._opening = opening
        self._association: Association | None = None

    def __await__(self) -> Generator[Any, None, Association]:
        return self._opening.__await__()  # type: ignore[no-any-return]

    async def __aenter__(self) -> Association:
        self._association = await self._opening
        return self._association

    async def __aexit__(self, *exc: object) -> None:
        assert self._association is not None
        await self._association.__aexit__(*exc)


async def open_channel(host: str, port: int, options: dict[str, Any]) -> AioChannel:
    """`connect`, for a flow's `Connect` effect: the channel, its engine the endpoint."""
    association = await connect(host, port, **options)
    return association.channel


class Association:
    """An open association, as service user. One operation at a time."""

    def __init__(
        self, channel: AioChannel, engine: Engine, decompress: Decompress = Decompress.LOSSLESS
    ) -> None:
        self.channel = channel
        self.engine = engine
        self.requestor = Requestor(engine, decompress)
        self._runner = AioRunner(channel, open_channel)
        self._iterator: AsyncGenerator[Any, None] | None = None

    @property
    def contexts(self) -> dict[int, NegotiatedContext]:
        return self.engine.contexts

    @property
    def peer(self) -> str:
        return self.engine.peer

    @property
    def window(self) -> int:
        return self.engine.window

    @property
    def identity_response(self) -> bytes | None:
        item = self.channel.connection.accept.user_information.user_identity_response
        return None if item is None else item.server_response

    def describe_accepted(self) -> str:
        return self.requestor.describe_accepted()

    @property
    def received(self) -> list[ReceivedInstance]:
        return self.requestor.received

    @property
    def refused(self) -> list[tuple[str, str]]:
        return self.requestor.refused

    # -- operations (`dimse.scu` says what each does) ---------------------------------

    async def echo(self) -> Status:
        await self._end_iteration()
        return await self._runner.run(self.requestor.echo())

    async def store(
        self,
        source: str | os.PathLike[str] | Part10Info | Dataset,
        priority: int = Priority.LOW,
        progress: Callable[[int], None] | None = None,
        move_originator: tuple[str, int] | None = None,
    ) -> StoreResult:
        await self._end_iteration()
        return await self._runner.run(
            self.requestor.store(source, priority, progress, move_originator)
        )

    def store_many(
        self, infos: Iterable[Part10Info], priority: int = Priority.LOW
    ) -> AsyncIterator[tuple[Part10Info, StoreResult | NoPresentationContext | OSError]]:
        return self._iterating(self.requestor.store_many(infos, priority))

    def find(
        self, identifier: Dataset, root: Root, priority: int = Priority.MEDIUM
    ) -> AsyncIterator[FindResponse]:
        return self._iterating(self.requestor.find(identifier, root, priority))

    def move(
        self, identifier: Dataset, root: Root, destination: str, priority: int = Priority.MEDIUM
    ) -> AsyncIterator[RetrieveResponse]:
        return self._iterating(self.requestor.move(identifier, root, destination, priority))

    def get(
        self,
        identifier: Dataset,
        root: Root,
        writer: InstanceWriter,
        priority: int = Priority.MEDIUM,
    ) -> AsyncIterator[RetrieveResponse]:
        return self._iterating(self.requestor.get(identifier, root, writer, priority))

    async def release(self) -> None:
        await self._end_iteration()
        await self._runner.run(self.requestor.release())

    async def abort(self) -> None:
        await self._runner.run(self.requestor.abort())

    # -- one operation at a time ------------------------------------------------------

    def _iterating(self, flow: Any) -> AsyncIterator[Any]:
        return _Iteration(self, self._runner.iterate(flow))

    async def _end_iteration(self) -> None:
        """An operation whose iterator its user left with `break` is ended now (C-CANCEL
        and the responses after it read), before the next request goes: asyncio would
        close that iterator only later, in a task of its own."""
        iterator, self._iterator = self._iterator, None
        if iterator is not None:
            await iterator.aclose()

    async def __aenter__(self) -> Association:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if exc[0] is None:
            await self.release()
        else:
            await self.abort()


class _Iteration:
    """The async iterator of an operation's responses: it ends the operation its
    association left unfinished before it begins (`Association._end_iteration`)."""

    def __init__(self, association: Association, iterator: AsyncGenerator[Any, None]) -> None:
        self.association = association
        self.iterator = iterator
        self.begun = False

    def __aiter__(self) -> _Iteration:
        return self

    async def __anext__(self) -> Any:
        if not self.begun:
            self.begun = True
            await self.association._end_iteration()
            self.association._iterator = self.iterator
        return await self.iterator.__anext__()

    async def aclose(self) -> None:
        await self.iterator.aclose()


class Provider:
    """A DICOM server in one event loop: each association a task, served by the flows
    of `dimse.serve` with the `handlers`' hooks. Options: `ProviderOptions`."""

    def __init__(self, handlers: Handlers, **options: Any) -> None:
        self.handlers = handlers
        self.options = ProviderOptions(**options)
        self.settings = self.options.settings(handlers)
        self.policy = self.options.policy(handlers)
        self.server = AioServer(
            negotiator(handlers, self.policy),
            self._serve,
            max_associations=self.options.max_associations,
            max_pending=self.options.max_pending,
            max_per_caller=self.options.max_per_caller,
            timeouts=self.options.timeouts,
            max_pdata_length=self.options.max_pdu,
        )

    @property
    def port(self) -> int:
        return self.server.port

    async def _serve(self, channel: AioChannel) -> None:
        engine = self.options.engine(channel.connection, channel.now())
        channel.endpoint = engine
        try:
            await AioRunner(channel, open_channel).run(Session(self.settings, engine).run())
        finally:
            engine.close()
            await channel.pump(lambda: channel.connection.closed)  # Sta13: the peer closes

    async def start(self) -> Provider:
        await self.server.start(self.options.host, self.options.port, self.options.ssl_context)
        return self

    async def serve_forever(self) -> None:
        """Serve until `stop()`."""
        await self.server.wait_closed()

    async def stop(self, timeout: float | None = 10.0) -> None:
        await self.server.close(timeout)

    async def __aenter__(self) -> Provider:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
