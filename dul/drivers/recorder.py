"""The PDU dump (`dicomscu --dump-pdus FILE`): the drivers' record of the bytes of
each association, both ways, in the format of `dul.dump`, which `dul.explain` reads.

A driver module: it keeps a clock (the time of each record) and a lock (a client's
associations may run at once in threads).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import BinaryIO

from dul.dump import ENDED, MAGIC, PARTIAL, RECEIVED, SENT, STARTED, encode_record
from dul.fields import Buffer
from dul.pdu import HEADER


class PduRecorder:
    """Writes every PDU of the associations given to it, both ways, to one dump file
    (format: `dul.dump`), each as one flushed record with its association number
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


def current_recorder() -> PduRecorder | None:
    """The recorder of the enclosing `recording` block, in this thread (None: none)."""
    return _recorder.get()
