"""Taking connections from a listening socket, with the back-off of ROBUSTNESS 47:
out of file descriptors (EMFILE, ENFILE) or of kernel memory, `accept` fails while
the listener stays readable, and a loop that retried at once would spin a core. It
pauses instead, from 50 ms doubling to 2 s, says so once, and says when it is over.

Used by the one-process server's loop (`dul.drivers.server`) and by the supervisor of
several workers (`dul.drivers.prefork`), each deciding what to do with a connection.
"""

from __future__ import annotations

import errno
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

from dul.admission import Episode

#: errno values of `accept` that mean "not now": out of descriptors or memory.
EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_BACKOFF_FIRST = 0.05
_BACKOFF_MOST = 2.0
#: Connections taken from the listen queue at one wake, before the others get a turn.
ACCEPT_BATCH = 64


class PacedAccept:
    """`accept` on `listener` (non-blocking) that pauses when the process is out of
    descriptors or memory; `resume_at` is when to try again (None: not paused)."""

    def __init__(self, listener: socket.socket) -> None:
        self.listener = listener
        self.resume_at: float | None = None
        self._backoff = _BACKOFF_FIRST
        self.exhausted = Episode("out of file descriptors or memory: accepting paused")

    def accept(self, detail: Callable[[], str] = str) -> Iterator[tuple[socket.socket, Any]]:
        """The connections waiting now (at most ACCEPT_BATCH). Out of descriptors, it
        pauses (`resume_at`), logging once with `detail()`, and stops."""
        for _ in range(ACCEPT_BATCH):
            try:
                conn, address = self.listener.accept()
            except BlockingIOError:  # the listen queue is empty: no shortage any more
                self.exhausted.over()
                self._backoff = _BACKOFF_FIRST
                return
            except OSError as exc:
                if exc.errno in EXHAUSTED:
                    extra = detail()
                    self.exhausted.hit(
                        f"{exc.strerror}; {extra + '; ' if extra else ''}"
                        f"retrying in {self._backoff:g} s"
                    )
                    self.resume_at = time.monotonic() + self._backoff
                    self._backoff = min(self._backoff * 2, _BACKOFF_MOST)
                return  # another error (ECONNABORTED...): the next wake tries again
            yield conn, address

    def paused(self, now: float) -> bool:
        """Whether accepting is still paused at `now` (and no longer, once it is past)."""
        if self.resume_at is not None and now >= self.resume_at:
            self.resume_at = None
        return self.resume_at is not None
