"""Group commit: the stores of concurrent associations made durable together.

Making an instance durable ends with steps that cost a flush of the disk each: the
journal entry, the rename (the directory's fsync) and the index row (see
dimse/archive/archive.py). Done one instance at a time under the archive's lock, N
associations storing at once wait for 3N flushes in a row. Here each thread that
has an instance ready queues it; the first to find no commit running leads: it
takes every instance queued so far and commits them as one batch (one journal
transaction, the renames, each directory fsynced once, one index transaction), then
wakes their threads. Meanwhile the next instances queue up for the next batch,
which the first of them leads. One association alone gets a batch of one, as
before; eight get batches of up to eight, for the flushes of one.

Fairness: a leader commits one batch only, its own instance in it, and hands the
lead to the oldest instance still queued, so that no association serves the others
for long.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from dimse.drivers.locks import Signal, new_lock, new_signal

T = TypeVar("T")
R = TypeVar("R")

#: The most instances in one batch (one index transaction).
BATCH_MOST = 64


@dataclass(eq=False)
class _Waiter(Generic[T, R]):
    item: T
    signal: Signal | None = None  # made only for a waiter that waits (not a leader)
    result: R | None = None
    error: BaseException | None = None
    lead: bool = False


class GroupCommit(Generic[T, R]):
    """Runs `commit(batch)` (results in the order of the batch) for items submitted
    by several threads, several at a time (see the module docstring)."""

    def __init__(self, commit: Callable[[Sequence[T]], Sequence[R]]) -> None:
        self._commit = commit
        self._lock = new_lock()
        self._queue: list[_Waiter[T, R]] = []
        self._running = False
        #: batches committed, and the items in them (their ratio: the mean batch)
        self.batches = 0
        self.items = 0

    @property
    def queued(self) -> int:
        """Items waiting for a batch (not counting one being committed)."""
        with self._lock:
            return len(self._queue)

    def submit(self, item: T) -> R:
        """Commit `item` (with whatever else is queued); its result, or its exception."""
        waiter: _Waiter[T, R] = _Waiter(item)
        with self._lock:
            self._queue.append(waiter)
            if not self._running:
                self._running = waiter.lead = True
            else:
                waiter.signal = new_signal()
        if waiter.signal is not None:
            waiter.signal.wait()
        if waiter.lead:
            self._lead(waiter)
        if waiter.error is not None:
            raise waiter.error
        assert waiter.result is not None
        return waiter.result

    def _lead(self, leader: _Waiter[T, R]) -> None:
        with self._lock:
            # The leader is the oldest item queued (the first, or the one the last
            # leader handed the lead to): the batch holds it.
            batch, self._queue = self._queue[:BATCH_MOST], self._queue[BATCH_MOST:]
            self.batches += 1
            self.items += len(batch)
        try:
            results = self._commit([w.item for w in batch])
        except BaseException as exc:
            for waiter in batch:
                waiter.error = exc
        else:
            for waiter, result in zip(batch, results, strict=True):
                waiter.result = result
        with self._lock:
            following = self._queue[0] if self._queue else None
            if following is None:
                self._running = False
            else:
                following.lead = True
        for waiter in batch:
            waiter.lead = False
            if waiter is not leader and waiter.signal is not None:
                waiter.signal.set()
        if following is not None and following.signal is not None:
            following.signal.set()
