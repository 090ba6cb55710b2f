"""The blocking driver of the DIMSE flows: effects performed with sockets and calls.

A flow (`dimse.effects`) is run to its end; its effects are performed in this
thread: `Wait` and `Poll` by the upper layer's socket driver (`dul.drivers.sockets.Channel`,
whose endpoint is the flow's `Engine`), a hook `Call`ed directly, `Connect` by
`dimse.client.connect`. There is nothing here about DIMSE itself: the flows know
the protocol, and the asyncio driver (`dimse.drivers.aio`) runs the same ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from dimse.effects import (
    END,
    Abandoned,
    Call,
    Channels,
    Connect,
    Emit,
    Flow,
    Flush,
    Next,
    Poll,
    Wait,
)
from dul.drivers.sockets import Channel

T = TypeVar("T")

#: How a runner opens an association for `Connect`: (host, port, options) -> channel.
Opener = Callable[[str, int, dict[str, Any]], Channel]


class Runner(Channels[Channel]):
    """Performs the effects of flows over the channels it knows (one per engine)."""

    def __init__(self, channel: Channel, opener: Opener | None = None) -> None:
        super().__init__(channel)
        self.opener = opener

    def run(self, flow: Flow[T]) -> T:
        """Run a flow that emits nothing to its end; its result."""
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                effect = flow.send(value) if error is None else flow.throw(error)
            except StopIteration as stop:
                self.flush()
                return stop.value  # type: ignore[no-any-return]
            value, error = self._perform(effect)

    def iterate(self, flow: Flow[None]) -> Iterator[Any]:
        """Run a flow, yielding what it emits. A user who stops early has the flow
        told (`Abandoned`), and run to its end without them."""
        value: Any = None
        error: BaseException | None = None
        try:
            while True:
                try:
                    effect = flow.send(value) if error is None else flow.throw(error)
                except StopIteration:
                    self.flush()
                    return
                if type(effect) is Emit:
                    self.flush()
                    value, error = None, None
                    yield effect.value
                    continue
                value, error = self._perform(effect)
        except GeneratorExit:
            self._finish(flow)
            raise

    def _finish(self, flow: Flow[None]) -> None:
        try:
            effect = flow.throw(Abandoned())
            while True:
                value, error = (None, None) if type(effect) is Emit else self._perform(effect)
                effect = flow.send(value) if error is None else flow.throw(error)
        except (StopIteration, Abandoned):
            self.flush()

    def flush(self) -> None:
        """Write what every engine has queued; forget the `Connect`ed ones now closed."""
        for key, channel in list(self.channels.items()):
            channel.flush()
            if channel.connection.closed and channel is not self.main:
                del self.channels[key]

    def _perform(self, effect: object) -> tuple[Any, BaseException | None]:
        """(result, None), or (None, the error to throw into the flow)."""
        try:
            self.flush()
            kind = type(effect)
            if kind is Wait:
                assert isinstance(effect, Wait)
                engine = effect.engine
                until = effect.until
                self.channel(engine).pump(lambda: until() or engine.over)
                return None, None
            if kind is Poll:
                assert isinstance(effect, Poll)
                self.channel(effect.engine).poll()
                return None, None
            if kind is Flush:  # written by the flush above
                return None, None
            if kind is Call:
                assert isinstance(effect, Call)
                return effect.function(*effect.args), None
            if kind is Next:
                assert isinstance(effect, Next)
                return next(effect.iterator, END), None
            if kind is Connect:
                assert isinstance(effect, Connect) and self.opener is not None
                channel = self.opener(effect.host, effect.port, effect.options)
                self.add(channel)
                return channel.endpoint, None
            raise TypeError(f"not an effect: {effect!r}")
        except Exception as exc:  # thrown into the flow, which decides
            return None, exc
