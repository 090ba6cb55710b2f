"""The asyncio driver of an association: an `asyncio.Protocol` around the same
`Endpoint` the blocking driver drives (a `dul.connection.Connection`, or the DIMSE
engine above one).

Bytes go to the endpoint as they arrive (`data_received`), with the loop's time;
its output is written as the endpoint gives it, with the transport's flow control
(a large data set is read from disk no faster than the peer takes it); a timer is
kept at the endpoint's next deadline. Code that waits for the association
(`pump`) sleeps until something changes. Nothing here knows the protocol: the
decisions are the endpoint's, as in `dul.drivers.sockets`.

`request_association` opens an association as requestor; `serve` accepts them,
with the limits of `dul.admission`, each served by an async handler.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING

from dul.admission import Admission, Place
from dul.connection import Connection, Endpoint, Timeouts
from dul.drivers.recorder import PduRecorder, PduTap, current_recorder
from dul.drivers.sockets import ABORT_WRITE, Negotiator, address_text
from dul.errors import AssociationAborted, DulTimeout
from dul.framing import DEFAULT_MAX_ASSOCIATION_LENGTH
from dul.machine import Machine
from dul.pdu import A_ASSOCIATE_RJ, A_ASSOCIATE_RQ
from dul.primitives import Send
from dul.reasons import RJ_REASONS

if TYPE_CHECKING:
    import ssl

log = logging.getLogger("dul.aio")


class AioChannel(asyncio.Protocol):
    """One association's transport and endpoint."""

    def __init__(self, connection: Connection, recorder: PduRecorder | None = None) -> None:
        self.connection = connection
        #: what bytes are fed to and taken from: the connection, or the layer above it
        self.endpoint: Endpoint = connection
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self._recorder = recorder
        self.tap: PduTap | None = None
        self._output: Iterator[Send] | None = None  # a write interrupted by flow control
        self._wrote = False
        self._paused = False
        self._changed: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        #: called once, when the A-ASSOCIATE-RQ of an accepted connection has come
        self.on_request: Callable[[AioChannel], None] | None = None
        self.on_closed: Callable[[AioChannel], None] | None = None

    @property
    def peer(self) -> str:
        return self.connection.peer

    def now(self) -> float:
        return self.loop.time()

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._recorder is not None:
            role = "requestor" if self.connection.machine.requestor else "acceptor"
            self.tap = self._recorder.attach(f"{role}, peer {self.peer}")

    def data_received(self, data: bytes) -> None:
        if self.tap is not None:
            self.tap.received(data)
        self.endpoint.receive_data(data, self.now())
        self._settle()

    def eof_received(self) -> bool:
        return False  # close our side too: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        why = "" if exc is None else f"the connection to {self.peer} failed: {exc}"
        self.endpoint.receive_closed(self.now(), why)
        if self.tap is not None:
            tap, self.tap = self.tap, None
            error = self.connection.error
            tap.close("" if error is None else str(error))
        self._paused = False
        self._settle()
        if self.on_closed is not None:
            self.on_closed(self)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._settle()

    # -- the driver -------------------------------------------------------------------

    def _settle(self) -> None:
        """After any input: write what can be written, keep the timer, wake waiters."""
        self._write_out()
        if self.on_request is not None and self.connection.request_pending:
            on_request, self.on_request = self.on_request, None
            on_request(self)
        self._keep_timer()
        changed, self._changed = self._changed, None
        if changed is not None and not changed.done():
            changed.set_result(None)

    def _write_out(self) -> bool:
        """Write the endpoint's output until flow control stops us; True when all went."""
        endpoint = self.endpoint
        if self._output is None:
            self._output = iter(endpoint.take_output(self.now()))
        for send in self._output:
            if self.transport is not None:
                if self.tap is not None:
                    self.tap.sent(send.data)
                if isinstance(send.data, list):
                    self.transport.writelines(send.data)
                else:
                    self.transport.write(send.data)
                self._wrote = True
            if self._paused:
                return False
        self._output = None
        if self._wrote:
            self._wrote = False
            endpoint.written(self.now())
        if endpoint.close_wanted and self.transport is not None:
            self.transport.close()  # connection_lost follows, and tells the endpoint
            # A peer that reads nothing would keep a closing transport for ever: the
            # A-ABORT or A-RELEASE-RP gets a second, as in the blocking driver.
            self.loop.call_later(ABORT_WRITE, self._force_close, self.transport)
        return True

    def _keep_timer(self) -> None:
        deadline = self.endpoint.next_deadline()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None:
            self._timer = self.loop.call_at(deadline, self._expired)

    def _expired(self) -> None:
        self._timer = None
        self._timer_at = None
        self.endpoint.handle_timer(self.now())
        self._settle()

    def _next_change(self) -> asyncio.Future[None]:
        """A future resolved at the next input, write window or timer."""
        if self._changed is None or self._changed.done():
            self._changed = self.loop.create_future()
        return self._changed

    async def _change(self) -> None:
        await self._next_change()

    async def flush(self) -> None:
        """Write what the endpoint has for the peer, as fast as the peer takes it. A
        peer that takes nothing for the DIMSE timeout (ROBUSTNESS 39) has its
        connection closed, and the endpoint is told (`DulTimeout`)."""
        limit = self.connection.timeouts.dimse
        while not self._write_out():
            try:
                await asyncio.wait_for(asyncio.shield(self._next_change()), limit)
            except TimeoutError:
                if not self._paused or self.transport is None:
                    continue  # it moved after all
                error = DulTimeout(
                    f"sending to {self.peer} did not complete: no progress within {limit} s"
                )
                self._output = None
                self.close_transport()
                self.endpoint.receive_closed(self.now(), error=error)
                self._settle()
                return
        self._keep_timer()
        if self.endpoint.close_wanted and self.transport is None and not self.connection.closed:
            self.endpoint.receive_closed(self.now())

    async def pump(self, until: Callable[[], bool]) -> None:
        """Wait until `until()` holds or the connection is closed, writing meanwhile."""
        while True:
            await self.flush()
            if until() or self.connection.closed:
                return
            await self._change()

    async def poll(self) -> None:
        """Take what has arrived by now: it is fed as it comes; let it come."""
        await self.flush()
        await asyncio.sleep(0)

    def _force_close(self, transport: asyncio.Transport) -> None:
        if self.transport is transport:
            transport.abort()

    def close_transport(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.transport is not None:
            self.transport.abort()


async def request_association(
    host: str,
    port: int,
    request: A_ASSOCIATE_RQ,
    *,
    timeouts: Timeouts = Timeouts(),
    ssl_context: ssl.SSLContext | None = None,
    max_pdata_length: int | None = None,
    recorder: PduRecorder | None = None,
) -> AioChannel:
    """Open a connection and an association as requestor; returns it established.
    Raises what `dul.drivers.sockets.request_association` raises."""
    loop = asyncio.get_running_loop()
    if recorder is None:
        recorder = current_recorder()
    peer = address_text(host, port)
    connection = Connection.requesting(peer, request, timeouts, max_pdata_length, loop.time())
    try:
        _, channel = await asyncio.wait_for(
            loop.create_connection(
                lambda: AioChannel(connection, recorder),
                host,
                port,
                ssl=ssl_context,
                server_hostname=host if ssl_context is not None else None,
            ),
            timeouts.connect,
        )
    except (OSError, TimeoutError) as exc:
        tls_failed = ssl_context is not None and _is_tls_error(exc)
        raise connection.connect_failed(_why(exc, timeouts), loop.time(), tls=tls_failed) from exc
    connection.connected(loop.time())  # AE-2: send the A-ASSOCIATE-RQ
    await channel.pump(lambda: connection.established or connection.over)
    if connection.established:
        return channel
    channel.close_transport()
    raise connection.error or AssociationAborted(
        f"{peer} closed the connection without answering the A-ASSOCIATE-RQ"
    )


def _is_tls_error(exc: BaseException) -> bool:
    import sys

    ssl_module = sys.modules.get("ssl")
    return ssl_module is not None and isinstance(exc, ssl_module.SSLError)


def _why(exc: BaseException, timeouts: Timeouts) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeouts.connect} s"
    if _is_tls_error(exc):
        from dul.tls import describe_tls_error

        return describe_tls_error(exc)
    assert isinstance(exc, OSError)
    # asyncio's own text ("Connect call failed (...)") is not the system's: say what
    # the blocking driver says of the same failure.
    return os.strerror(exc.errno) if exc.errno else str(exc)


AioHandler = Callable[[AioChannel], Awaitable[None]]


class AioServer:
    """Accepts associations in one event loop (see the module docstring). A handler
    runs as a task per association; the limits are `dul.admission`'s."""

    def __init__(
        self,
        negotiate: Negotiator,
        handler: AioHandler,
        *,
        max_associations: int = 64,
        max_pending: int = 256,
        max_per_caller: int | None = None,
        timeouts: Timeouts = Timeouts(),
        max_pdata_length: int = 16384,
        max_association_length: int = DEFAULT_MAX_ASSOCIATION_LENGTH,
    ) -> None:
        self.negotiate = negotiate
        self.handler = handler
        self.timeouts = timeouts
        self.max_pdata_length = max_pdata_length
        self.max_association_length = max_association_length
        self.admission = Admission(max_associations, max_per_caller, max_pending)
        self.server: asyncio.Server | None = None
        self._waiting: dict[AioChannel, float] = {}  # connections before their RQ
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = asyncio.Event()
        self._port = 0

    @property
    def port(self) -> int:
        """The port listened on (kept after `close()`)."""
        return self._port

    async def start(
        self, host: str, port: int, ssl_context: ssl.SSLContext | None = None
    ) -> AioServer:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            self._connection,
            host,
            port,
            ssl=ssl_context,
            ssl_handshake_timeout=self.timeouts.artim if ssl_context is not None else None,
        )
        self._port = int(self.server.sockets[0].getsockname()[1])
        return self

    def _connection(self) -> AioChannel:
        """A new connection: a machine in Sta2, ARTIM running (AE-5)."""
        loop = asyncio.get_running_loop()
        if self.admission.crowding(len(self._waiting)):
            oldest = min(self._waiting, key=self._waiting.__getitem__)
            self.admission.crowded.hit(f"closing the one from {oldest.peer}")
            self._waiting.pop(oldest, None)
            oldest.close_transport()
        machine = Machine(
            requestor=False,
            artim_timeout=self.timeouts.artim,
            max_pdata_length=self.max_pdata_length,
            max_association_length=self.max_association_length,
        )
        connection = Connection(machine, "?", self.timeouts)
        channel = _AcceptedChannel(self, connection)
        connection.accepted_transport(loop.time())
        self._waiting[channel] = loop.time()
        return channel

    def _admitted(self, channel: AioChannel) -> None:
        self._waiting.pop(channel, None)
        task = asyncio.get_running_loop().create_task(self._serve(channel))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _gone(self, channel: AioChannel) -> None:
        self._waiting.pop(channel, None)
        if isinstance(channel, _AcceptedChannel) and not channel.serving:
            self.admission.release(channel.place)

    async def _serve(self, channel: AioChannel) -> None:
        assert isinstance(channel, _AcceptedChannel)
        channel.serving = True
        connection = channel.connection
        try:
            request = connection.request
            response = self.negotiate(request)
            connection.answer(response, channel.now())
            if isinstance(response, A_ASSOCIATE_RJ):
                # The AE titles are the peer's bytes: logged escaped (ROBUSTNESS 15).
                log.info(
                    "association from %s (%r -> %r) rejected: %s",
                    channel.peer,
                    request.calling_ae_title,
                    request.called_ae_title,
                    RJ_REASONS.get((response.source, response.reason), f"reason {response.reason}"),
                )
                self.admission.release(channel.place)
                await channel.pump(lambda: connection.closed)
                return
            await self.handler(channel)
        except Exception:
            log.exception("association with %s failed", channel.peer)
        finally:
            channel.close_transport()
            self.admission.release(channel.place)

    async def close(self, timeout: float | None = 10.0) -> None:
        """Stop accepting; wait (up to `timeout`) for the associations in progress."""
        if self.server is not None:
            self.server.close()
        for channel in list(self._waiting):
            channel.close_transport()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:
                task.cancel()
        if self.server is not None:
            await self.server.wait_closed()
        self._closed.set()

    async def wait_closed(self) -> None:
        """Wait until `close()` has run."""
        await self._closed.wait()


class _AcceptedChannel(AioChannel):
    """A connection of an `AioServer`: its place in the limits, and who it is."""

    def __init__(self, server: AioServer, connection: Connection) -> None:
        super().__init__(connection)
        self.server = server
        self.place = Place("?")
        self.serving = False
        self.on_request = server._admitted
        self.on_closed = server._gone

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        host, port = transport.get_extra_info("peername")[:2]
        peer = address_text(host, port)
        self.connection.peer = peer
        self.connection.machine.name = f"acceptor {peer}"
        self.place.peer = peer
        self.connection.machine.provider_check = self.server.admission.check(self.place)
        super().connection_made(transport)
