"""Steps 3 and 4 of storing, for a batch of instances (dimse/archive/archive.py says
the whole; dimse/archive/group_commit.py forms the batches): under the archive's
commit lock and the index's locks, journal them in one transaction, rename them into
place with each directory fsynced once, index them in one transaction, and give each
its status.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dimse.archive.schema import Record
from dimse.archive.store import PendingStore, status_for
from dimse.status import StoreStatus
from dimse.storage import PendingInstance, fsync_directory

if TYPE_CHECKING:
    from dimse.archive.archive import Archive

# The archive's logger: a store's failures are the archive's to report, under one name.
log = logging.getLogger("dimse.archive.archive")


@dataclass(eq=False, slots=True)
class Ready:
    """An instance checked and synced, waiting for its batch (`Archive._commit_batch`,
    then `commit_locked`)."""

    store: PendingStore
    pending: PendingInstance
    record: Record
    failure: Exception | None = None
    status: StoreStatus = StoreStatus.PROCESSING_FAILURE


def fail_all(batch: Sequence[Ready], exc: Exception) -> list[StoreStatus]:
    """Nothing of the batch was written: each is discarded and answered for `exc`."""
    for ready in batch:
        ready.pending.discard()
    return [status_for(exc)] * len(batch)


def commit_locked(archive: Archive, batch: Sequence[Ready]) -> list[StoreStatus]:
    """The batch's statuses, in order (the module docstring; the caller holds the
    archive's commit lock and the index's locks on the batch's paths)."""
    replace = archive.duplicate_policy == "replace"
    try:
        journal_ids = archive._index.begin_many(
            [(r.record.sop_instance_uid, r.record.path) for r in batch], replace=replace
        )
    except Exception as exc:  # a database error or IndexFull: nothing changed yet
        log.error("C-STORE: the index cannot be written: %s", exc)
        return fail_all(batch, exc)
    statuses: list[StoreStatus | None] = [None] * len(batch)
    placed: list[int] = []  # indexes in the batch of the files renamed into place
    for n, (ready, journal_id) in enumerate(zip(batch, journal_ids, strict=True)):
        statuses[n] = _place(archive, ready, journal_id)
        if statuses[n] is None:
            placed.append(n)
    if archive.fsync:  # the renames made durable, each directory once
        for directory in {batch[n].pending.directory for n in placed}:
            fsync_directory(directory)
    if placed:
        _index_placed(archive, [(batch[n].record, journal_ids[n]) for n in placed], batch)
        for n in placed:
            statuses[n] = batch[n].status
    return [s if s is not None else StoreStatus.PROCESSING_FAILURE for s in statuses]


def _place(archive: Archive, ready: Ready, journal_id: int | None) -> StoreStatus | None:
    """Rename one journaled file into place (None), or its status when it is not."""
    store, pending, record = ready.store, ready.pending, ready.record
    if journal_id is None:
        pending.discard()
        log.info(
            "C-STORE %s: already stored; policy %r",
            store.sop_instance_uid,
            archive.duplicate_policy,
        )
        return archive._duplicate_status()
    try:
        pending.commit(replace=archive.duplicate_policy == "replace", sync_directory=False)
    except FileExistsError:
        # An unindexed file under that name (a store whose index transaction
        # failed): index what is there, then treat this one as the duplicate.
        archive._settle_or_defer(journal_id, record.path)
        return archive._duplicate_status()
    except OSError as exc:  # the temporary file is gone; the final name unchanged
        log.error("C-STORE %s: %s", store.sop_instance_uid, exc)
        archive._settle_or_defer(journal_id, record.path)
        return status_for(exc)
    return None


def _index_placed(
    archive: Archive, items: list[tuple[Record, int | None]], batch: Sequence[Ready]
) -> None:
    """Index the files placed, in one transaction; if it fails, one by one, so
    that one bad row does not fail the others. A file that cannot be indexed is
    in place but not in the index: its journal entry keeps it, and it is indexed
    from disk at the next commit or the next start."""
    by_path = {ready.record.path: ready for ready in batch}
    try:
        archive._index.put_many(items)
    except Exception as exc:
        if len(items) == 1:
            failures = [(items[0], exc)]
        else:
            failures = []
            for item in items:
                try:
                    archive._index.put_many([item])
                except Exception as one:
                    failures.append((item, one))
        for (record, journal_id), why in failures:
            log.error("C-STORE %s: stored but not indexed: %s", record.sop_instance_uid, why)
            if journal_id is not None:
                archive._unsettled.add((journal_id, record.path))
            by_path[record.path].failure = why
    for ready in batch:
        ready.status = (
            status_for(ready.failure) if ready.failure is not None else StoreStatus.SUCCESS
        )
