"""Several processes serving one port: a supervisor that accepts, workers that serve.

Python runs one thread at a time in a process, so a server that is to use every core
runs several processes. How the connections are spread among them, and why:

- The supervisor owns the listening socket and accepts every connection. It hands
  each one over, as a file descriptor on a Unix socket pair (SCM_RIGHTS), to the ready
  worker with the fewest connections in progress. Each worker writes one byte back
  when it is ready and one as each of its connections ends (`dul.drivers.server`,
  hand-off mode), so the supervisor always knows how busy each one is.
- Not SO_REUSEPORT (a listening socket per worker): the kernel spreads connections by
  a hash of their addresses, blind to load, so 8 associations often land 5 and 3 or
  6 and 2 on two workers; and the connections queued on a worker that dies are
  reset. Not one listening socket shared by all workers either: whichever wakes first
  takes a whole burst, busy or not. Least-connections keeps the spread even, and a
  worker that dies loses only the associations it was serving (whose instances not
  yet acknowledged the peer still has).
- A worker that dies (a crash, SIGKILL) is started again at once, with the same
  number; while it starts, the others take every connection. One that dies before it
  is ready, or within 10 s, is started again after a pause that doubles each time
  (1 s to 30 s), so that a worker that cannot run does not spin a core. At
  `start()`, a worker that cannot start (it ends before it is ready) stops them all.
- `stop()` (on SIGINT or SIGTERM): the listening socket is closed, every worker gets
  SIGTERM and finishes the associations in progress; the supervisor waits for all of
  them (and sends SIGKILL to one still running `grace` seconds later). A worker
  whose supervisor dies sees its socket end, and stops the same way.

Workers are made with fork(), so that they share the supervisor's open files (the
archive's lock) and its loaded code; the supervisor must not have started threads.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from dul.drivers.accepting import PacedAccept
from dul.drivers.shared_tally import SharedTally

log = logging.getLogger("dul.prefork")

#: What a worker writes on its socket once it serves (`CONNECTION_ENDED` is the other).
READY = b"R"
#: A worker's `main(number, socket)`: serves until told to stop; returns the exit status.
WorkerMain = Callable[[int, socket.socket], int]
_PAUSE_FIRST = 1.0
_PAUSE_MOST = 30.0
#: A worker that ran this long before it died is started again without a pause.
_STEADY = 10.0


def listen(host: str, port: int, backlog: int = 128) -> socket.socket:
    """The supervisor's listening socket (port 0: a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=backlog)


def tell_ready(sock: socket.socket) -> None:
    """Said by a worker once it serves: from now on it is handed connections."""
    sock.sendall(READY)


@dataclass(eq=False)
class _Worker:
    number: int
    pid: int = 0
    sock: socket.socket | None = None
    ready: bool = False
    load: int = 0  # connections handed over and not ended yet
    started: float = 0.0
    restart_at: float | None = None
    pause: float = _PAUSE_FIRST


def describe_exit(status: int) -> str:
    """A waitpid status in words."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        with contextlib.suppress(ValueError):
            return f"killed by signal {number} ({signal.Signals(number).name})"
        return f"killed by signal {number}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


class Prefork:
    """A supervisor for `workers` processes running `main` (see the module docstring)."""

    def __init__(
        self, listener: socket.socket, workers: int, main: WorkerMain, *, grace: float = 30.0
    ) -> None:
        if workers < 1:
            raise ValueError("at least one worker")
        self.listener = listener
        self.listener.setblocking(False)
        self.main = main
        self.grace = grace
        self.workers = [_Worker(n) for n in range(1, workers + 1)]
        #: the workers' association counts, for limits that hold for the server
        self.tally = SharedTally(workers)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_w.setblocking(False)
        self._stopping = False
        self._starting = False
        self._stop_asked = False
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._listening = False
        self._pacing = PacedAccept(listener)  # accept, paused when out of descriptors

    # -- starting ------------------------------------------------------------------------

    def _fork(self, worker: _Worker) -> None:
        ours, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:  # the worker
            status = 1
            try:
                ours.close()
                self._close_in_worker()
                # A Ctrl-C reaches the whole process group: the supervisor alone takes
                # it, and stops the workers in order.
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                self.tally.worker = worker.number
                status = self.main(worker.number, theirs)
            except BaseException:
                log.exception("worker %d failed", worker.number)
            finally:
                logging.shutdown()
                os._exit(status)
        theirs.close()
        ours.setblocking(False)
        worker.pid, worker.sock, worker.ready, worker.load = pid, ours, False, 0
        worker.started = time.monotonic()
        worker.restart_at = None
        self._selector.register(ours, selectors.EVENT_READ, worker)
        log.debug("worker %d started (pid %d)", worker.number, pid)

    def _close_in_worker(self) -> None:
        """What a worker must not hold: the listening socket, and the supervisor's end
        of the other workers' sockets (else those would not end when it dies)."""
        self.listener.close()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()
        for other in self.workers:
            if other.sock is not None:
                other.sock.close()

    def start(self) -> bool:
        """Start every worker and wait until each is ready. False (after stopping
        them all) when one ends first, or `stop()` was asked meanwhile."""
        self._starting = True
        for worker in self.workers:
            self._fork(worker)
        while not all(w.ready for w in self.workers):
            if self._stop_asked or any(w.sock is None for w in self.workers):
                self._stop_all()
                return False
            self._step(None)
        self._starting = False
        return True

    # -- the loop ------------------------------------------------------------------------

    def run(self) -> int:
        """Serve until `stop()`; returns 0 once every worker has ended."""
        while not self._stop_asked:
            self._step(self._next_timeout())
            self._restart_due()
        self._stop_all()
        return 0

    def _next_timeout(self) -> float | None:
        due = [w.restart_at for w in self.workers if w.restart_at is not None]
        if self._pacing.resume_at is not None:
            due.append(self._pacing.resume_at)
        return max(0.0, min(due) - time.monotonic()) if due else None

    def _step(self, timeout: float | None) -> None:
        self._listen(
            any(w.ready for w in self.workers)
            and not self._stopping
            and not self._pacing.paused(time.monotonic())
        )
        for key, _ in self._selector.select(timeout):
            if key.fileobj is self._wake_r:
                with contextlib.suppress(BlockingIOError):
                    self._wake_r.recv(64)
            elif key.fileobj is self.listener:
                self._accept()
            else:
                self._hear(key.data)

    def _listen(self, on: bool) -> None:
        """Accept only while a worker can take the connection; else they wait in the
        listen queue."""
        if on != self._listening:
            if on:
                self._selector.register(self.listener, selectors.EVENT_READ)
            else:
                self._selector.unregister(self.listener)
            self._listening = on

    def _accept(self) -> None:
        for conn, _ in self._pacing.accept():  # paused when out of descriptors (47)
            with conn:
                self._hand_over(conn)

    def _hand_over(self, conn: socket.socket) -> None:
        ready = sorted((w for w in self.workers if w.ready), key=lambda w: w.load)
        for worker in ready:
            assert worker.sock is not None
            try:
                socket.send_fds(worker.sock, [b"c"], [conn.fileno()])
            except OSError as exc:  # full (stuck) or gone: the next one takes it
                log.debug("worker %d cannot take a connection: %s", worker.number, exc)
                continue
            worker.load += 1
            return
        log.warning("no worker could take a connection: closed")

    def _hear(self, worker: _Worker) -> None:
        assert worker.sock is not None
        try:
            data = worker.sock.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._ended(worker)
            return
        if READY in data:
            worker.ready = True
            log.debug("worker %d (pid %d) ready", worker.number, worker.pid)
        worker.load = max(0, worker.load - data.count(b"."))

    def _ended(self, worker: _Worker) -> None:
        """The worker's socket ended: it exited. Reap it; start it again unless stopping."""
        assert worker.sock is not None
        self._selector.unregister(worker.sock)
        worker.sock.close()
        worker.sock = None
        _, status = os.waitpid(worker.pid, 0)
        self.tally.reset(worker.number)  # its associations are gone with it
        was_ready, worker.ready = worker.ready, False
        if self._stopping or self._starting:  # (start() stops them all)
            log.debug(
                "worker %d (pid %d) ended: %s", worker.number, worker.pid, describe_exit(status)
            )
            return
        if not was_ready:
            worker.restart_at = time.monotonic() + worker.pause
            log.error(
                "worker %d (pid %d) ended before it was ready (%s); starting it again in %g s",
                worker.number, worker.pid, describe_exit(status), worker.pause,
            )  # fmt: skip
            worker.pause = min(worker.pause * 2, _PAUSE_MOST)
            return
        # One that keeps dying soon after it starts is started again more slowly.
        lived = time.monotonic() - worker.started
        if lived >= _STEADY:
            worker.pause = _PAUSE_FIRST
        delay = 0.0 if lived >= _STEADY else worker.pause
        log.warning(
            "worker %d (pid %d) ended (%s) with %d connection(s); starting it again%s",
            worker.number, worker.pid, describe_exit(status), worker.load,
            f" in {delay:g} s" if delay else "",
        )  # fmt: skip
        if delay:
            worker.pause = min(worker.pause * 2, _PAUSE_MOST)
        worker.restart_at = time.monotonic() + delay

    def _restart_due(self) -> None:
        now = time.monotonic()
        for worker in self.workers:
            if worker.restart_at is not None and now >= worker.restart_at and not self._stop_asked:
                self._fork(worker)

    # -- stopping ------------------------------------------------------------------------

    @property
    def stop_asked(self) -> bool:
        return self._stop_asked

    def stop(self) -> None:
        """Ask the supervisor to stop (safe in a signal handler)."""
        self._stop_asked = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def _stop_all(self) -> None:
        self._stopping = True
        self._listen(False)
        self.listener.close()
        for worker in self.workers:
            worker.restart_at = None
            if worker.sock is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        while any(w.sock is not None for w in self.workers):
            left = deadline - time.monotonic()
            if left <= 0:
                for worker in self.workers:
                    if worker.sock is not None:
                        log.warning("worker %d still running: killed", worker.number)
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(worker.pid, signal.SIGKILL)
                deadline = time.monotonic() + self.grace
                continue
            self._step(left)
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()
