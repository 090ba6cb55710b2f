"""Who may write where in the archive's folder, and what each process cleans at start.

- **One process** (the SQLite index, the default): it holds `root/.lock` with an
  exclusive flock while the archive is open, so it may remove every temporary file
  (`.incoming-*.part`) and empty `root/spool/` at start: whatever is there was left by
  a process that ended.
- **Several nodes** (a shared index, dimse/archive/backend.py): the folder is shared,
  possibly by several machines. Each node names its temporary files after itself
  (`.incoming-<node>@<pid>-<n>.part`) and spools into `root/spool/<node>/`, so at start
  it removes only its own leftovers, and those of nodes that are not running (the
  index says which: PostgreSQL's lock on each node's name), so that a node that
  never comes back leaves nothing behind; that no other running process has its
  name is the index's to make sure too. Each node takes
  `root/.lock` shared, so that a one-process dicomscp on this machine is refused while
  nodes run (and the other way round); on a network file system where flock is not
  available that check is skipped with a warning, as it cannot see other machines
  anyway.
- **Workers of one dicomscp** (`dicomscp --workers N`, SQLite index): the supervisor
  holds `root/.lock` exclusively, and its worker processes, forked from it, share
  that hold (`inherited`). Worker n names its temporary files and spool after itself
  (`w<n>`), like a node; the supervisor cleans everything before the first worker
  starts, and a worker started again after a crash removes its own leftovers.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Callable
from pathlib import Path

from dimse.archive.backend import ArchiveLocked
from dimse.storage import TEMP_PREFIX

log = logging.getLogger("dimse.archive.archive")

INSTANCES_DIR = "instances"
SPOOL_DIR = "spool"
LOCK_FILE = ".lock"


class FolderClaim:
    """This process's hold on the archive folder `root`: `node` "" for the one
    process of an SQLite archive, else this node's (or worker's) name; `inherited`:
    a worker's, whose supervisor holds the lock (see the module docstring)."""

    def __init__(self, root: Path, node: str, *, inherited: bool = False) -> None:
        self.root = root
        self.node = node
        #: where converted data sets too big for memory are spooled (inside the archive,
        #: so that its disk and permissions apply)
        self.spool_dir = root / SPOOL_DIR / node if node else root / SPOOL_DIR
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self._fd = -1 if inherited else self._take_lock()

    def _take_lock(self) -> int:
        fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if self.node else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if self.node:
                raise ArchiveLocked(
                    f"{self.root} is open in a dicomscp with its own SQLite index; stop it, "
                    "or give it the shared index too"
                ) from None
            raise ArchiveLocked(f"{self.root} is open in another process or Archive") from None
        except OSError as exc:
            if not self.node:
                os.close(fd)
                raise
            log.warning("archive: %s cannot be locked here (%s); going on", self.root, exc)
        return fd

    def clean(self, adopt: Callable[[str], bool] = lambda owner: False) -> None:
        """Remove the temporary files and spooled data sets this process may own:
        its own, and (nodes) those of each other owner for which `adopt(owner)` says
        that it is not running and this node may finish its work."""
        own = f"{TEMP_PREFIX}{self.node}@" if self.node else TEMP_PREFIX
        adopted: dict[str, bool] = {}
        for shard in (self.root / INSTANCES_DIR).iterdir():
            if not shard.is_dir():
                continue
            for entry in os.scandir(shard):
                name = entry.name
                if not (name.startswith(TEMP_PREFIX) and name.endswith(".part")):
                    continue
                if not name.startswith(own):
                    owner, at, _ = name[len(TEMP_PREFIX) :].partition("@")
                    if not (self.node and at and owner):
                        continue
                    if owner not in adopted:
                        adopted[owner] = adopt(owner)
                    if not adopted[owner]:
                        continue
                log.info("archive: removing %s, left by an interrupted store", entry.path)
                os.unlink(entry.path)
        spools = [self.spool_dir]
        spools += [self.root / SPOOL_DIR / owner for owner, gone in adopted.items() if gone]
        for spool in spools:
            with contextlib.suppress(FileNotFoundError):
                for entry in os.scandir(spool):
                    if entry.is_file(follow_symlinks=False):
                        os.unlink(entry.path)  # a spool of a process that ended

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
