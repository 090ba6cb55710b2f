"""The blocking socket driver of an association: bytes between a socket and an
`Endpoint` (a `dul.connection.Connection`, or the DIMSE engine above one).

The driver decides nothing about the protocol. It writes what the endpoint gives
(`take_output`), closes the socket when the endpoint wants it closed, reads with
the endpoint's next deadline as its timeout (nothing polls) and keeps the clock:
`time.monotonic()` goes into every input. Every PDU is one `sendall` (a run of
P-DATA-TF PDUs one `sendmsg`); sockets have TCP_NODELAY; receiving goes through
`recv_into` into one reused buffer, made at the first blocking read (a connection
still waiting for its A-ASSOCIATE-RQ costs no 256 KiB, ROBUSTNESS 48).

`Channel` also offers the upper layer's service to a user of P-DATA itself
(`receive`, `send_pdata`, `release`, `abort`); `request_association()` opens one
as requestor, `dul.drivers.server.Server` accepts them. A `PduRecorder`
(`dicomscu --dump-pdus`) keeps the bytes of the associations it is given.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from dul.connection import Connection, Endpoint, Timeouts
from dul.drivers.recorder import PduRecorder, PduTap, current_recorder
from dul.drivers.tls_socket import is_tls, set_timeout, would_block
from dul.errors import AbortReason, AssociationAborted, DulTimeout
from dul.fields import Buffer
from dul.fsm import State
from dul.machine import Machine
from dul.negotiation import NegotiatedContext
from dul.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RJ, A_ASSOCIATE_RQ, P_DATA_TF
from dul.primitives import Send

if TYPE_CHECKING:
    import ssl

log = logging.getLogger("dul.transport")

RECEIVE_BUFFER = 1 << 18
#: Seconds allowed to write an A-ABORT before the socket is closed anyway.
ABORT_WRITE = 1.0


def _remaining(deadline: float | None, now: float) -> float | None:
    return None if deadline is None else max(0.0, deadline - now)


def _nearest(*deadlines: float | None) -> float | None:
    present = [d for d in deadlines if d is not None]
    return min(present) if present else None


class Channel:
    """An association over one socket: the driver of its endpoint."""

    def __init__(
        self,
        sock: socket.socket,
        connection: Connection,
        clock: Callable[[], float] = time.monotonic,
        recorder: PduRecorder | None = None,
    ) -> None:
        self.sock: socket.socket | None = sock
        self.connection = connection
        #: what bytes are fed to and taken from: the connection, or the layer above it
        self.endpoint: Endpoint = connection
        self.clock = clock
        self._buffer: bytearray | None = None
        self._view = memoryview(b"")
        self.tap: PduTap | None = None  # --dump-pdus: where the bytes are recorded
        if recorder is not None:
            role = "requestor" if connection.machine.requestor else "acceptor"
            self.tap = recorder.attach(f"{role}, peer {connection.peer}")

    # -- facts of the association ---------------------------------------------------

    @property
    def peer(self) -> str:
        return self.connection.peer

    @property
    def machine(self) -> Machine:
        return self.connection.machine

    @property
    def timeouts(self) -> Timeouts:
        return self.connection.timeouts

    @property
    def request(self) -> A_ASSOCIATE_RQ:
        return self.connection.request

    @property
    def accept(self) -> A_ASSOCIATE_AC:
        return self.connection.accept

    @property
    def contexts(self) -> dict[int, NegotiatedContext]:
        return self.connection.contexts

    @property
    def established(self) -> bool:
        return self.connection.established

    @property
    def peer_max_pdata_length(self) -> int:
        return self.connection.peer_max_pdata_length

    # -- the driver loop --------------------------------------------------------------

    def flush(self) -> None:
        """Write what the endpoint has for the peer; close if it wants it closed. A
        write that fails closes the connection, and the endpoint is told why."""
        endpoint = self.endpoint
        if not endpoint.has_output and not endpoint.close_wanted:
            return
        wrote = False
        for send in endpoint.take_output(self.clock()):
            if self.sock is not None:
                self._write(send, quick=endpoint.close_wanted)
                wrote = True
        if wrote:
            endpoint.written(self.clock())
        if endpoint.close_wanted:
            self._close_socket()
            endpoint.receive_closed(self.clock())

    def pump(self, until: Callable[[], bool], timeout: float | None = None) -> bool:
        """Receive until `until()` holds (True), the connection is closed, or
        `timeout` seconds pass (False); the endpoint's deadlines are kept meanwhile."""
        clock = self.clock
        limit = None if timeout is None else clock() + timeout
        tried = False
        while True:
            self.flush()
            if until():
                return True
            if self.sock is None or self.connection.closed:
                return until()
            now = clock()
            deadline = self.endpoint.next_deadline()
            if deadline is not None and now >= deadline:
                self.endpoint.handle_timer(now)
                continue
            if tried and limit is not None and now >= limit:
                return False
            tried = True
            self._receive_once(_remaining(_nearest(deadline, limit), now))

    def poll(self) -> None:
        """Take what has arrived by now, without waiting."""
        self.flush()
        if self.sock is not None:
            self._receive_once(0.0)
            self.flush()

    def _receive_once(self, timeout: float | None) -> None:
        sock = self.sock
        assert sock is not None
        if self._buffer is None:
            self._buffer = bytearray(RECEIVE_BUFFER)
            self._view = memoryview(self._buffer)
        why = ""
        try:
            set_timeout(sock, timeout)
            count = sock.recv_into(self._buffer)
        except OSError as exc:  # ssl.SSLError is an OSError too
            if would_block(exc):
                return
            log.debug("%s: receive from %s failed: %s", self.machine.name, self.peer, exc)
            why = f"receiving from {self.peer} failed: {exc.strerror or exc}"
            count = 0
        if count == 0:
            self._close_socket()
            self.endpoint.receive_closed(self.clock(), why)
            return
        if self.tap is not None:
            self.tap.received(self._view[:count])
        self.endpoint.receive_data(self._view[:count], self.clock())

    def _write(self, send: Send, *, quick: bool = False) -> None:
        sock = self.sock
        assert sock is not None
        if self.tap is not None:
            self.tap.sent(send.data)
        try:
            set_timeout(sock, ABORT_WRITE if quick else self.timeouts.dimse)
            send_all(sock, send.data)
        except OSError as exc:  # TimeoutError included
            if quick:
                return  # an A-ABORT that cannot go: the socket is closed next anyway
            text = str(exc) or "timed out"
            error = DulTimeout(f"sending to {self.peer} did not complete: {text}")
            error.__cause__ = exc
            self._close_socket()
            self.endpoint.receive_closed(self.clock(), error=error)

    def _close_socket(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass
        if self.tap is not None:
            tap, self.tap = self.tap, None
            error = self.connection.error
            tap.close("" if error is None else str(error))

    # -- the upper layer's service, for a user of P-DATA itself -------------------------

    def send_pdata(self, data: bytes | bytearray | list[Buffer]) -> None:
        """Send one encoded P-DATA-TF PDU, or a run of them as a list of buffers (Evt9);
        DulTimeout when it could not be written (the connection is then closed)."""
        self.connection.send_pdata(data, self.clock())
        self.flush()
        error = self.connection.error
        if isinstance(error, DulTimeout) and self.connection.closed:
            raise error

    def receive(self, timeout: float | None) -> P_DATA_TF:
        """The next P-DATA-TF from the peer.

        Raises `AssociationReleased` when the peer releases (we answer it),
        `AssociationAborted` on an abort or a lost connection, `DulTimeout` when
        `timeout` passes first (the association is then aborted).
        """
        connection = self.connection
        if not self.pump(lambda: bool(connection.received) or connection.over, timeout):
            self.abort()
            raise DulTimeout(f"no message from {self.peer} within {timeout} s; association aborted")
        if connection.received:
            return connection.received.popleft()
        self.pump(lambda: connection.closed)  # Sta13: the peer closes, or ARTIM does
        raise connection.error or AssociationAborted(f"{self.peer} closed the connection")

    def poll_pdata(self) -> P_DATA_TF | None:
        """A P-DATA-TF already received or arriving now, else None (never waits)."""
        connection = self.connection
        if not connection.received:
            self.poll()
        if connection.received:
            return connection.received.popleft()
        if connection.closed:
            raise connection.error or AssociationAborted(f"{self.peer} closed the connection")
        return None

    def release(self) -> None:
        """A-RELEASE (Evt11), release collision included; returns when closed."""
        connection = self.connection
        live = connection.state is State.Sta6 and connection.error is None
        connection.release(self.clock())
        self.pump(lambda: connection.closed)
        if live and connection.error is not None and not connection.released:
            raise connection.error

    def abort(self) -> None:
        """A-ABORT (Evt15) and close: never blocks for long."""
        self.connection.abort(self.clock())
        self._finish()

    def abort_invalid(self, reason: AbortReason, message: str) -> None:
        """The peer's P-DATA broke PS3.8 in a way only the layer above can see:
        A-ABORT with source 2 and `reason` (Evt19, AA-8), then close."""
        self.connection.abort_invalid(reason, message, self.clock())
        self._finish()

    def _finish(self) -> None:
        self.flush()
        self._close_socket()
        if not self.connection.closed:
            self.connection.receive_closed(self.clock())

    def close(self) -> None:
        """Release if established, else abort; always frees the socket."""
        try:
            if self.connection.state is State.Sta6:
                self.release()
            else:
                self.abort()
        finally:
            self._close_socket()

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:
            self.abort()


#: The most buffers one sendmsg takes (Linux's IOV_MAX is 1024).
_GATHER_LIMIT = 1024


def send_all(sock: socket.socket, data: bytes | bytearray | list[Buffer]) -> None:
    """Write one PDU, or a run of buffers in order with as few system calls as the
    socket allows (one `sendmsg` per 1,024 buffers)."""
    if not isinstance(data, list):
        sock.sendall(data)
        return
    if is_tls(sock):  # TLS records are built from one buffer
        sock.sendall(b"".join(data))
        return
    views = [memoryview(part) for part in data if len(part)]
    while views:
        sent = sock.sendmsg(views[:_GATHER_LIMIT])
        done = 0
        while done < len(views) and sent >= views[done].nbytes:
            sent -= views[done].nbytes
            done += 1
        del views[:done]
        if sent:
            views[0] = views[0][sent:]


def address_text(host: str, port: int) -> str:
    """host:port, with an IPv6 address in brackets ([::1]:104)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def tune(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def request_association(
    host: str,
    port: int,
    request: A_ASSOCIATE_RQ,
    *,
    timeouts: Timeouts = Timeouts(),
    ssl_context: ssl.SSLContext | None = None,
    max_pdata_length: int | None = None,
    recorder: PduRecorder | None = None,
) -> Channel:
    """Open a connection and an association as requestor; returns it established.

    `recorder` (default: the one of an enclosing `recording` block) records its PDUs.
    Raises `ConnectionFailed`, `AssociationRejected`, `AssociationAborted` or
    `DulTimeout`, each with a message that says what happened.
    """
    if recorder is None:
        recorder = current_recorder()
    peer = address_text(host, port)
    connection = Connection.requesting(peer, request, timeouts, max_pdata_length, time.monotonic())
    try:
        sock = socket.create_connection((host, port), timeout=timeouts.connect)
    except OSError as exc:
        if isinstance(exc, TimeoutError):
            why = f"no answer within {timeouts.connect} s"
        else:
            why = exc.strerror or str(exc)
        raise connection.connect_failed(why, time.monotonic()) from exc  # Evt17 in Sta4: AA-4
    tune(sock)
    if ssl_context is not None:
        try:
            sock.settimeout(timeouts.connect)
            sock = ssl_context.wrap_socket(sock, server_hostname=host)
        except OSError as exc:  # ssl.SSLError included
            sock.close()
            raise connection.connect_failed(str(exc), time.monotonic(), tls=True) from exc
    channel = Channel(sock, connection, recorder=recorder)
    connection.connected(time.monotonic())  # AE-2: send the A-ASSOCIATE-RQ
    channel.pump(lambda: connection.established or connection.over)
    if connection.established:
        return channel
    channel._finish()
    raise connection.error or AssociationAborted(
        f"{peer} closed the connection without answering the A-ASSOCIATE-RQ"
    )


Negotiator = Callable[[A_ASSOCIATE_RQ], "A_ASSOCIATE_AC | A_ASSOCIATE_RJ"]
Handler = Callable[[Channel], None]
