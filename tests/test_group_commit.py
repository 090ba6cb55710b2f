"""The archive's group commit (dimse/archive/group_commit.py): the instances of
concurrent associations made durable in one batch, each thread given its own result.

Real threads; the first batch is held until the others have queued (polled with a
deadline, never a sleep), so that the second batch is known in advance.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from dimse.archive.archive import Archive
from dimse.archive.group_commit import GroupCommit
from dimse.status import StoreStatus
from tests.peers import wait_until
from tests.rawpeer import ct_instance
from tests.test_archive_data import store

WAIT_S = 30.0


def test_items_queued_during_a_commit_go_together_in_the_next_batch() -> None:
    batches: list[list[int]] = []
    release = threading.Event()

    def commit(batch: Sequence[int]) -> list[str]:
        batches.append(list(batch))
        if len(batches) == 1:
            release.wait(WAIT_S)
        return [f"done {item}" for item in batch]

    group: GroupCommit[int, str] = GroupCommit(commit)
    results: dict[int, str] = {}

    def submit(item: int) -> None:
        results[item] = group.submit(item)

    first = threading.Thread(target=submit, args=(0,))
    first.start()
    wait_until(lambda: len(batches) == 1, WAIT_S, "the first batch running")
    others = [threading.Thread(target=submit, args=(n,)) for n in range(1, 6)]
    for thread in others:
        thread.start()
    wait_until(lambda: group.queued == 5, WAIT_S, "five items queued")
    release.set()
    for thread in [first, *others]:
        thread.join(WAIT_S)
    assert batches[0] == [0]
    assert sorted(batches[1]) == [1, 2, 3, 4, 5]
    assert results == {n: f"done {n}" for n in range(6)}
    assert (group.batches, group.items) == (2, 6)


def test_a_failed_batch_fails_each_of_its_items_and_the_next_batch_runs() -> None:
    release = threading.Event()
    calls: list[list[int]] = []

    def commit(batch: Sequence[int]) -> list[int]:
        calls.append(list(batch))
        if len(calls) == 1:
            release.wait(WAIT_S)
            return [0]
        if len(calls) == 2:
            raise OSError("the disk went away")
        return list(batch)

    group: GroupCommit[int, int] = GroupCommit(commit)
    outcomes: dict[int, object] = {}

    def submit(item: int) -> None:
        try:
            outcomes[item] = group.submit(item)
        except OSError as exc:
            outcomes[item] = exc

    threads = [threading.Thread(target=submit, args=(0,))]
    threads[0].start()
    wait_until(lambda: len(calls) == 1, WAIT_S, "the first batch running")
    threads += [threading.Thread(target=submit, args=(n,)) for n in (1, 2)]
    for thread in threads[1:]:
        thread.start()
    wait_until(lambda: group.queued == 2, WAIT_S, "two items queued")
    release.set()
    for thread in threads:
        thread.join(WAIT_S)
    assert outcomes[0] == 0
    assert all(isinstance(outcomes[n], OSError) for n in (1, 2))
    assert group.submit(7) == 7  # the group goes on after a failed batch


@pytest.mark.parametrize("fsync", [True, False])
def test_concurrent_stores_share_batches_and_all_arrive(tmp_path: Path, fsync: bool) -> None:
    """Eight threads storing into one archive: every instance is indexed and its file
    is there; with fsync, the flushes of one batch serve several instances."""
    instances = [[ct_instance(pixels=2048) for _ in range(15)] for _ in range(8)]
    statuses: list[int] = []
    with Archive(tmp_path / "archive", fsync=fsync) as archive:

        def store_all(mine: list[Dataset]) -> None:
            for ds in mine:
                statuses.append(store(archive, ds))

        threads = [threading.Thread(target=store_all, args=(mine,)) for mine in instances]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT_S * 2)
        assert statuses == [StoreStatus.SUCCESS] * 120
        assert archive.count() == 120
        if fsync:
            assert archive._group.batches < archive._group.items, "no batch held two"
    files = list((tmp_path / "archive" / "instances").rglob("*.dcm"))
    assert len(files) == 120
