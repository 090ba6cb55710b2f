"""What a service needs from its driver, as values: the seam between the services
and the I/O.

The services (`dimse.scu`, `dimse.serve`) are written once, as generators over
`dimse.engine.Engine`s. When one needs something that takes time (bytes from the
peer, a handler's answer, a new association) it yields an effect and is resumed
with the result; a failure comes back thrown in at the `yield`. A driver is then
only a loop that performs effects: the blocking one (`dimse.drivers.blocking`)
with sockets and calls, the asyncio one (`dimse.aio`) with awaits. (psycopg 3 is
built the same way: its `generators` module speaks the protocol, its `waiting`
module waits, once blocking and once with asyncio.)

Before it performs any effect but `Emit`, a driver writes what every engine of
the flow has queued (`Engine.take_output`), so a service queues messages and never
writes; `Flush` is a point where what is queued goes out before its next wait.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from dimse.engine import Engine


@dataclass(frozen=True, slots=True)
class Wait:
    """Receive on `engine`'s association until `until()` holds or nothing more can
    come (`engine.over`). Timeouts are the engine's deadlines, not the driver's."""

    engine: Engine
    until: Callable[[], bool]


@dataclass(frozen=True, slots=True)
class Poll:
    """Take what `engine` has received by now, without waiting (a C-CANCEL-RQ
    between two responses)."""

    engine: Engine


@dataclass(frozen=True, slots=True)
class Flush:
    """Resume at once, once the driver has written what is queued (as it does before
    any effect). For a flow that wants the peer to have a message now rather than
    at its next wait: a C-STORE-RQ the peer can store while we read the next file."""


FLUSH = Flush()


@dataclass(frozen=True, slots=True)
class Call:
    """Call a handler's hook: `function(*args)`. An asyncio driver awaits it when it
    is a coroutine function, and runs a plain one in a thread."""

    function: Callable[..., Any]
    args: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class Next:
    """The next item of a handler's iterator (or async iterator), or `END`."""

    iterator: Any


@dataclass(frozen=True, slots=True)
class Connect:
    """Open an association as requestor (a C-MOVE's sub-operations): the driver's
    own `connect(host, port, **options)`; resumed with its `Engine`. The flow ends it
    as any other (`dimse.scu.Requestor.release`); the driver forgets it once closed."""

    host: str
    port: int
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Emit:
    """A value for the user of an iterating operation (a C-FIND response)."""

    value: Any


class _End:
    def __repr__(self) -> str:
        return "END"


#: What `Next` gives when the iterator is done.
END: Any = _End()

Effect = Wait | Poll | Flush | Call | Next | Connect | Emit

T = TypeVar("T")
#: A service written as a generator of effects, returning T.
Flow = Generator[Effect, Any, T]


class Abandoned(Exception):
    """Thrown into an iterating flow whose user stopped early: the flow ends its
    operation as PS3.7 wants (C-CANCEL) and returns; its `Emit`s are then dropped."""


class Driven(Protocol):
    """A driver's channel: the association whose `endpoint` is an `Engine`."""

    endpoint: Any


C = TypeVar("C", bound=Driven)


class Channels(Generic[C]):
    """The channels a runner drives, found by their engine: the flow's own (`main`)
    and those its `Connect` effects opened (a C-MOVE's sub-associations)."""

    def __init__(self, main: C) -> None:
        self.channels: dict[int, C] = {}
        self.main = main
        self.add(main)

    def add(self, channel: C) -> None:
        self.channels[id(channel.endpoint)] = channel

    def channel(self, engine: Engine) -> C:
        channel = self.channels.get(id(engine))
        if channel is None:  # a `Connect`ed association already closed and forgotten
            raise engine.error
        return channel
