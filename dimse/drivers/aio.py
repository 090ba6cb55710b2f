"""The asyncio driver of the DIMSE flows: the same flows as `dimse.drivers.blocking`,
their effects awaited.

`Wait` and `Poll` wait on the association's `dul.drivers.aio.AioChannel`; a hook is
awaited when it is a coroutine function and run in a thread otherwise (so that a
slow one holds no other association); an iterator of a hook is read with `anext`
or, when it is a plain one, in a thread; `Connect` opens an association with
`dimse.aio.connect`. Nothing about DIMSE is decided here.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncGenerator, Awaitable, Callable
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
from dul.drivers.aio import AioChannel

T = TypeVar("T")

#: How a runner opens an association for `Connect`: (host, port, options) -> channel.
AioOpener = Callable[[str, int, dict[str, Any]], Awaitable[AioChannel]]


class AioRunner(Channels[AioChannel]):
    """Performs the effects of flows over the channels it knows (one per engine)."""

    def __init__(self, channel: AioChannel, opener: AioOpener | None = None) -> None:
        super().__init__(channel)
        self.opener = opener

    async def run(self, flow: Flow[T]) -> T:
        """Run a flow that emits nothing to its end; its result."""
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                effect = flow.send(value) if error is None else flow.throw(error)
            except StopIteration as stop:
                await self.flush()
                return stop.value  # type: ignore[no-any-return]
            value, error = await self._perform(effect)

    async def iterate(self, flow: Flow[None]) -> AsyncGenerator[Any, None]:
        """Run a flow, yielding what it emits. A user who stops early (and closes the
        iterator, as `async for` ... `break` does when it is collected) has the flow
        told (`Abandoned`), and run to its end without them."""
        value: Any = None
        error: BaseException | None = None
        try:
            while True:
                try:
                    effect = flow.send(value) if error is None else flow.throw(error)
                except StopIteration:
                    await self.flush()
                    return
                if type(effect) is Emit:
                    await self.flush()
                    value, error = None, None
                    yield effect.value
                    continue
                value, error = await self._perform(effect)
        except GeneratorExit:
            await self._finish(flow)
            raise

    async def _finish(self, flow: Flow[None]) -> None:
        try:
            effect = flow.throw(Abandoned())
            while True:
                value, error = (None, None) if type(effect) is Emit else await self._perform(effect)
                effect = flow.send(value) if error is None else flow.throw(error)
        except (StopIteration, Abandoned):
            await self.flush()

    async def flush(self) -> None:
        """Write what every engine has queued; forget the `Connect`ed ones now closed."""
        for key, channel in list(self.channels.items()):
            await channel.flush()
            if channel.connection.closed and channel is not self.main:
                del self.channels[key]

    async def _perform(self, effect: object) -> tuple[Any, BaseException | None]:
        """(result, None), or (None, the error to throw into the flow)."""
        try:
            await self.flush()
            kind = type(effect)
            if kind is Wait:
                assert isinstance(effect, Wait)
                engine = effect.engine
                until = effect.until
                await self.channel(engine).pump(lambda: until() or engine.over)
                return None, None
            if kind is Poll:
                assert isinstance(effect, Poll)
                await self.channel(effect.engine).poll()
                return None, None
            if kind is Flush:  # written by the flush above
                return None, None
            if kind is Call:
                assert isinstance(effect, Call)
                return await _call(effect.function, effect.args), None
            if kind is Next:
                assert isinstance(effect, Next)
                return await _next(effect.iterator), None
            if kind is Connect:
                assert isinstance(effect, Connect) and self.opener is not None
                channel = await self.opener(effect.host, effect.port, effect.options)
                self.add(channel)
                return channel.endpoint, None
            raise TypeError(f"not an effect: {effect!r}")
        except Exception as exc:  # thrown into the flow, which decides
            return None, exc


async def _call(function: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """A hook's answer: awaited when it is async (or returns an awaitable, as an
    async generator's `aclose` does), else computed in a thread."""
    if inspect.iscoroutinefunction(function) or _is_async_close(function):
        result = function(*args)
    else:
        result = await asyncio.to_thread(function, *args)
    if inspect.isawaitable(result):
        result = await result
    return result


def _is_async_close(function: Callable[..., Any]) -> bool:
    owner = getattr(function, "__self__", None)
    return inspect.isasyncgen(owner) or hasattr(owner, "__anext__")


async def _next(iterator: Any) -> Any:
    if hasattr(iterator, "__anext__"):
        return await anext(iterator, END)
    return await asyncio.to_thread(next, iterator, END)
