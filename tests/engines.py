"""Helpers for testing DIMSE without sockets, threads or sleeps: `dimse.engine.Engine`s
wired back to back, the flows of `dimse.scu` and `dimse.serve` run in memory, and a
fake clock (`tests.machines.Clock`: every input carries `clock.now`; only a test
moves it).

- `pair(clock, contexts, handlers)`: a requestor and an acceptor, each a `Connection`
  with its `Engine`, established back to back as `dimse.client.connect` and
  `dimse.scp.Provider` establish them: the A-ASSOCIATE-RQ made by `build_request`,
  the answer by `negotiate` under the provider's `AcceptorPolicy`
  (`ProviderOptions.policy`), the acceptor's engine with the provider's idle and
  silent timeouts (`ProviderOptions.engine`).
- `Link`: the one TCP connection of a pair. What a side's endpoint gives
  (`take_output`) goes into the other side's inbox; `pump()` delivers until nothing
  moves. A side whose endpoint wants the connection closed closes its end, and its
  peer reads EOF after the bytes sent before. A `held` side reads nothing (a peer
  that does not read). Each side keeps the PDUs it sent, decoded (`sent`), and the
  DIMSE messages among them (`messages()`): what the tests assert on.
- `BackToBack`: runs flows (a `Requestor`'s, the server's `Session.run()`, those of a
  C-MOVE's destination) together, one effect per flow in turn, delivering the bytes
  between turns: `Wait` waits for its condition (or the end of the association),
  `Poll` delivers what is on its way, `Flush` writes and goes on in the same turn,
  `Call` and `Next` are plain Python, `Emit` is
  collected, `Connect` pairs a new `Link` with a destination's `Session`. `advance`
  moves the clock and lets each endpoint whose deadline has come handle its timer.
  It decides nothing about DIMSE: the engines and the flows do.
- Data: `ct_dataset`, `write_instances`; `MemoryHandlers`, a server that keeps what it
  is sent and answers from lists.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, generate_uid

from dimse.commands import decode_command
from dimse.effects import END, Abandoned, Call, Connect, Emit, Flow, Flush, Next, Poll, Wait
from dimse.engine import Engine
from dimse.errors import DimseError
from dimse.handlers import Caller, Handlers
from dimse.message_base import DimseMessage
from dimse.messages import C_FIND_RQ, C_GET_RQ, C_MOVE_RQ, C_STORE_RQ, message_from_command
from dimse.provider_options import ProviderOptions
from dimse.serve import Session
from dul.connection import Connection, Endpoint, Timeouts
from dul.errors import AssociationAborted, ConnectionFailed, PduError
from dul.fsm import State
from dul.machine import Machine
from dul.negotiation import ProposedContext, build_request, negotiate
from dul.pdu import HEADER, P_DATA_TF, Pdu, decode_pdu
from tests.machines import Clock as Clock

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
UNCOMPRESSED = (EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN)
VERIFICATION = "1.2.840.10008.1.1"

#: The names each side knows its peer by (they appear in the engines' messages).
REQUESTORS_PEER = "scp"
ACCEPTORS_PEER = "scu"


# --------------------------------------------------------------------------------------
# The wire


def split_pdus(data: bytes) -> list[Pdu | bytes]:
    """The PDUs of one write, decoded (bytes for what does not decode)."""
    pdus: list[Pdu | bytes] = []
    offset = 0
    while offset + HEADER.size <= len(data):
        _, _, length = HEADER.unpack_from(data, offset)
        chunk = data[offset : offset + HEADER.size + length]
        try:
            pdus.append(decode_pdu(chunk))
        except PduError:
            pdus.append(chunk)
        offset += HEADER.size + length
    if offset < len(data):
        pdus.append(data[offset:])
    return pdus


@dataclass(eq=False)
class Side:
    """One end of a `Link`: its connection, and the endpoint fed with bytes (the
    connection until the association is established, then its engine)."""

    name: str
    connection: Connection
    endpoint: Endpoint
    inbox: deque[bytes | None] = field(default_factory=deque)  # None: EOF
    sent: list[Pdu | bytes] = field(default_factory=list)
    open: bool = True  # its end of the TCP connection
    held: bool = False  # reads nothing for now

    @property
    def engine(self) -> Engine:
        assert isinstance(self.endpoint, Engine), f"the {self.name} has no engine"
        return self.endpoint

    @property
    def state(self) -> State:
        return self.connection.state

    def pdus(self, kind: type[Any]) -> list[Any]:
        """The PDUs of one type this side sent."""
        return [pdu for pdu in self.sent if isinstance(pdu, kind)]

    def messages(self, kind: type[DimseMessage] = DimseMessage) -> list[Any]:
        """The DIMSE messages this side sent (of `kind`), from their command PDVs."""
        sent = dimse_messages((self.name, pdu) for pdu in self.sent)
        return [message for _, message in sent if isinstance(message, kind)]


def dimse_messages(pdus: Iterable[tuple[str, Pdu | bytes]]) -> list[tuple[str, DimseMessage]]:
    """(sender, message) of each command set among (sender, PDU), in order."""
    found: list[tuple[str, DimseMessage]] = []
    parts: dict[str, list[bytes]] = {}
    for sender, pdu in pdus:
        if not isinstance(pdu, P_DATA_TF):
            continue
        for pdv in pdu.pdvs:
            if not pdv.is_command:
                continue
            command = parts.setdefault(sender, [])
            command.append(pdv.data)
            if pdv.is_last:
                del parts[sender]
                try:
                    found.append((sender, message_from_command(decode_command(b"".join(command)))))
                except DimseError:
                    pass  # a test's deliberate garbage
    return found


class Link:
    """Two sides on one simulated TCP connection, and the fake clock."""

    def __init__(
        self,
        requestor: Side,
        acceptor: Side,
        clock: Clock,
        handlers: Handlers,
        options: ProviderOptions,
    ) -> None:
        self.requestor = requestor
        self.acceptor = acceptor
        self.clock = clock
        self.handlers = handlers  # the acceptor's, for its Session
        self.options = options
        #: (sender's name, PDU) in the order written
        self.wire: list[tuple[str, Pdu | bytes]] = []

    @property
    def sides(self) -> tuple[Side, Side]:
        return self.requestor, self.acceptor

    @property
    def established(self) -> bool:
        return self.requestor.connection.established and self.acceptor.connection.established

    def peer(self, side: Side) -> Side:
        return self.acceptor if side is self.requestor else self.requestor

    def dimse(self) -> list[tuple[str, DimseMessage]]:
        """(sender, message) of every DIMSE message sent on this link, in order."""
        return dimse_messages(self.wire)

    def side_of(self, endpoint: object) -> Side | None:
        return next((s for s in self.sides if s.endpoint is endpoint), None)

    def flush(self, side: Side) -> bool:
        """Write what `side`'s endpoint has for its peer; close its end if it wants."""
        endpoint = side.endpoint
        wrote = False
        for send in endpoint.take_output(self.clock.now):
            # A run's buffers are reused by the next: copied now, as a socket would.
            data = b"".join(send.data) if isinstance(send.data, list) else bytes(send.data)
            if side.open:
                pdus = split_pdus(data)
                side.sent.extend(pdus)
                self.wire.extend((side.name, pdu) for pdu in pdus)
                peer = self.peer(side)
                if peer.open:
                    peer.inbox.append(data)
                wrote = True
        if wrote:
            endpoint.written(self.clock.now)
        if endpoint.close_wanted and side.open:
            self._close(side)
            return True
        return wrote

    def _close(self, side: Side) -> None:
        side.open = False
        side.inbox.clear()
        peer = self.peer(side)
        if peer.open:
            peer.inbox.append(None)
        side.endpoint.receive_closed(self.clock.now)

    def deliver_one(self, side: Side) -> bool:
        """Give `side` the next thing in its inbox: bytes, or EOF (it closes too)."""
        if side.held or not side.open or not side.inbox:
            return False
        data = side.inbox.popleft()
        if data is None:
            side.open = False
            side.inbox.clear()
            side.endpoint.receive_closed(self.clock.now)
        else:
            side.endpoint.receive_data(data, self.clock.now)
        return True

    def pump(self) -> bool:
        """Write and deliver, both ways, until nothing moves; whether anything did."""
        moved = False
        while True:
            step = self.flush(self.requestor) | self.flush(self.acceptor)
            step = self.deliver_one(self.acceptor) | step
            step = self.deliver_one(self.requestor) | step
            if not step:
                return moved
            moved = True

    def fire_timers(self) -> bool:
        """`handle_timer` for each open side whose deadline has come."""
        fired = False
        now = self.clock.now
        for side in self.sides:
            deadline = side.endpoint.next_deadline()
            if side.open and deadline is not None and deadline <= now:
                side.endpoint.handle_timer(now)
                fired = True
        return fired

    def settle(self) -> None:
        """Pump and fire due timers until quiet (a link with no flow on it)."""
        while self.pump() | self.fire_timers():
            pass

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.settle()


def pair(
    clock: Clock,
    contexts: Sequence[ProposedContext],
    handlers: Handlers | None = None,
    *,
    options: ProviderOptions | None = None,
    calling_ae: str = "SCU",
    called_ae: str = "SCP",
    roles: Mapping[str, tuple[bool, bool]] | None = None,
    async_window: tuple[int, int] | None = None,
    timeouts: Timeouts = Timeouts(),
    max_pdu: int = 16384,
    spool_dir: Path | None = None,
    answer: bool = True,
) -> Link:
    """A requestor (`timeouts`, `max_pdu`) and an acceptor (`options`, serving
    `handlers`), back to back; established with their engines unless the acceptor
    refused, or `answer` is False (then the requestor waits in Sta5 and the
    acceptor's A-ASSOCIATE-RQ is pending in Sta3)."""
    handlers = handlers or Handlers()
    options = options or ProviderOptions(ae_title=called_ae)
    request = build_request(
        calling_ae,
        called_ae,
        contexts,
        max_pdata_length=max_pdu,
        roles=roles,
        async_window=async_window,
    )
    now = clock.now
    requestor = Connection(
        Machine(requestor=True, artim_timeout=timeouts.artim, max_pdata_length=max_pdu),
        REQUESTORS_PEER,
        timeouts,
    )
    acceptor = Connection(
        Machine(
            requestor=False,
            artim_timeout=options.timeouts.artim,
            max_pdata_length=options.max_pdu,
        ),
        ACCEPTORS_PEER,
        options.timeouts,
    )
    link = Link(
        Side("requestor", requestor, requestor),
        Side("acceptor", acceptor, acceptor),
        clock,
        handlers,
        options,
    )
    requestor.open(request, now)  # AE-1
    acceptor.accepted_transport(now)  # AE-5
    requestor.connected(now)  # AE-2: the A-ASSOCIATE-RQ goes
    link.pump()
    if answer and acceptor.request_pending:
        acceptor.answer(negotiate(acceptor.request, options.policy(handlers)), clock.now)
        link.pump()
    if link.established:
        link.requestor.endpoint = Engine(requestor, spool_dir=spool_dir)
        link.acceptor.endpoint = options.engine(acceptor, clock.now)
    return link


# --------------------------------------------------------------------------------------
# Running flows


@dataclass(eq=False)
class Task:
    """A flow being run. `stop_after`: its user stops reading after that many `Emit`s;
    with `abandon` the flow is told (`Abandoned`, as `Runner.iterate` does), else it is
    only `held` (a user who stopped reading without leaving)."""

    name: str
    flow: Flow[Any]
    stop_after: int | None = None
    abandon: bool = True
    emitted: list[Any] = field(default_factory=list)
    dropped: list[Any] = field(default_factory=list)  # emitted after the user left
    result: Any = None
    error: BaseException | None = None
    done: bool = False
    held: bool = False
    waiting: Wait | None = None
    _value: Any = None
    _throw: BaseException | None = None
    _left: bool = False

    def outcome(self) -> Any:
        """The flow's result; its error raised; AssertionError if it has not ended."""
        if not self.done:
            raise AssertionError(
                f"{self.name} has not ended (held={self.held}, waiting={self.waiting})"
            )
        if self.error is not None:
            raise self.error
        return self.result


class BackToBack:
    """Runs flows over `Link`s, deterministically. The server's `Session` on the
    first link is started at once (unless `serve` is False: then the test plays the
    acceptor by hand). `destinations` maps (host, port) to the `Handlers` of a C-MOVE
    destination; any other address cannot be connected to (`ConnectionFailed`)."""

    def __init__(
        self,
        link: Link,
        *,
        serve: bool = True,
        destinations: Mapping[tuple[str, int], Handlers] | None = None,
    ) -> None:
        self.link = link
        self.clock = link.clock
        self.links: list[Link] = [link]
        self.tasks: list[Task] = []
        self.destinations = dict(destinations or {})
        self.opened: list[Link] = []  # by `Connect`, in order
        self.server = self.serve(link) if serve else None

    def serve(self, link: Link) -> Task:
        settings = link.options.settings(link.handlers)
        session = Session(settings, link.acceptor.engine)
        return self.start(session.run(), name=f"server of {link.options.ae_title}")

    def start(
        self,
        flow: Flow[Any],
        *,
        name: str = "client",
        stop_after: int | None = None,
        abandon: bool = True,
    ) -> Task:
        task = Task(name, flow, stop_after, abandon)
        self.tasks.append(task)
        return task

    def run(self, flow: Flow[Any]) -> Any:
        """Run a client flow with the others until all is quiet; its result."""
        task = self.start(flow)
        self.settle()
        return task.outcome()

    def collect(self, flow: Flow[Any], stop_after: int | None = None) -> list[Any]:
        """What a client flow emits, once all is quiet (its error raised)."""
        task = self.start(flow, stop_after=stop_after)
        self.settle()
        task.outcome()
        return task.emitted

    def advance(self, seconds: float) -> None:
        """Move the clock, then settle (the endpoints' due timers are fired)."""
        self.clock.advance(seconds)
        self.settle()

    def settle(self, until: Callable[[], bool] | None = None, limit: int = 200_000) -> None:
        """Run the flows and move the bytes until nothing can happen without the
        clock moving (or a held task going on); with `until`, as soon as it holds
        (looked at between rounds)."""
        for _ in range(limit):
            if until is not None and until():
                return
            moved = False
            for task in list(self.tasks):
                moved = self._step(task) or moved
            for link in self.links:
                moved = link.pump() or moved
                moved = link.fire_timers() or moved
            if not moved:
                return
        raise AssertionError(f"the flows did not settle in {limit} rounds")

    # -- one effect of one flow -----------------------------------------------------------

    def _step(self, task: Task) -> bool:
        if task.done or task.held:
            return False
        if task.waiting is not None:
            wait = task.waiting
            if not (wait.until() or wait.engine.over):
                return False
            task.waiting = None
        value, error = task._value, task._throw
        task._value, task._throw = None, None
        try:
            effect = task.flow.send(value) if error is None else task.flow.throw(error)
            while isinstance(effect, Flush):  # written; the flow goes on in this step
                self._flush()
                effect = task.flow.send(None)
        except StopIteration as stop:
            task.done, task.result = True, stop.value
        except Abandoned:
            task.done = True  # a flow that lets its user's leaving through
        except Exception as exc:
            task.done, task.error = True, exc
        else:
            self._perform(task, effect)
        if task.done:
            self._flush()
        return True

    def _perform(self, task: Task, effect: object) -> None:
        self._flush()  # what every engine has queued goes before any effect
        if isinstance(effect, Emit):
            if task._left:
                task.dropped.append(effect.value)
                return
            task.emitted.append(effect.value)
            if task.stop_after is not None and len(task.emitted) >= task.stop_after:
                if task.abandon:
                    task._left, task._throw = True, Abandoned()
                else:
                    task.held = True
            return
        try:
            if isinstance(effect, Wait):
                task.waiting = effect
            elif isinstance(effect, Poll):
                self._link_of(effect.engine).pump()
            elif isinstance(effect, Call):
                task._value = effect.function(*effect.args)
            elif isinstance(effect, Next):
                task._value = next(effect.iterator, END)
            elif isinstance(effect, Connect):
                task._value = self._connect(effect)
            else:
                raise TypeError(f"not an effect: {effect!r}")
        except Exception as exc:  # thrown into the flow, which decides
            task._throw = exc

    def _flush(self) -> None:
        for link in self.links:
            for side in link.sides:
                link.flush(side)

    def _link_of(self, engine: Engine) -> Link:
        for link in self.links:
            if link.side_of(engine) is not None:
                return link
        raise AssertionError("an engine on no link")

    def _connect(self, effect: Connect) -> Engine:
        handlers = self.destinations.get((effect.host, effect.port))
        if handlers is None:
            raise ConnectionFailed(
                f"cannot connect to {effect.host}:{effect.port}: connection refused"
            )
        options = effect.options
        link = pair(
            self.clock,
            options["contexts"],
            handlers,
            calling_ae=options["calling_ae"],
            called_ae=options["called_ae"],
            timeouts=options.get("timeouts", Timeouts()),
            spool_dir=options.get("spool_dir"),
        )
        if not link.established:
            error = link.requestor.connection.error
            raise error or AssociationAborted(f"{effect.host}:{effect.port} did not answer")
        self.links.append(link)
        self.opened.append(link)
        self.serve(link)
        return link.requestor.engine


# --------------------------------------------------------------------------------------
# Data and a server


def ct_dataset(sop_instance_uid: str | None = None, pixels: int = 64, **attributes: Any) -> Dataset:
    """A small CT image in Explicit VR Little Endian; `pixels`: its pixel data bytes."""
    ds = Dataset()
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = sop_instance_uid or generate_uid()
    ds.StudyInstanceUID = "1.2.3.4"
    ds.SeriesInstanceUID = "1.2.3.4.5"
    ds.PatientID = "ENGINE-1"
    ds.PatientName = "Engine^Test"
    ds.Modality = "CT"
    ds.Columns = max(1, min(pixels // 2, 1024))
    ds.Rows = max(1, pixels // 2 // ds.Columns)
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = b"\x01\x02" * (ds.Rows * ds.Columns)
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = UID(EXPLICIT_VR_LITTLE_ENDIAN)
    return ds


def write_instances(directory: Path, count: int, pixels: int = 64) -> list[Path]:
    """`count` Part 10 files of `ct_dataset`s, directory/<n>.dcm."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        path = directory / f"{n + 1}.dcm"
        ct_dataset(f"1.2.3.4.5.{n + 1}", pixels, InstanceNumber=n + 1).save_as(
            path, enforce_file_format=True
        )
        paths.append(path)
    return paths


def store_contexts() -> list[ProposedContext]:
    return [
        ProposedContext(VERIFICATION, UNCOMPRESSED),
        ProposedContext(CT_IMAGE_STORAGE, UNCOMPRESSED),
    ]


class MemoryHandlers(Handlers):
    """A server that keeps in memory what it is sent and answers from lists.

    `matches`: what C-FIND yields (a fresh iterator per request from `find_matches`);
    `files`: what C-MOVE and C-GET send; `destinations`: AE title -> (host, port);
    `store_answers`: SOP Instance UID -> the status to answer, or an exception to
    raise; `before`: hook name -> called first (to hold the server, abort...)."""

    serves_storage = True
    serves_query = True

    def __init__(
        self,
        *,
        matches: Sequence[Dataset] = (),
        files: Sequence[Path] = (),
        destinations: Mapping[str, tuple[str, int]] | None = None,
    ) -> None:
        self.matches = list(matches)
        self.files = list(files)
        self.destinations = dict(destinations or {})
        self.store_answers: dict[str, int | Exception] = {}
        self.before: dict[str, Callable[[], None]] = {}
        self.echoes = 0
        self.stored: list[tuple[C_STORE_RQ, bytes, str]] = []
        self.queries: list[C_FIND_RQ | C_MOVE_RQ | C_GET_RQ] = []
        self.yielded = 0  # matches taken from the find iterators
        self.find_closed = 0  # find iterators closed

    def _before(self, hook: str) -> None:
        action = self.before.get(hook)
        if action is not None:
            action()

    def echo(self, caller: Caller) -> int:
        self._before("echo")
        self.echoes += 1
        return 0

    def store(
        self, caller: Caller, request: C_STORE_RQ, data: bytes | BinaryIO, transfer_syntax: str
    ) -> int:
        self._before("store")
        answer = self.store_answers.get(request.affected_sop_instance_uid, 0)
        if isinstance(answer, Exception):
            raise answer
        raw = data if isinstance(data, bytes) else data.read()
        self.stored.append((request, raw, transfer_syntax))
        return answer

    def find_matches(self) -> Iterator[Dataset]:
        try:
            for match in self.matches:
                self.yielded += 1
                yield match
        finally:
            self.find_closed += 1

    def find(self, caller: Caller, request: C_FIND_RQ, identifier: Dataset) -> Iterator[Dataset]:
        self._before("find")
        self.queries.append(request)
        return self.find_matches()

    def retrieve(
        self, caller: Caller, request: C_MOVE_RQ | C_GET_RQ, identifier: Dataset
    ) -> list[Path]:
        self._before("retrieve")
        self.queries.append(request)
        return list(self.files)

    def destination(self, caller: Caller, ae_title: str) -> tuple[str, int] | None:
        return self.destinations.get(ae_title)
