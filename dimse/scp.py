"""The service provider (SCP) API, blocking: a server whose associations the hooks
of a `Handlers` object serve.

    class MyHandlers(Handlers):
        def store(self, caller, request, data, transfer_syntax):    # -> status
            ...
    with Provider(MyHandlers(), ae_title="MYSCP", port=11112) as provider:
        provider.wait()

This module is a driver: `dul.drivers.server.Server` accepts the associations
(a thread each), and each is served by `dimse.serve`'s flow, run by
`dimse.drivers.blocking.Runner`. The protocol (status responses, C-CANCEL, the
sub-operations of C-MOVE and C-GET, 0211H) is in the flows; `dimse.aio.Provider`
runs the same ones with asyncio.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from dimse.client import open_channel
from dimse.drivers.blocking import Runner
from dimse.handlers import ANY_TRANSFER_SYNTAX as ANY_TRANSFER_SYNTAX
from dimse.handlers import Caller as Caller
from dimse.handlers import Handlers as Handlers
from dimse.handlers import HandlerStatus as HandlerStatus
from dimse.handlers import StoreSink as StoreSink
from dimse.provider_options import DEFAULT_MAX_PDU as DEFAULT_MAX_PDU
from dimse.provider_options import ProviderOptions, negotiator
from dimse.reassembly import DEFAULT_MAX_IDENTIFIER
from dimse.serve import Session
from dimse.transfer.convert import Decompress
from dul.admission import Tally
from dul.connection import Timeouts
from dul.drivers.server import HandOff, Server
from dul.drivers.sockets import Channel
from dul.negotiation import IdentityCheck

if TYPE_CHECKING:
    import ssl

log = logging.getLogger("dimse.scp")


class Provider:
    """A DICOM server: a `Server` whose associations the `handlers` serve, each in a
    thread of its own. The options are `ProviderOptions`'.

    `handoff`, `on_orphaned`, `tally`: a worker of several processes serving one
    port, whose connections come from a supervisor (`dul.drivers.prefork`) and whose
    limits are counted with the others'; `host` and `port` are then the
    supervisor's, for the logs."""

    def __init__(
        self,
        handlers: Handlers,
        *,
        ae_title: str = "DICOMSCP",
        host: str = "0.0.0.0",
        port: int = 11112,
        timeouts: Timeouts = Timeouts(),
        max_associations: int = 64,
        max_pending: int = 256,
        max_per_caller: int | None = None,
        max_pdu: int = DEFAULT_MAX_PDU,
        check_called_ae: bool = False,
        calling_ae_allowed: Callable[[str], bool] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        identity_check: IdentityCheck | None = None,
        allow_password_without_tls: bool = False,
        async_window: tuple[int, int] | None = (1, 32),
        decompress: Decompress = Decompress.LOSSLESS,
        spool_dir: Path | None = None,
        max_identifier: int = DEFAULT_MAX_IDENTIFIER,
        handoff: HandOff | None = None,
        on_orphaned: Callable[[], None] | None = None,
        tally: Tally | None = None,
    ) -> None:
        options = ProviderOptions(
            ae_title, host, port, timeouts, max_associations, max_pending, max_per_caller,
            max_pdu, check_called_ae, calling_ae_allowed, ssl_context, identity_check,
            allow_password_without_tls, async_window, decompress, spool_dir, max_identifier,
        )  # fmt: skip
        self.handlers = handlers
        self.options = options
        self.settings = options.settings(handlers)
        self.ae_title = ae_title
        self.timeouts = timeouts
        self.policy = options.policy(handlers)
        self.server = Server(
            host,
            port,
            negotiator(handlers, self.policy),
            self._serve,
            max_associations=max_associations,
            max_pending=max_pending,
            max_per_caller=max_per_caller,
            timeouts=timeouts,
            ssl_context=ssl_context,
            max_pdata_length=max_pdu,
            handoff=handoff,
            on_orphaned=on_orphaned,
            tally=tally,
        )

    @property
    def port(self) -> int:
        return self.server.port

    def _serve(self, channel: Channel) -> None:
        engine = self.options.engine(channel.connection, channel.clock())
        channel.endpoint = engine
        try:
            Runner(channel, open_channel).run(Session(self.settings, engine).run())
        finally:
            engine.close()
            channel.pump(lambda: channel.connection.closed)  # Sta13: the peer closes

    def start(self) -> Provider:
        self.server.start()
        return self

    def serve_forever(self) -> None:
        self.server.serve_forever()

    def stop(self, timeout: float | None = 10.0) -> None:
        self.server.shutdown(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the provider is stopped (True), or `timeout` passes (False). A
        Ctrl-C while waiting stops it (the associations in progress get 10 s), rather
        than ending the program in a KeyboardInterrupt traceback."""
        try:
            return self.server.wait(timeout)
        except KeyboardInterrupt:
            log.info("interrupted: stopping")
            self.stop()
            return True

    def __enter__(self) -> Provider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
