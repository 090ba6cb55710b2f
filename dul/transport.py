"""The only socket code of the upper layer: a blocking TCP driver for `Machine`.

`request_association()` opens an association as requestor; `dul.server.Server`
accepts them. Both hand out a `Channel`: an established association that sends and
receives whole P-DATA-TF PDUs, releases and aborts.

The driver owns the clock: it passes `time.monotonic()` into the machine, and waits
on the socket with the nearest of the machine's ARTIM deadline and the service
layer's timeout as its timeout. Nothing polls. Every PDU is one `sendall`; sockets
have TCP_NODELAY; receiving goes through
`recv_into` into one reused buffer.

At debug level each association PDU sent is logged item by item (`dul.explain`; the
machine logs those received). A `PduRecorder` (`dicomscu --dump-pdus FILE`) keeps
the bytes of every PDU of the associations it is given, both ways, in the dump
format of `dul.explain`; a channel without one pays one `is None` test per write
and per read.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import os
import selectors
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from dul.errors import (
    AbortReason,
    AssociationAborted,
    AssociationRejected,
    AssociationReleased,
    ConnectionFailed,
    DulTimeout,
    PduError,
)
from dul.explain import (
    ENDED,
    MAGIC,
    PARTIAL,
    RECEIVED,
    SENT,
    STARTED,
    encode_record,
    explain_pdu,
    lent_uid_names,
)
from dul.fsm import State
from dul.items import Buffer
from dul.machine import Machine
from dul.negotiation import MIN_PDV_ROOM, NegotiatedContext, negotiated_contexts
from dul.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RJ, A_ASSOCIATE_RQ, HEADER, P_DATA_TF, Pdu
from dul.primitives import (
    AbortIndication,
    AssociateAccepted,
    AssociateRejected,
    CloseTransport,
    OpenTransport,
    Output,
    PDataIndication,
    ProviderAbortIndication,
    ReleaseConfirmation,
    ReleaseIndication,
    Send,
)

if TYPE_CHECKING:
    import ssl

log = logging.getLogger("dul.transport")

RECEIVE_BUFFER = 1 << 18


@dataclass(frozen=True)
class Timeouts:
    """Seconds; None waits for ever (not advised on a server).

    connect: TCP connect.  acse: waiting for A-ASSOCIATE-AC/RJ and A-RELEASE-RP.
    dimse: waiting for a DIMSE message, and for a send to complete.  idle: a server's
    established association with no traffic.  silent: a server's association that
    has sent no message yet (shorter than idle: an association taken only to hold a
    place in the limit is let go sooner, ROBUSTNESS 48).  artim: PS3.8 9.1.4.
    """

    connect: float | None = 30.0
    acse: float | None = 30.0
    dimse: float | None = 60.0
    idle: float | None = 300.0
    artim: float = 30.0
    silent: float | None = 30.0


# The PDU dump (dicomscu --dump-pdus): the driver's record of the bytes, in the format
# that dul.explain documents and reads.


class PduRecorder:
    """Writes every PDU of the associations given to it, both ways, to one dump file
    (format: `dul.explain`), each as one flushed record with its association number
    and the time since the recorder was made. Thread-safe: a client's associations
    may run at once, each `attach`ed.

    The file is created (emptied) here, so that a path that cannot be written fails
    at once (OSError); it is open while an association is attached, and closed when
    the last one ends. The dump holds the bytes as sent: a passcode of the user
    identity is in it, in clear."""

    def __init__(self, path: str | os.PathLike[str], clock: Callable[[], float] = time.monotonic):
        self.path = path
        self.clock = clock
        self._start = clock()
        self._lock = threading.Lock()
        self._file: BinaryIO | None = None
        self._attached = 0
        self._associations = 0
        with open(path, "wb") as stream:
            stream.write(MAGIC)

    def attach(self, what: str) -> PduTap:
        """A tap for one more association; `what` says which (role, peer)."""
        with self._lock:
            if self._file is None:
                self._file = open(self.path, "ab")  # closed in _detach, by the last
            self._attached += 1
            self._associations += 1
            number = self._associations
        tap = PduTap(self, number)
        self.write(STARTED, number, what.encode("utf-8"))
        return tap

    def write(self, kind: bytes, association: int, data: Buffer) -> None:
        with self._lock:
            if self._file is None:
                return
            self._file.write(encode_record(kind, association, self.clock() - self._start, data))
            self._file.flush()

    def _detach(self) -> None:
        with self._lock:
            self._attached -= 1
            if self._attached == 0 and self._file is not None:
                self._file.close()
                self._file = None


class _Splitter:
    """Cuts a stream of bytes into whole PDUs by their 6-byte headers."""

    def __init__(self) -> None:
        self.pending = bytearray()

    def feed(self, data: Buffer) -> Iterator[bytes]:
        self.pending += data
        while len(self.pending) >= HEADER.size:
            _, _, length = HEADER.unpack_from(self.pending, 0)
            end = HEADER.size + length
            if len(self.pending) < end:
                return
            pdu = bytes(self.pending[:end])
            del self.pending[:end]
            yield pdu


class PduTap:
    """One association's share of a `PduRecorder`: what the channel sends and
    receives, cut into PDUs and written as records."""

    def __init__(self, recorder: PduRecorder, number: int) -> None:
        self.recorder = recorder
        self.number = number
        self._sent = _Splitter()
        self._received = _Splitter()
        self._closed = False

    def sent(self, data: bytes | bytearray | list[Buffer]) -> None:
        joined = b"".join(data) if isinstance(data, list) else data
        for pdu in self._sent.feed(joined):
            self.recorder.write(SENT, self.number, pdu)

    def received(self, data: Buffer) -> None:
        for pdu in self._received.feed(data):
            self.recorder.write(RECEIVED, self.number, pdu)

    def close(self, why: str) -> None:
        if self._closed:
            return
        self._closed = True
        if self._received.pending:
            self.recorder.write(PARTIAL, self.number, self._received.pending)
        self.recorder.write(ENDED, self.number, why.encode("utf-8"))
        self.recorder._detach()


_recorder: contextvars.ContextVar[PduRecorder | None] = contextvars.ContextVar(
    "dul_pdu_recorder", default=None
)


@contextlib.contextmanager
def recording(recorder: PduRecorder | None) -> Iterator[None]:
    """Within the block, `request_association` records the associations it opens
    with `recorder` (None: none), in this thread (a context variable): for a caller
    whose own caller opens the association (`dimse.client.connect`) without a
    parameter for it."""
    token = _recorder.set(recorder)
    try:
        yield
    finally:
        _recorder.reset(token)


def _remaining(deadline: float | None, now: float) -> float | None:
    return None if deadline is None else max(0.0, deadline - now)


def _nearest(*deadlines: float | None) -> float | None:
    present = [d for d in deadlines if d is not None]
    return min(present) if present else None


class Channel:
    """An association over one socket: the driver of one `Machine`."""

    def __init__(
        self,
        sock: socket.socket,
        machine: Machine,
        timeouts: Timeouts,
        peer: str,
        clock: Callable[[], float] = time.monotonic,
        recorder: PduRecorder | None = None,
    ) -> None:
        self.sock: socket.socket | None = sock
        self.machine = machine
        self.timeouts = timeouts
        self.peer = peer
        self.clock = clock
        # Made at the first blocking receive: a connection still waiting for its
        # A-ASSOCIATE-RQ (dul/server.py) costs no 256 KiB (ROBUSTNESS 48).
        self._buffer: bytearray | None = None
        self._view = memoryview(b"")
        self._inbox: deque[Output] = deque()
        self.contexts: dict[int, NegotiatedContext] = {}
        self.end_reason = ""
        self.tap: PduTap | None = None  # --dump-pdus: where the bytes are recorded
        if recorder is not None:
            role = "requestor" if machine.requestor else "acceptor"
            self.tap = recorder.attach(f"{role}, peer {peer}")

    # -- facts of the association ---------------------------------------------------

    @property
    def request(self) -> A_ASSOCIATE_RQ:
        assert self.machine.request is not None
        return self.machine.request

    @property
    def accept(self) -> A_ASSOCIATE_AC:
        assert self.machine.accept is not None
        return self.machine.accept

    @property
    def established(self) -> bool:
        return self.machine.established

    @property
    def peer_max_pdata_length(self) -> int:
        return self.machine.peer_max_pdata_length

    # -- carrying out the machine's outputs -------------------------------------------

    def _perform(self, outputs: Iterable[Output]) -> None:
        for output in outputs:
            if isinstance(output, Send):
                self._write(output)
            elif isinstance(output, CloseTransport):
                self._close_socket()
            elif isinstance(output, OpenTransport):
                pass  # request_association() has opened it already
            else:
                self._inbox.append(output)

    def _log_sending(self, pdu: Pdu) -> None:
        lines = explain_pdu(pdu, uid_name=lent_uid_names(), request=self.machine.request)
        log.debug("%s: sending %s", self.machine.name, lines[0])
        for line in lines[1:]:  # a record each: no log record holds a line break
            log.debug("%s: %s", self.machine.name, line)

    def _write(self, output: Send) -> None:
        if self.sock is None:
            return
        if output.pdu is not None and log.isEnabledFor(logging.DEBUG):
            self._log_sending(output.pdu)
        if self.tap is not None:
            self.tap.sent(output.data)
        try:
            _set_timeout(self.sock, self.timeouts.dimse)
            _send(self.sock, output.data)
        except (TimeoutError, OSError) as exc:
            self._lost(f"sending to {self.peer} failed: {str(exc) or 'timed out'}")
            raise DulTimeout(
                f"sending to {self.peer} did not complete: {str(exc) or 'timed out'}"
            ) from exc

    def send_pdata(self, data: bytes | bytearray | list[Buffer]) -> None:
        """Send one encoded P-DATA-TF PDU, or a run of them as a list of buffers (Evt9)."""
        self._perform(self.machine.pdata_request(data, self.clock()))

    # -- waiting ----------------------------------------------------------------------

    def next_primitive(self, timeout: float | None) -> Output | None:
        """The next primitive for the user, or None if `timeout` passed first or the
        connection is gone (then `machine.state` is Sta1)."""
        deadline = None if timeout is None else self.clock() + timeout
        tried = False
        while not self._inbox:
            if self.sock is None or self.machine.state is State.Sta1:
                return None
            now = self.clock()
            artim = self.machine.next_deadline()
            if artim is not None and now >= artim:
                self._perform(self.machine.handle_timer(now))
                continue
            if tried and deadline is not None and now >= deadline:
                return None
            tried = True
            self._receive_once(_remaining(_nearest(deadline, artim), now))
        return self._inbox.popleft()

    def _receive_once(self, timeout: float | None) -> None:
        sock = self.sock
        assert sock is not None
        if self._buffer is None:
            self._buffer = bytearray(RECEIVE_BUFFER)
            self._view = memoryview(self._buffer)
        try:
            _set_timeout(sock, timeout)
            count = sock.recv_into(self._buffer)
        except OSError as exc:  # ssl.SSLError is an OSError too
            if _would_block(exc):
                return
            log.debug("%s: receive from %s failed: %s", self.machine.name, self.peer, exc)
            count = 0
        now = self.clock()
        if count == 0:
            self._close_socket()
            self._perform(self.machine.transport_closed(now))
        else:
            if self.tap is not None:
                self.tap.received(self._view[:count])
            self._perform(self.machine.receive_data(self._view[:count], now))

    def receive(self, timeout: float | None) -> P_DATA_TF:
        """The next P-DATA-TF from the peer.

        Raises `AssociationReleased` when the peer releases (we answer it),
        `AssociationAborted` on an abort or a lost connection, `DulTimeout` when
        `timeout` passes first (the association is then aborted).
        """
        primitive = self.next_primitive(timeout)
        if isinstance(primitive, PDataIndication):
            return primitive.pdu
        if isinstance(primitive, ReleaseIndication):
            self._perform(self.machine.release_response(self.clock()))
            self._await_close()
            raise AssociationReleased(f"{self.peer} released the association")
        if primitive is None:
            if self.machine.state is State.Sta1:
                raise AssociationAborted(self.end_reason or f"{self.peer} closed the connection")
            self.abort()
            raise DulTimeout(f"no message from {self.peer} within {timeout} s; association aborted")
        raise self._as_error(primitive)

    def poll(self) -> P_DATA_TF | None:
        """A P-DATA-TF already received or arriving now, else None (never waits,
        never aborts): how a provider looks for a C-CANCEL between responses."""
        primitive = self.next_primitive(0.0)
        if primitive is None:
            if self.machine.state is State.Sta1:
                raise AssociationAborted(self.end_reason or f"{self.peer} closed the connection")
            return None
        self._inbox.appendleft(primitive)
        return self.receive(None)

    def _as_error(self, primitive: Output) -> AssociationAborted:
        if isinstance(primitive, AbortIndication):
            return AssociationAborted(
                f"{self.peer} aborted the association (A-ABORT, source {primitive.source})",
                primitive.source,
                primitive.reason,
            )
        if isinstance(primitive, ProviderAbortIndication):
            return AssociationAborted(
                f"association with {self.peer} aborted: {primitive.message}",
                2,
                int(primitive.reason),
            )
        return AssociationAborted(f"unexpected {type(primitive).__name__} from {self.peer}")

    def _await_close(self) -> None:
        """In Sta13: wait for the peer to close, at most until ARTIM expires."""
        while self.sock is not None and self.machine.state is not State.Sta1:
            self.next_primitive(None)

    # -- ending ---------------------------------------------------------------------

    def release(self) -> None:
        """A-RELEASE (Evt11), release collision included; returns in Sta1."""
        if self._state() is not State.Sta6:
            if self._state() is not State.Sta1:
                self.abort()
            return
        self._perform(self.machine.release_request(self.clock()))
        while self._state() is not State.Sta1:
            primitive = self.next_primitive(self.timeouts.acse)
            if primitive is None:
                if self._state() is not State.Sta1:
                    self.abort()
                    raise DulTimeout(
                        f"{self.peer} did not answer A-RELEASE-RQ; association aborted"
                    )
            elif isinstance(primitive, ReleaseIndication):  # collision (AR-8)
                if self._state() is State.Sta9:
                    self._perform(self.machine.release_response(self.clock()))
            elif isinstance(primitive, ReleaseConfirmation):
                if self._state() is State.Sta12:  # acceptor side of a collision
                    self._perform(self.machine.release_response(self.clock()))
                    self._await_close()
            elif isinstance(primitive, PDataIndication):
                log.debug(
                    "%s: P-DATA received while releasing (AR-6); not awaited", self.machine.name
                )
            else:
                raise self._as_error(primitive)

    def _state(self) -> State:
        # Read afresh: every _perform may change it (a plain attribute read would be
        # narrowed by the type checker as if it could not).
        return self.machine.state

    def abort(self) -> None:
        """A-ABORT (Evt15) and close: never blocks for long."""
        if self.machine.state in (State.Sta1, State.Sta2, State.Sta13):
            self._close_socket()
            if self.machine.state is not State.Sta1:
                self._perform(self.machine.transport_closed(self.clock()))
            return
        self._send_abort_and_close(self.machine.abort_request(self.clock()))

    def abort_invalid(self, reason: AbortReason, message: str) -> None:
        """The peer's P-DATA broke PS3.8 in a way only the layer above can see (its
        PDVs, ROBUSTNESS 18-21): A-ABORT with source 2 (service-provider) and `reason`
        (Evt19, AA-8), then close, as `abort()` does. Never blocks for long."""
        log.warning(
            "%s: aborting the association with %s: %s", self.machine.name, self.peer, message
        )
        if self.machine.state in (State.Sta1, State.Sta2, State.Sta13):
            self.abort()
            return
        self.end_reason = message
        outputs = self.machine.invalid_pdu(PduError(reason, message), self.clock())
        self._send_abort_and_close(outputs)

    def _send_abort_and_close(self, outputs: list[Output]) -> None:
        try:
            if self.sock is not None:
                self.sock.settimeout(1.0)
            for output in outputs:
                if isinstance(output, Send) and self.sock is not None:
                    if output.pdu is not None and log.isEnabledFor(logging.DEBUG):
                        self._log_sending(output.pdu)
                    if self.tap is not None:
                        self.tap.sent(output.data)
                    _send(self.sock, output.data)
        except OSError:
            pass
        self._close_socket()
        self._perform(self.machine.transport_closed(self.clock()))

    def _lost(self, why: str) -> None:
        self.end_reason = why
        self._close_socket()
        if self.machine.state is not State.Sta1:
            self._perform(self.machine.transport_closed(self.clock()))

    def _close_socket(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass
        if self.tap is not None:
            tap, self.tap = self.tap, None
            tap.close(self.end_reason)

    def close(self) -> None:
        """Release if established, else abort; always frees the socket."""
        try:
            if self.machine.state is State.Sta6:
                self.release()
            else:
                self.abort()
        except Exception:
            self._close_socket()
            raise

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:
            self.abort()


# The TLS handshake (dul.tls makes the contexts), with one deadline for all of it.


@functools.cache
def deadline_ssl_socket() -> type[ssl.SSLSocket]:
    """The socket class `dul.tls` gives every context it makes. Made at the first TLS
    context, not at import: `ssl` costs about 15 ms of every start of `dicomscu`, and
    a plain association never needs it."""
    import ssl

    from dul.tls import TlsCertificateError, TlsHandshakeError, describe_tls_error

    class DeadlineSSLSocket(ssl.SSLSocket):
        """An `SSLSocket` whose handshake ends at one deadline: the socket's timeout when
        the handshake starts. (The standard class applies the timeout to each read and
        write, so a peer sending a byte now and then could hold a thread for ever.)"""

        def do_handshake(self, block: bool = False) -> None:
            timeout = self.gettimeout()
            if not timeout:  # None (blocking) or 0.0 (non-blocking): as the standard class does
                super().do_handshake(block)
                return
            deadline = time.monotonic() + timeout
            self.settimeout(0.0)
            try:
                with selectors.DefaultSelector() as selector:
                    while True:
                        try:
                            super().do_handshake()
                            return
                        except ssl.SSLWantReadError:
                            events = selectors.EVENT_READ
                        except ssl.SSLWantWriteError:
                            events = selectors.EVENT_WRITE
                        except ssl.SSLCertVerificationError as exc:
                            raise TlsCertificateError(self._certificate_text(exc), exc) from exc
                        except ssl.SSLError as exc:
                            raise TlsHandshakeError(describe_tls_error(exc), exc) from exc
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            raise TimeoutError(f"no complete TLS handshake within {timeout:g} s")
                        selector.register(self, events)
                        ready = selector.select(remaining)
                        selector.unregister(self)
                        if not ready:
                            raise TimeoutError(f"no complete TLS handshake within {timeout:g} s")
            finally:
                if self.fileno() != -1:
                    self.settimeout(timeout)

        def _certificate_text(self, exc: ssl.SSLCertVerificationError) -> str:
            whose = "client's" if self.server_side else "server's"
            return (
                f"the {whose} certificate could not be verified ({exc.verify_message}); "
                "check the CA certificate given to verify it"
                + ("" if self.server_side else " and the host name called")
            )

    return DeadlineSSLSocket


# `ssl` is imported only where a TLS context is made (dul.tls): a plain association
# does without its 15 ms of start-up. Until it is imported, no socket or error is TLS.


def _is_tls(sock: socket.socket) -> bool:
    ssl = sys.modules.get("ssl")
    return ssl is not None and isinstance(sock, ssl.SSLSocket)


def _would_block(exc: OSError) -> bool:
    """A read that found nothing yet: a timeout, or TLS waiting for a whole record."""
    if isinstance(exc, TimeoutError | BlockingIOError):
        return True
    ssl = sys.modules.get("ssl")
    return ssl is not None and isinstance(exc, ssl.SSLWantReadError)


def _set_timeout(sock: socket.socket, timeout: float | None) -> None:
    # settimeout is a system call (it sets O_NONBLOCK) even when nothing changes; a
    # C-FIND answers thousands of times, reading for a C-CANCEL between responses
    if sock.gettimeout() != timeout:
        sock.settimeout(timeout)


#: The most buffers one sendmsg takes (Linux's IOV_MAX is 1024).
_GATHER_LIMIT = 1024


def _send(sock: socket.socket, data: bytes | bytearray | list[Buffer]) -> None:
    """Write one PDU, or a run of buffers in order with as few system calls as the
    socket allows (one `sendmsg` per 1,024 buffers)."""
    if not isinstance(data, list):
        sock.sendall(data)
        return
    if _is_tls(sock):  # TLS records are built from one buffer
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


def _address_text(host: str, port: int) -> str:
    """host:port, with an IPv6 address in brackets ([::1]:104)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _tune(sock: socket.socket) -> None:
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
        recorder = _recorder.get()
    if max_pdata_length is None:
        max_pdata_length = request.user_information.maximum_length or 0
    machine = Machine(
        requestor=True, artim_timeout=timeouts.artim, max_pdata_length=max_pdata_length
    )
    machine.associate_request(request, time.monotonic())  # AE-1: TRANSPORT CONNECT
    peer = _address_text(host, port)
    try:
        sock = socket.create_connection((host, port), timeout=timeouts.connect)
    except OSError as exc:
        machine.transport_closed(time.monotonic())  # Evt17 in Sta4: AA-4
        if isinstance(exc, TimeoutError):
            why = f"no answer within {timeouts.connect} s"
        else:
            why = exc.strerror or str(exc)
        raise ConnectionFailed(
            f"cannot connect to {peer}: {why}; check the host name and port, and that the "
            "DICOM server is running"
        ) from exc
    _tune(sock)
    if ssl_context is not None:
        try:
            sock.settimeout(timeouts.connect)
            sock = ssl_context.wrap_socket(sock, server_hostname=host)
        except OSError as exc:  # ssl.SSLError included
            sock.close()
            machine.transport_closed(time.monotonic())
            raise ConnectionFailed(f"TLS handshake with {peer} failed: {exc}") from exc
    channel = Channel(sock, machine, timeouts, peer, recorder=recorder)
    try:
        channel._perform(machine.transport_confirm(time.monotonic()))  # AE-2: send RQ
        primitive = channel.next_primitive(timeouts.acse)
    except DulTimeout:
        raise
    if isinstance(primitive, AssociateAccepted):
        granted = primitive.accept.user_information.maximum_length
        if granted is not None and 0 < granted <= MIN_PDV_ROOM:
            # No P-DATA-TF of that length can hold a PDV with data (PS3.8 D.1).
            channel.abort()
            raise AssociationAborted(
                f"{peer} accepted with a Maximum Length of {granted}, which leaves no room "
                "for a PDV (PS3.8 D.1); association aborted"
            )
        channel.contexts = negotiated_contexts(request, primitive.accept)
        return channel
    if isinstance(primitive, AssociateRejected):
        rj = primitive.reject
        raise AssociationRejected(rj.result, rj.source, rj.reason)
    if primitive is None:
        if machine.state is State.Sta1:
            raise AssociationAborted(
                f"{peer} closed the connection without answering the A-ASSOCIATE-RQ"
            )
        channel.abort()
        raise DulTimeout(f"{peer} did not answer the A-ASSOCIATE-RQ within {timeouts.acse} s")
    channel.abort()
    raise channel._as_error(primitive)


Negotiator = Callable[[A_ASSOCIATE_RQ], "A_ASSOCIATE_AC | A_ASSOCIATE_RJ"]
Handler = Callable[[Channel], None]
