"""ROBUSTNESS 39 under asyncio: a peer that stops reading while we write.

The blocking driver bounds each write by the DIMSE timeout (tests/test_robustness_
storage.py); the asyncio driver must too, as client and as server, or one such peer
would hold an association, and its memory, for ever.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dimse import aio
from dimse.datasets import encode_dataset
from dimse.handlers import Caller, Handlers
from dimse.messages import C_FIND_RQ
from dimse.models import MODELS, VERIFICATION, Root
from dul.errors import DulTimeout
from dul.fsm import State
from dul.negotiation import ProposedContext
from tests.aio_support import AioProviderThread
from tests.peers import wait_until
from tests.rawpeer import (
    CT_IMAGE_STORAGE,
    EXPLICIT_LE,
    HOST,
    SHORT,
    RawClient,
    RawServer,
    ct_instance,
    hang_after_accepting,
    request,
)

STUDY_ROOT_FIND = MODELS[Root.STUDY].find


def test_39_asyncio_client_a_peer_that_stops_reading_during_our_c_store(tmp_path: Path) -> None:
    """The storage SCP accepts and then reads nothing while we send a 16 MiB instance:
    the asyncio client's write stops progressing, and after the DIMSE timeout (0.5 s)
    the connection is closed and `store` raises DulTimeout."""
    path = tmp_path / "big.dcm"
    ct_instance(pixels=16 << 20).save_as(path, enforce_file_format=True)
    timeouts = dataclasses.replace(SHORT, dimse=0.5)
    contexts = [ProposedContext(CT_IMAGE_STORAGE, (EXPLICIT_LE,))]

    async def store() -> tuple[float, State]:
        association = await aio.connect(
            HOST, deaf.port, called_ae="DEAF", contexts=contexts, timeouts=timeouts
        )
        start = time.monotonic()
        with pytest.raises(DulTimeout, match="sending"):
            await association.store(path)
        return time.monotonic() - start, association.channel.connection.state

    with RawServer(hang_after_accepting, rcvbuf=4096) as deaf:
        elapsed, state = asyncio.run(asyncio.wait_for(store(), 30))
    assert state is State.Sta1
    assert elapsed < 0.5 + 2.5


class _Endless(Handlers):
    """A C-FIND that never runs out of matches."""

    serves_query = True

    def find(self, caller: Caller, request: C_FIND_RQ, identifier: object) -> Iterator[object]:
        match = ct_instance()
        while True:
            yield match


def test_39_asyncio_server_a_client_that_stops_reading_during_c_find(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A client asks an endless C-FIND of the asyncio provider and reads nothing: the
    provider's writes stop progressing, and after its DIMSE timeout (1 s) it ends the
    association, says why, and goes on serving others."""
    caplog.set_level(logging.INFO, logger="dimse")
    timeouts = dataclasses.replace(SHORT, dimse=1.0, idle=30.0)
    with AioProviderThread(
        _Endless(), ae_title="OURSCP", host=HOST, port=0, timeouts=timeouts
    ) as provider:
        with RawClient(HOST, provider.port) as peer:
            peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            peer.associate(request([(STUDY_ROOT_FIND, (EXPLICIT_LE,))]))
            identifier = encode_dataset(ct_instance(), EXPLICIT_LE)
            start = time.monotonic()
            peer.send_message(
                C_FIND_RQ(message_id=1, affected_sop_class_uid=STUDY_ROOT_FIND), identifier
            )
            wait_until(lambda: _gave_up(caplog), 15, "the provider ends the association")
            assert 1.0 <= time.monotonic() - start < 1.0 + 10.0
            # Its place is free: nothing of the association is kept for the peer. (The
            # kernel may still hold what was written, orphaned, until the peer reads.)
            wait_until(lambda: provider.active_associations == 0, 10, "its place freed")
        contexts = [ProposedContext(VERIFICATION, (EXPLICIT_LE,))]

        async def echo() -> int:
            async with aio.connect(
                HOST, provider.port, called_ae="OURSCP", contexts=contexts, timeouts=SHORT
            ) as association:
                return (await association.echo()).code

        assert asyncio.run(echo()) == 0


def _gave_up(caplog: pytest.LogCaptureFixture) -> bool:
    return any("did not complete" in r.getMessage() for r in caplog.records)
