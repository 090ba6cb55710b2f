"""Accepting associations: one loop for every connection still waiting, a thread for
each association (the socket code of the acceptor side; the `Channel` is in
`dul.drivers.sockets`).

A connection costs a thread only once its A-ASSOCIATE-RQ has come. Until then it
waits in one selector loop, with the loop's own thread: a socket, a `Connection` in
Sta2 with its ARTIM deadline (PS3.8 9.1.4), and no buffer but what the framing
keeps of a PDU on its way. So a burst of idle connections costs a few kilobytes
each, and the memory goes back when they go. The limits on associations and on
waiting connections are `dul.admission`'s; this loop adds one of its own:

- out of file descriptors (EMFILE, ENFILE) or of kernel memory, `accept` is paused,
  with a back-off from 50 ms to 2 s, rather than retried in a tight loop; the
  connections already open are served, and accepting starts again by itself
  (ROBUSTNESS 47; the pacing is `dul.drivers.accepting`'s). The waiting connection that is oldest is closed too, to give a
  descriptor back.

TLS handshakes run in the loop as well, without blocking it, under the same ARTIM
deadline.

Hand-off mode (`handoff=`, the workers of `dul.drivers.prefork`): the server listens
on nothing itself. Its connections, accepted by a supervisor process, arrive as file
descriptors on the Unix socket `handoff` (SCM_RIGHTS), and it writes one byte back on
that socket as each of them ends, so that the supervisor knows how busy it is. The end
of that socket (the supervisor is gone) calls `on_orphaned`. The workers' limits are
counted together in `tally` (`dul.drivers.shared_tally`).
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dul.admission import Admission, Place, Tally
from dul.connection import Connection, Timeouts
from dul.drivers.accepting import PacedAccept
from dul.drivers.sockets import Channel, Handler, Negotiator, address_text, tune
from dul.drivers.tls_socket import would_block
from dul.errors import AssociationError
from dul.framing import DEFAULT_MAX_ASSOCIATION_LENGTH
from dul.fsm import State
from dul.machine import Machine
from dul.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RJ
from dul.reasons import RJ_REASONS

if TYPE_CHECKING:
    import ssl

log = logging.getLogger("dul.server")

#: The most bytes read at once from a connection still waiting for its A-ASSOCIATE-RQ.
_READ = 64 << 10
#: The most descriptors taken from the hand-off socket at once.
_HANDOFF_BATCH = 64
#: The supervisor's Unix socket a worker's connections arrive on (hand-off mode).
HandOff = socket.socket
#: What a worker writes on its hand-off socket when one of its connections ends.
CONNECTION_ENDED = b"."


@dataclass(eq=False)
class _Waiting:
    """A connection in the loop: its channel (Sta2, ARTIM running), its descriptor
    (kept: the selector forgets it by number, after the socket may be closed), since
    when it waits."""

    channel: Channel
    fd: int
    since: float
    place: Place
    handshaking: bool = False


class Server:
    """Accepts associations on one address (see the module docstring).

    `max_association_length` caps the PDU-length of an A-ASSOCIATE-RQ: a longer one
    is refused from its header, before its body is buffered (ROBUSTNESS 5).
    """

    def __init__(
        self,
        host: str,
        port: int,
        negotiate: Negotiator,
        handler: Handler,
        *,
        max_associations: int = 64,
        timeouts: Timeouts = Timeouts(),
        ssl_context: ssl.SSLContext | None = None,
        max_pdata_length: int = 16384,
        max_association_length: int = DEFAULT_MAX_ASSOCIATION_LENGTH,
        backlog: int = 128,
        max_pending: int = 256,
        max_per_caller: int | None = None,
        handoff: HandOff | None = None,
        on_orphaned: Callable[[], None] | None = None,
        tally: Tally | None = None,
    ) -> None:
        self.negotiate = negotiate
        self.handler = handler
        self.timeouts = timeouts
        self.ssl_context = ssl_context
        self.max_pdata_length = max_pdata_length
        self.max_association_length = max_association_length
        self.max_pending = max_pending
        self._handoff = handoff
        self._on_orphaned = on_orphaned
        if handoff is None:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            self._listener = socket.create_server((host, port), family=family, backlog=backlog)
            self.address: tuple[str, int] = self._listener.getsockname()[:2]
        else:  # the supervisor listens on (host, port) and hands connections over
            self._listener = handoff
            self.address = (host, port)
        self._listener.setblocking(False)
        self._wake_r, self._wake_w = socket.socketpair()
        self._lock = threading.Lock()
        self.admission = Admission(
            max_associations, max_per_caller, max_pending, self._lock, tally=tally
        )
        self._threads: set[threading.Thread] = set()
        self._waiting: dict[int, _Waiting] = {}  # by file descriptor
        self._stopping = False
        self._accept_thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self._pacing = PacedAccept(self._listener)  # accept, paused when out of descriptors

    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def max_associations(self) -> int:
        return self.admission.max_associations

    @property
    def active_associations(self) -> int:
        return self.admission.active

    @property
    def waiting_connections(self) -> int:
        """Connections that have not sent their A-ASSOCIATE-RQ yet."""
        return len(self._waiting)

    def start(self) -> Server:
        """Serve in a background thread; returns at once."""
        self._accept_thread = threading.Thread(
            target=self.serve_forever, name="dul-accept", daemon=True
        )
        self._accept_thread.start()
        return self

    # -- the loop ------------------------------------------------------------------------

    def serve_forever(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            try:
                while not self._stopping:
                    ready = selector.select(self._timeout(time.monotonic()))
                    for key, _ in ready:
                        if key.fileobj is self._wake_r:
                            return
                        if key.fileobj is self._listener:
                            if self._handoff is None:
                                self._accept(selector)
                            else:
                                self._take_over(selector)
                        else:
                            self._advance(selector, key.data)
                    self._expire(selector, time.monotonic())
            finally:
                for waiting in list(self._waiting.values()):
                    self._drop(selector, waiting)

    def _timeout(self, now: float) -> float | None:
        deadlines = [w.channel.connection.next_deadline() for w in self._waiting.values()]
        deadlines.append(self._pacing.resume_at)
        present = [d for d in deadlines if d is not None]
        return max(0.0, min(present) - now) if present else None

    def _accept(self, selector: selectors.BaseSelector) -> None:
        for conn, address in self._pacing.accept(self._crowd):
            self._admit(selector, conn, address)
        if self._pacing.resume_at is not None:  # out of descriptors (ROBUSTNESS 47)
            selector.unregister(self._listener)
            if self._waiting:  # the one that waited longest gives its descriptor back
                self._drop(selector, min(self._waiting.values(), key=lambda w: w.since))

    def _crowd(self) -> str:
        return (
            f"{len(self._waiting)} connection(s) waiting and "
            f"{self.admission.active} association(s) open"
        )

    def _take_over(self, selector: selectors.BaseSelector) -> None:
        """Hand-off mode: admit the connections the supervisor sent (module docstring)."""
        try:
            message, fds, flags, _ = socket.recv_fds(self._listener, 1, _HANDOFF_BATCH)
        except BlockingIOError:
            return
        except OSError as exc:
            log.error("the supervisor's socket failed: %s", exc)
            message, fds = b"", []
        if not message and not fds:  # the supervisor is gone: serve no new connection
            selector.unregister(self._listener)
            if self._on_orphaned is not None:
                self._on_orphaned()
            return
        if flags & socket.MSG_CTRUNC:
            # No descriptor free to receive it in: the kernel closed the connection
            # (ROBUSTNESS 47, for a worker). Said once; the supervisor is told it ended.
            self._pacing.exhausted.hit(f"a connection handed over was closed; {self._crowd()}")
            self._ended()
            return
        if fds:
            self._pacing.exhausted.over()
        for fd in fds:
            conn = socket.socket(fileno=fd)
            try:
                address = conn.getpeername()
            except OSError:  # it was closed on its way here
                conn.close()
                self._ended()
                continue
            self._admit(selector, conn, address)

    def _ended(self) -> None:
        """One connection less: tell the supervisor, in hand-off mode."""
        if self._handoff is not None:
            try:
                self._handoff.send(CONNECTION_ENDED)
            except OSError:  # the supervisor is gone; on_orphaned says so
                pass

    def _admit(
        self, selector: selectors.BaseSelector, conn: socket.socket, address: tuple[str, int]
    ) -> None:
        if self.admission.crowding(len(self._waiting)):
            oldest = min(self._waiting.values(), key=lambda w: w.since)
            self.admission.crowded.hit(f"closing the one from {oldest.channel.peer}")
            self._drop(selector, oldest)
        peer = address_text(address[0], address[1])
        now = time.monotonic()
        try:
            tune(conn)
            conn.setblocking(False)
            sock = conn
            if self.ssl_context is not None:
                sock = self.ssl_context.wrap_socket(
                    conn, server_side=True, do_handshake_on_connect=False
                )
        except OSError as exc:
            log.info("connection from %s ended: %s", peer, exc)
            conn.close()
            self._ended()
            return
        connection = Connection(self._machine(peer), peer, self.timeouts)
        channel = Channel(sock, connection)
        waiting = _Waiting(channel, sock.fileno(), now, Place(peer))
        waiting.handshaking = self.ssl_context is not None
        connection.machine.provider_check = self.admission.check(waiting.place)
        connection.accepted_transport(now)  # AE-5, ARTIM starts
        self._waiting[waiting.fd] = waiting
        selector.register(waiting.fd, selectors.EVENT_READ, waiting)
        if waiting.handshaking:
            self._handshake(selector, waiting)

    def _machine(self, peer: str) -> Machine:
        return Machine(
            requestor=False,
            artim_timeout=self.timeouts.artim,
            max_pdata_length=self.max_pdata_length,
            max_association_length=self.max_association_length,
            name=f"acceptor {peer}",
        )

    def _handshake(self, selector: selectors.BaseSelector, waiting: _Waiting) -> None:
        import ssl  # a TLS server has it already

        sock = waiting.channel.sock
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            selector.modify(waiting.fd, selectors.EVENT_READ, waiting)
            return
        except ssl.SSLWantWriteError:
            selector.modify(waiting.fd, selectors.EVENT_WRITE, waiting)
            return
        except OSError as exc:  # ssl.SSLError, dul.tls's handshake errors
            log.info("TLS handshake with %s failed: %s", waiting.channel.peer, exc)
            self._drop(selector, waiting)
            return
        waiting.handshaking = False
        selector.modify(waiting.fd, selectors.EVENT_READ, waiting)

    def _advance(self, selector: selectors.BaseSelector, waiting: _Waiting) -> None:
        """Read what the connection sent, and feed it to its machine."""
        if waiting.handshaking:
            self._handshake(selector, waiting)
            return
        channel = waiting.channel
        sock = channel.sock
        assert sock is not None
        try:
            data = sock.recv(_READ)
        except OSError as exc:
            if would_block(exc) or isinstance(exc, InterruptedError):
                return  # TLS: not a whole record yet
            log.debug("receive from %s failed: %s", channel.peer, exc)
            data = b""
        now = time.monotonic()
        if not data:
            channel._close_socket()
            channel.connection.receive_closed(now)
        else:
            channel.connection.receive_data(data, now)
            channel.flush()  # a refusal that cannot be written: the peer is gone, closed
        if channel.sock is not None:
            channel.sock.setblocking(False)  # a write above set a timeout
        self._settle(selector, waiting)

    def _settle(self, selector: selectors.BaseSelector, waiting: _Waiting) -> None:
        """After the machine moved: hand an A-ASSOCIATE-RQ over, or drop what ended."""
        channel = waiting.channel
        if channel.connection.request_pending:
            self._forget(selector, waiting)
            self._spawn(waiting)
        elif channel.sock is None or channel.machine.state in (State.Sta1, State.Sta13):
            if channel.machine.state is State.Sta13 and channel.sock is not None:
                return  # a refusal was sent: the peer closes, or ARTIM does (AR-5)
            self._drop(selector, waiting)

    def _expire(self, selector: selectors.BaseSelector, now: float) -> None:
        if self._pacing.resume_at is not None and not self._pacing.paused(now):
            selector.register(self._listener, selectors.EVENT_READ)
        for waiting in list(self._waiting.values()):
            deadline = waiting.channel.connection.next_deadline()
            if deadline is not None and now >= deadline:  # ARTIM (ROBUSTNESS 1, 3, 38)
                if waiting.channel.machine.state is State.Sta2:
                    log.info(
                        "connection from %s closed: no A-ASSOCIATE-RQ within ARTIM (%g s)",
                        waiting.channel.peer,
                        self.timeouts.artim,
                    )
                self._forget(selector, waiting)
                waiting.channel.connection.handle_timer(now)
                waiting.channel.flush()
                self._close(waiting)

    def _forget(self, selector: selectors.BaseSelector, waiting: _Waiting) -> None:
        """Out of the loop (its socket still open)."""
        if self._waiting.pop(waiting.fd, None) is not None:
            selector.unregister(waiting.fd)

    def _drop(self, selector: selectors.BaseSelector, waiting: _Waiting) -> None:
        """Out of the loop, and closed."""
        self._forget(selector, waiting)
        self._close(waiting)

    def _close(self, waiting: _Waiting) -> None:
        channel = waiting.channel
        channel._close_socket()
        channel.connection.receive_closed(time.monotonic())
        self.admission.release(waiting.place)
        self._ended()

    # -- an association ------------------------------------------------------------------

    def _spawn(self, waiting: _Waiting) -> None:
        sock = waiting.channel.sock
        assert sock is not None
        sock.setblocking(True)
        thread = threading.Thread(
            target=self._serve_association,
            args=(waiting,),
            name=f"dul-{waiting.channel.peer}",
            daemon=True,
        )
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def _serve_association(self, waiting: _Waiting) -> None:
        channel = waiting.channel
        connection = channel.connection
        peer = channel.peer
        try:
            request = connection.request
            response: A_ASSOCIATE_AC | A_ASSOCIATE_RJ = self.negotiate(request)
            connection.answer(response, time.monotonic())
            channel.flush()
            if isinstance(response, A_ASSOCIATE_RJ):
                # The AE titles are the peer's bytes: logged escaped (ROBUSTNESS 15).
                log.info(
                    "association from %s (%r -> %r) rejected: %s",
                    peer,
                    request.calling_ae_title,  # as received, padding shown
                    request.called_ae_title,
                    RJ_REASONS.get((response.source, response.reason), f"reason {response.reason}"),
                )
                # A rejected association no longer takes a place in the limits while
                # we wait (ARTIM at most) for the peer to close.
                self.admission.release(waiting.place)
                channel.pump(lambda: connection.closed)
                return
            try:
                self.handler(channel)
            finally:
                if channel.machine.state is not State.Sta1:
                    channel.close()
        except AssociationError as exc:  # released or aborted: the handler's normal end
            log.info("association with %s ended: %s", peer, exc)
        except OSError as exc:  # ssl.SSLError included
            log.info("connection from %s ended: %s", peer, exc)
        except Exception:
            log.exception("association with %s failed", peer)
        finally:
            channel._close_socket()
            self.admission.release(waiting.place)
            with self._lock:
                self._threads.discard(threading.current_thread())
            self._ended()

    # -- stopping ------------------------------------------------------------------------

    def shutdown(self, timeout: float | None = 10.0) -> None:
        """Stop accepting; wait (up to `timeout`) for the associations in progress."""
        self._stopping = True
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if (
            self._accept_thread is not None
            and self._accept_thread is not threading.current_thread()
        ):
            self._accept_thread.join(timeout)
        if self._handoff is None:  # the hand-off socket is its owner's to close
            self._listener.close()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        self._wake_r.close()
        self._wake_w.close()
        self._stopped.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the server is shut down (True), or `timeout` passes (False)."""
        return self._stopped.wait(timeout)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
