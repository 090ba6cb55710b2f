"""Who gets an association: the limits of an acceptor, apart from its I/O.

Both servers (`dul.drivers.server`, blocking; `dul.drivers.aio`, asyncio) admit
through one `Admission`:

- the protocol version of the A-ASSOCIATE-RQ first (PS3.8 9.3.2:
  `check_protocol_version`);
- `max_associations` associations at once, and `max_per_caller` for one calling AE
  title: past them, A-ASSOCIATE-RJ (2, 3, 2), rejected-transient, local limit
  exceeded (ROBUSTNESS 17);
- `max_pending` connections still waiting for their A-ASSOCIATE-RQ: past it, the
  one that has waited longest is closed to make room (ROBUSTNESS 48), so that a
  flood of silent connections cannot lock a real caller out for ARTIM's 30 s.

Each limit is logged once when it is hit, and again when the pressure is over. A
blocking server, whose associations end in their own threads, passes a lock.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

from dul.machine import check_protocol_version
from dul.pdu import A_ASSOCIATE_RJ, A_ASSOCIATE_RQ
from dul.reasons import RJ_REASONS

log = logging.getLogger("dul.server")


@dataclass(eq=False)
class Place:
    """A connection's place in the limits, once its A-ASSOCIATE-RQ came. Apart from
    the connection, so that the machine's check refers to it without a reference
    cycle (a cycle would leave every association to the cycle collector)."""

    peer: str
    counted: bool = False
    caller: str = ""


@dataclass
class Episode:
    """A limit being hit: logged once when it starts, once when it ends."""

    what: str
    count: int = 0

    def hit(self, detail: str) -> None:
        if self.count == 0:
            log.warning("%s: %s", self.what, detail)
        self.count += 1

    def over(self) -> None:
        if self.count:
            log.warning("%s: over, after %d time(s)", self.what, self.count)
            self.count = 0


class Tally(Protocol):
    """Counts kept with other processes serving the same port, so that the limits
    hold for all of them together (`dul.drivers.shared_tally.SharedTally`)."""

    def take(self, caller: str, most: int, most_per_caller: int | None) -> str:
        """ "" (a place taken), "full" or "caller" (which limit refuses)."""
        ...

    def give(self, caller: str) -> None: ...


@dataclass
class Admission:
    """The association limits of one server; `tally`: of one worker of several
    (the counts that decide are then the tally's, for the server as a whole)."""

    max_associations: int
    max_per_caller: int | None = None
    max_pending: int = 256
    lock: AbstractContextManager[object] = field(default_factory=contextlib.nullcontext)
    active: int = 0
    by_caller: Counter[str] = field(default_factory=Counter)
    tally: Tally | None = None

    def __post_init__(self) -> None:
        self.full = Episode("association limit reached: A-ASSOCIATE-RJ (2, 3, 2)")
        self.crowded = Episode(
            f"more than {self.max_pending} connections waiting for an A-ASSOCIATE-RQ: "
            "the longest waiting closed"
        )

    def crowding(self, waiting: int) -> bool:
        """Whether one of `waiting` connections must be closed to let a new one in
        (logged); also notes when the crowd has thinned."""
        if waiting >= self.max_pending:
            return True
        if self.crowded.count and waiting < self.max_pending // 2:
            self.crowded.over()
        return False

    def check(self, place: Place) -> Callable[[A_ASSOCIATE_RQ], A_ASSOCIATE_RJ | None]:
        """The machine's check of an A-ASSOCIATE-RQ (AE-6), before anything else is
        done with it: the protocol version, then a place in the limits."""

        def provider_check(request: A_ASSOCIATE_RQ) -> A_ASSOCIATE_RJ | None:
            refusal = check_protocol_version(request)
            if refusal is None:
                refusal = self._take(place, request.calling_ae)
            if refusal is not None:
                log.info(
                    "association from %s (%r -> %r) rejected: %s",
                    place.peer,
                    request.calling_ae,
                    request.called_ae,
                    RJ_REASONS.get((refusal.source, refusal.reason), f"reason {refusal.reason}"),
                )
            return refusal

        return provider_check

    def _take(self, place: Place, caller: str) -> A_ASSOCIATE_RJ | None:
        with self.lock:
            if self.tally is not None:
                verdict = self.tally.take(caller, self.max_associations, self.max_per_caller)
            elif self.active >= self.max_associations:
                verdict = "full"
            elif self.max_per_caller is not None and self.by_caller[caller] >= self.max_per_caller:
                verdict = "caller"
            else:
                verdict = ""
            if verdict == "full":
                self.full.hit(f"{self.max_associations} association(s) open")
                return A_ASSOCIATE_RJ(result=2, source=3, reason=2)
            if verdict == "caller":
                log.warning(
                    "association from %s refused: %r has %d association(s) open, the most one caller may",
                    place.peer,
                    caller,
                    self.max_per_caller,
                )
                return A_ASSOCIATE_RJ(result=2, source=3, reason=2)
            self.active += 1
            self.by_caller[caller] += 1
            place.counted, place.caller = True, caller
            if self.active < self.max_associations:
                self.full.over()
            return None

    def release(self, place: Place) -> None:
        """The association of `place` is over (or was rejected): its place is free."""
        with self.lock:
            if place.counted:
                place.counted = False
                self.active -= 1
                self.by_caller[place.caller] -= 1
                if self.by_caller[place.caller] <= 0:
                    del self.by_caller[place.caller]
                if self.tally is not None:
                    self.tally.give(place.caller)
