"""The embedded archive of `dicomscp`: instances in files, their attributes in an
index, SQLite by default or PostgreSQL shared by several nodes (dimse/archive/backend.py).

Layout under the root directory (nothing is ever written outside it):

    root/.lock                        held (flock) by the one process that has it open
                                      (shared by the nodes of a shared index; by a
                                      supervisor and its workers, dicomscp --workers)
    root/.path-locks                  the workers' record locks (dimse/archive/index.py)
    root/index.sqlite                 the SQLite index, WAL mode (dimse/archive/index.py,
                                      its tables dimse/archive/schema.py)
    root/instances/<hh>/<uid>.dcm     one Part 10 file per instance, as received
    root/instances/<hh>/.incoming-*.part   a file being received
    root/spool/                       data sets converted for a C-MOVE/C-GET, too big
                                      for memory (emptied at start; root/spool/<node>/
                                      for each node of a shared index)

`<uid>.dcm` is the SOP Instance UID when it is a valid UID, else
`invalid-uid-<sha256>.dcm` (dimse/naming.py): a UID such as `../../x`, `/etc/x` or
`a;b` never becomes a path (ROBUSTNESS 29). `<hh>` is the first byte, in hex, of the
SHA-256 of the UID: 256 directories keep each one small, and the final name of an
instance is known from the command alone, so the data is received straight into a
temporary file next to it and renamed in the same directory.

Storing (`begin_store`, then `PendingStore.write` per fragment, then `commit`):

1. The data set bytes go to the temporary file as they arrive, behind a file meta
   group made from the command (dimse/storage.py `PendingInstance`).
2. On commit the whole data set is checked (dimse/received.py): every length within
   the data, every sequence closed, else C000 (Cannot understand); its SOP Class and
   Instance UIDs those of the command, else A900 (Data Set does not match SOP Class;
   ROBUSTNESS 28). Its indexed attributes are then read (dimse/archive/instance_header.py):
   one that lacks its Study or Series Instance UID cannot be filed: C000 (Cannot
   understand), the missing attribute named. The
   reason goes back in the C-STORE response's Error Comment (`PendingStore.refusal`).
3. The file is flushed and fsynced (outside any lock: concurrent associations overlap
   their fsyncs). Then, for the instances of concurrent associations together (a
   group commit, dimse/archive/group_commit.py), under the archive's commit lock and
   the index's lock on each final path (nodes or workers storing the same instance
   take turns): the final paths are journaled in the index, in one transaction; the
   files are renamed to their final names and each directory fsynced once; then one
   transaction indexes the instances and ends their journal entries
   (dimse/archive/batch.py).
4. The status is returned: 0000 only once the file and its index row are durable.

A full disk (ENOSPC, EDQUOT, EFBIG) at any step gives A700 (Out of Resources); the
temporary file is removed at once and the caller may go on with the next instance
(ROBUSTNESS 30). Other I/O errors give 0110 (Processing failure).

Duplicate SOP Instance UIDs (ROBUSTNESS 32), by `duplicate_policy`:

- "replace" (default): the new instance replaces the old one. The rename over the old
  file is atomic, and the index row is replaced in one transaction (the instance moves
  if its series, study or patient changed; parents left empty are removed). Status 0000.
- "keep": the instance stored first stays; the new one is discarded. Status 0000: the
  SCU's aim, that the archive hold this instance, is met.
- "reject": as "keep", with status 0111 (Duplicate SOP Instance, PS3.7 C.5).

Crash safety (ROBUSTNESS 31): a SIGKILL at any moment leaves each final name holding
either the old complete file or the new complete file, never a part of one, because
the only writes to final names are renames of fsynced files. At start the archive
(a) indexes again, from what is on disk, every journaled path, so that a crash between
the rename and the index transaction is rolled forward; and (b) removes the
`.incoming-*.part` files left by a crash. The `.lock` makes sure no other process is
writing into those directories while they are cleaned. With a shared index each node
rolls forward its own journal entries, each under the path's lock, and removes its own
temporary files, and does the same for the nodes that are not running, never for one
that runs (dimse/archive/folder.py).

Queries (`find`, `instances`) are in dimse/archive/query.py; matching rules in
dimse/archive/matching.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

from pydicom.dataset import Dataset

from dimse.archive.backend import ArchiveLocked as ArchiveLocked
from dimse.archive.backend import IndexUnavailable as IndexUnavailable
from dimse.archive.backend import check_node, default_node, is_postgresql, open_index
from dimse.archive.batch import Ready, commit_locked, fail_all
from dimse.archive.folder import INSTANCES_DIR, FolderClaim
from dimse.archive.group_commit import GroupCommit
from dimse.archive.instance_header import UnreadableInstance, read_texts
from dimse.archive.query import FindQuery, retrieve_sql, run_find
from dimse.archive.schema import Record, record_of
from dimse.archive.store import PendingStore, status_for
from dimse.drivers.locks import new_lock
from dimse.models import Root
from dimse.naming import instance_file_name
from dimse.received import Refusal, check_data_set, check_file_data_set, fit
from dimse.status import StoreStatus
from dimse.storage import PendingInstance

log = logging.getLogger(__name__)

DuplicatePolicy = Literal["replace", "keep", "reject"]
_POLICIES = ("replace", "keep", "reject")
INDEX_FILE = "index.sqlite"


@dataclass(frozen=True, slots=True)
class StoredInstance:
    """An instance to send for a C-MOVE or C-GET: the file holds it in `transfer_syntax`."""

    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    path: Path


def _clean_uid(uid: str) -> str:
    return uid.strip("\x00 ")


class Archive:
    """Instances on disk under `root` and their index (see the module docstring).

    `fsync=False` skips the fsync of files, directories and SQLite commits: still safe
    against a crash of the process, not against a power loss (for tests and
    benchmarks). `pn_case_sensitive=False` matches PN keys without regard to case (see
    dimse/archive/matching.py; the standard allows both, case-sensitive is the default).

    `index`: None (or "sqlite") for the SQLite index in the folder; a postgresql:// URI
    for an index shared by several nodes, each opening the same (shared) `root` under
    its own `node` name (default: this machine's name). See dimse/archive/backend.py.

    `worker`: this process is worker number `worker` of a server that serves from
    several processes (dicomscp --workers): its supervisor holds the folder
    (`hold_for_workers`) and forked it. With SQLite the workers share the one index
    (dimse/archive/index.py, `shared`) and are named `w<n>` (their temporary files,
    their spool); with PostgreSQL each is a node named `<node>-<n>`.

    Thread-safe: one Archive serves every association of the server. One process at a
    time may open a given root, or a given node of a shared index (ArchiveLocked
    otherwise).
    """

    def __init__(
        self,
        root: Path,
        *,
        fsync: bool = True,
        duplicate_policy: DuplicatePolicy = "replace",
        pn_case_sensitive: bool = True,
        index: str | None = None,
        node: str | None = None,
        worker: int | None = None,
    ) -> None:
        if duplicate_policy not in _POLICIES:
            raise ValueError(
                f"duplicate_policy must be one of {_POLICIES}, not {duplicate_policy!r}"
            )
        self.root = Path(root).resolve()
        self.fsync = fsync
        self.duplicate_policy = duplicate_policy
        self.fold_pn = not pn_case_sensitive
        shared = is_postgresql(index)
        #: this node's name with a shared index, else "" (or the worker's name)
        self.node = check_node(node or default_node()) if shared else ""
        if worker is not None:
            self.node = check_node(f"{self.node}-{worker}") if shared else f"w{worker}"
        #: the owner written in this process's temporary files' names
        self.temp_owner = self.node
        (self.root / INSTANCES_DIR).mkdir(parents=True, exist_ok=True)
        self._claim = FolderClaim(self.root, self.node, inherited=worker is not None and not shared)
        #: where converted data sets too big for memory are spooled
        self.spool_dir = self._claim.spool_dir
        self._open = True
        self._keep_claim = False  # hold_for_workers: the claim outlives the Archive
        self._commit_lock = new_lock()
        self._group: GroupCommit[Ready, StoreStatus] = GroupCommit(self._commit_batch)
        self._unsettled: set[tuple[int, str]] = set()
        #: instances/<hh> (relative) -> its directory, for those known to exist
        self._shards: dict[str, Path] = {}
        try:
            self._index = open_index(
                index,
                self.root / INDEX_FILE,
                fsync=fsync,
                node=self.node or None,
                workers=worker is not None,
            )
        except BaseException:
            self._claim.release()
            raise
        try:
            self._recover()
        except BaseException:
            self._index.close()
            self._claim.release()
            raise

    # ---- opening

    def _recover(self) -> None:
        """Roll journaled stores forward and remove temporary files (module docstring)."""
        try:
            for journal_id, relative in self._index.journal():
                with self._index.file_lock(relative):
                    self._settle(journal_id, relative)
            self._claim.clean(self._index.adopt)
        finally:
            self._index.release_adopted()

    def _settle(self, journal_id: int, relative: str) -> None:
        """Make the index describe the file at `relative` as it is on disk now (the
        caller holds the index's lock on `relative`)."""
        path = self.root / relative
        try:
            texts_of, syntax = read_texts(path)
            record = record_of(texts_of, syntax, relative, path.stat().st_size)
        except (UnreadableInstance, FileNotFoundError) as exc:
            if path.exists():
                log.error(
                    "archive: %s cannot be read (%s); it is left out of the index", relative, exc
                )
            self._index.remove(relative, journal_id)
            return
        self._index.put(record, journal_id)

    # ---- storing

    def _shard(self, relative: str) -> Path:
        """The instances/<hh> directory, created once; it is never removed while open
        (a mkdir per stored instance costs a file-system lock each time)."""
        directory = self._shards.get(relative)
        if directory is None:
            directory = self.root / relative
            directory.mkdir(exist_ok=True)
            self._shards[relative] = directory
        return directory

    def relative_path(self, sop_instance_uid: str) -> str:
        """Where an instance of this SOP Instance UID is kept, relative to the root."""
        uid = _clean_uid(sop_instance_uid)
        shard = hashlib.sha256(uid.encode("utf-8", "surrogateescape")).hexdigest()[:2]
        return f"{INSTANCES_DIR}/{shard}/{instance_file_name(uid)}"

    def begin_store(
        self, sop_class_uid: str, sop_instance_uid: str, transfer_syntax: str
    ) -> PendingStore:
        """Start receiving an instance: the UIDs and transfer syntax of the C-STORE
        command and presentation context (PS3.7 9.1.1)."""
        return PendingStore(
            self,
            _clean_uid(sop_class_uid),
            _clean_uid(sop_instance_uid),
            _clean_uid(transfer_syntax),
            self.relative_path(sop_instance_uid),
        )

    def _refuse(
        self, store: PendingStore, pending: PendingInstance, status: StoreStatus, why: str
    ) -> StoreStatus:
        log.warning("C-STORE %s refused with %04XH: %s", store.sop_instance_uid, status, why)
        if store.refusal is None:
            store.refusal = Refusal(status, why, fit(why))
        pending.discard()
        return status

    @staticmethod
    def _check(store: PendingStore, pending: PendingInstance) -> Refusal | None:
        """PS3.4 B.2.3 before success: the whole data set reads, and it is the
        command's instance (dimse/received.py). A small one is checked from the bytes
        kept as it arrived, a large one mapped from its temporary file."""
        offset, syntax = store.layout
        if pending.size - offset <= len(store._head):
            return check_data_set(store._head, syntax, store.sop_class_uid, store.sop_instance_uid)
        return check_file_data_set(
            pending.temp_path, offset, syntax, store.sop_class_uid, store.sop_instance_uid
        )

    def _commit(self, store: PendingStore, pending: PendingInstance) -> StoreStatus:
        try:
            pending.sync()  # the fsync of the data, before the lock: associations overlap it
            size = pending.size
        except OSError as exc:
            pending.discard()
            return status_for(exc)
        refusal = self._check(store, pending)
        if refusal is not None:
            store.refusal = refusal
            return self._refuse(store, pending, refusal.status, refusal.reason)
        try:
            texts_of, syntax = read_texts(pending.temp_path, store.layout, bytes(store._head))
            record = record_of(texts_of, syntax, store.relative_path, size)
        except UnreadableInstance as exc:
            return self._refuse(store, pending, StoreStatus.CANNOT_UNDERSTAND, str(exc))
        except Exception as exc:  # a value pydicom cannot decode (a bad character set...)
            return self._refuse(
                store, pending, StoreStatus.CANNOT_UNDERSTAND, f"the data set cannot be read: {exc}"
            )
        problem = self._mismatch(store, record)
        if problem:
            return self._refuse(
                store, pending, StoreStatus.DATA_SET_DOES_NOT_MATCH_SOP_CLASS, problem
            )
        unfiled = self._unfiled(record)
        if unfiled:
            # Not a mismatch with the SOP class: we cannot place it in the archive's
            # patient/study/series hierarchy, hence Cannot understand, with the reason.
            return self._refuse(store, pending, StoreStatus.CANNOT_UNDERSTAND, unfiled)
        unstorable = self._index.dialect.unstorable(record.values)
        if unstorable:
            return self._refuse(store, pending, StoreStatus.CANNOT_UNDERSTAND, unstorable)
        return self._group.submit(Ready(store, pending, record))

    @staticmethod
    def _mismatch(store: PendingStore, record: Record) -> str:
        """Why the data set does not belong under this command, or ''."""
        if record.sop_class_uid != store.sop_class_uid:
            return f"the data set's SOP Class UID {record.sop_class_uid!r} is not the command's {store.sop_class_uid!r}"
        if record.sop_instance_uid != store.sop_instance_uid:
            return f"the data set's SOP Instance UID {record.sop_instance_uid!r} is not the command's {store.sop_instance_uid!r}"
        return ""

    @staticmethod
    def _unfiled(record: Record) -> str:
        """Why the instance cannot be filed in the hierarchy (a missing unique key)."""
        for keyword, tag in (("StudyInstanceUID", "0020,000D"), ("SeriesInstanceUID", "0020,000E")):
            if not record.values[keyword]:
                name = "Study" if keyword.startswith("Study") else "Series"
                return f"no {name} Instance UID ({tag}): cannot be filed"
        return ""

    def _duplicate_status(self) -> StoreStatus:
        if self.duplicate_policy == "reject":
            return StoreStatus.DUPLICATE_SOP_INSTANCE
        return StoreStatus.SUCCESS

    def _commit_batch(self, batch: Sequence[Ready]) -> list[StoreStatus]:
        """Steps 3 and 4 of storing for instances of concurrent associations at once
        (dimse/archive/group_commit.py): their statuses, in order."""
        with self._commit_lock, contextlib.ExitStack() as locked:
            if self._unsettled:
                self._settle_unsettled()
            try:
                for path in sorted({ready.record.path for ready in batch}):
                    locked.enter_context(self._index.file_lock(path))
            except Exception as exc:  # the shared index cannot be reached: nothing changed
                log.error("C-STORE: the index cannot be locked: %s", exc)
                return fail_all(batch, exc)
            return commit_locked(self, batch)

    def _settle_or_defer(self, journal_id: int, relative: str) -> None:
        try:
            self._settle(journal_id, relative)
        except Exception as exc:
            log.error("archive: %s not re-indexed yet: %s", relative, exc)
            self._unsettled.add((journal_id, relative))

    def _settle_unsettled(self) -> None:
        for journal_id, relative in sorted(self._unsettled):
            self._unsettled.discard((journal_id, relative))
            try:
                with self._index.file_lock(relative):
                    self._settle_or_defer(journal_id, relative)
            except Exception as exc:  # the lock could not be taken
                log.error("archive: %s not re-indexed yet: %s", relative, exc)
                self._unsettled.add((journal_id, relative))

    # ---- querying

    def find(self, identifier: Dataset, root: Root, level: str) -> Iterator[Dataset]:
        """The C-FIND responses' identifiers for `identifier` at `level` in the Patient
        Root or Study Root model (PS3.4 C.4.1.3, C.6.1, C.6.2), one per match.

        Raises `dimse.archive.matching.QueryError` (with the failure status to send) at once,
        before any response, when the identifier cannot be answered.
        """
        query = FindQuery(
            identifier, root, level, fold_pn=self.fold_pn, dialect=self._index.dialect
        )
        return run_find(query, self._index.select, self.root)

    def instances(self, identifier: Dataset, root: Root, level: str) -> list[StoredInstance]:
        """The stored instances a C-MOVE or C-GET identifier names: by the Unique Keys
        of `level` and the levels above (PS3.4 C.4.2.2.1, C.4.3.2.1), single values or
        lists of UIDs. Raises `QueryError` when the level's Unique Key is missing."""
        sql, params = retrieve_sql(identifier, root, level, self._index.dialect)
        return [
            StoredInstance(row[0], row[1], row[2], self.root / row[3])
            for row in self._index.select(sql, params)
        ]

    def count(self) -> int:
        """The number of stored instances."""
        return self._index.count()

    @classmethod
    def hold_for_workers(
        cls, root: Path, *, fsync: bool = True, index: str | None = None, node: str | None = None
    ) -> tuple[FolderClaim | None, int]:
        """For a supervisor, before it forks its workers: open the archive as its one
        process (rolling every journal entry forward, removing every temporary file),
        then close the index. With SQLite the folder's claim is kept and returned:
        the workers forked after inherit it. Also returns the instances stored."""
        archive = cls(root, fsync=fsync, index=index, node=node)
        count = archive.count()
        claim = None if archive.node else archive._claim
        archive._keep_claim = claim is not None
        archive.close()
        return claim, count

    def close(self) -> None:
        """Close the index and let another process open the archive."""
        with self._commit_lock:
            if not self._open:
                return
            self._open = False
            try:
                self._settle_unsettled()
            finally:
                self._index.close()
                if not self._keep_claim:
                    self._claim.release()

    def __enter__(self) -> Archive:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
