"""`dicomscu --store`: C-STORE of files and directories over one association.

Every file is checked before anything is sent (`dimse.file_check`): its data set must
read to its end, and its own SOP Class and Instance UIDs are the ones sent (a file
meta group that says otherwise is warned of). Where gdcmscu stops at the first file
it cannot read, dicomscu reports it with the element at fault, sends the rest, and
exits 1 at the end. A refused presentation context or a failure status (Axxx,
Cxxx...) also means exit 1 at the end; warnings (Bxxx, 0001, 0107, 0116) are
reported and do not fail. A DICOMDIR is skipped with a note: it describes files on a
medium and is not an instance to store.

The presentation contexts come from `dimse.proposals.plan_store`: one per SOP Class
and transfer syntax of the files, plus one with the uncompressed syntaxes per class
whose files could be converted (`--decompress`), so that a server that refuses a
file's own syntax can still be sent it exactly. Files that need more than the 128
contexts of one association go over several, one after the other.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import itertools
import logging
import os
import stat
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from cli.association import open_association
from cli.failures import Context, explain_exception
from cli.logs import CLI_LOGGER, LIBRARY_LOGGERS
from cli.options import Settings
from dimse.file_check import DicomDirectory, check_file
from dimse.files import NotDicomFile, Part10Info
from dimse.proposals import MAX_CONTEXTS, StoreGroup, plan_store
from dul.errors import AssociationError
from dul.negotiation import ProposedContext

log = logging.getLogger("dicomscu")


def collect_files(paths: Iterable[Path], recursive: bool) -> tuple[list[Path], list[str]]:
    """The files to send, in order, and the problems met (paths that do not exist).

    A directory gives the files in it, sorted by name; with `recursive`, those of its
    subdirectories too (symbolic links to directories are not followed: no loops).
    """
    files: list[Path] = []
    problems: list[str] = []
    seen: set[tuple[int, int]] = set()  # (device, inode): one file under two names goes once

    def add(path: Path | str) -> None:
        try:
            status = os.stat(path)
        except OSError:
            return  # gone since it was listed
        if stat.S_ISREG(status.st_mode) and (status.st_dev, status.st_ino) not in seen:
            seen.add((status.st_dev, status.st_ino))
            files.append(Path(path))

    def unreadable(error: OSError) -> None:
        # ROBUSTNESS 53: a folder that cannot be listed is said, and fails the run
        problems.append(
            f"{error.filename}: {error.strerror or error}; not read, so none of its files was sent"
        )

    for path in paths:
        if path.is_dir():
            if recursive:
                for top, dirs, names in os.walk(path, onerror=unreadable):
                    dirs.sort()
                    for name in sorted(names):
                        add(os.path.join(top, name))
            else:
                try:
                    with os.scandir(path) as listing:
                        entries = sorted(listing, key=lambda entry: entry.name)
                except OSError as exc:
                    unreadable(exc)
                    continue
                device = os.stat(path).st_dev
                for entry in entries:
                    if entry.is_symlink():
                        add(entry.path)  # what it points to decides, wherever that is
                    elif entry.is_file(follow_symlinks=False):
                        # The listing gave its type and inode, and a file in a directory
                        # lives on the directory's device (a file bind-mounted there aside):
                        # no stat per file.
                        key = (device, entry.inode())
                        if key not in seen:
                            seen.add(key)
                            files.append(Path(entry.path))
        elif path.is_file():
            add(path)
        elif path.exists():
            problems.append(f"{path}: not a regular file or directory; not sent")
        else:
            problems.append(f"{path}: no such file or directory; not sent")
    return files, problems


def read_infos(files: list[Path]) -> tuple[list[Part10Info], int]:
    """The sendable files, checked (`dimse.file_check`), and how many could not be read
    (each reported, with the element at fault)."""
    infos: list[Part10Info] = []
    unreadable = 0
    for path in files:
        try:
            info = check_file(path)
        except DicomDirectory as exc:
            log.warning("%s; not sent", exc)
            continue
        except NotDicomFile as exc:
            log.error("%s; not sent", exc)
            unreadable += 1
            continue
        for note in info.notes:
            log.warning("%s", note)
        infos.append(info)
    return infos, unreadable


@contextlib.contextmanager
def _progress(infos: list[Part10Info], debug: bool) -> Iterator[Iterable[Part10Info]]:
    """A tqdm bar on stderr when it is a terminal (and -D is not drowning it)."""
    if debug or not sys.stderr.isatty():
        yield infos
        return
    try:
        from tqdm import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm
    except ImportError:  # tqdm is a dependency; without it, no bar
        yield infos
        return
    loggers = [logging.getLogger(name) for name in (CLI_LOGGER, *LIBRARY_LOGGERS)]
    with logging_redirect_tqdm(loggers=loggers):
        bar = tqdm(infos, desc="C-STORE", unit="file", file=sys.stderr, leave=True)
        try:
            yield bar
        finally:
            bar.close()


class _Tally:
    """Counts shared by the associations of one --store (one lock for all)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stored = self.warned = self.failures = 0


def _store_group(
    settings: Settings,
    context: Context,
    contexts: list[ProposedContext],
    items: Iterable[Part10Info],
    total: int,
    tally: _Tally,
) -> bool:
    """Send `items` over one association; False if the association itself failed."""
    try:
        with open_association(
            settings, contexts, async_window=settings.async_window
        ) as association:
            for info, result in association.store_many(items, priority=settings.priority):
                with tally.lock:
                    if isinstance(result, Exception):
                        log.error("%s: not sent: %s", info.path, result)
                        tally.failures += 1
                        continue
                    status = result.status
                    if status.is_success:
                        tally.stored += 1
                        log.info("%s: stored (%s)", info.path, result.sop_instance_uid)
                    elif status.is_warning:
                        tally.stored += 1
                        tally.warned += 1
                        log.warning("%s: stored with a warning: %s", info.path, status)
                    else:
                        tally.failures += 1
                        log.error("%s: C-STORE failed: %s", info.path, status)
    except NotDicomFile as exc:  # changed on disk since it was read
        log.error("%s; the association was aborted", exc)
        return False
    except AssociationError as exc:
        log.error("%s", explain_exception(exc, context))
        in_flight = getattr(exc, "in_flight", ())
        if in_flight:
            log.error(
                "sent, and not answered when the association ended (stored or not, the "
                "server knows): %s",
                ", ".join(str(path) for path in in_flight),
            )
        with tally.lock:
            log.error(
                "%d of %d file(s) were stored before that; the others were not",
                tally.stored,
                total,
            )
        return False
    return True


def run_store(settings: Settings, context: Context, debug: bool = False) -> int:
    """Send the files over one association (or --associations N at once, the files
    dealt out in turn), keeping up to the granted --async window outstanding."""
    files, problems = collect_files(settings.files, settings.recursive)
    for problem in problems:
        log.error("%s", problem)
    infos, unreadable = read_infos(files)
    if not infos:
        log.error("no DICOM file to send (%d file(s) looked at)", len(files))
        return 1
    groups = plan_store(infos, settings.decompress)
    if len(groups) > 1:
        log.info(
            "the files need more than %d presentation contexts: %d associations, one after the other",
            MAX_CONTEXTS,
            len(groups),
        )
    tally = _Tally()
    tally.failures = len(problems) + unreadable
    ok = True
    with _progress(infos, debug) as items:
        # Each group takes its files from one iterator as it sends them, so that the bar
        # advances file by file.
        shared_items = iter(items)
        for group in groups:
            files_of_group = itertools.islice(shared_items, len(group.infos))
            ok = _store_files(settings, context, group, files_of_group, len(infos), tally)
            if not ok:
                break
        for _ in shared_items:  # the end of the bar's iteration: it closes complete
            pass
    total = len(files) + len(problems)
    log.info(
        "%d of %d file(s) stored%s",
        tally.stored,
        total,
        f", {tally.warned} with a warning" if tally.warned else "",
    )
    if not ok:
        return 1
    if tally.failures:
        log.error("%d of %d file(s) were not stored (see above)", tally.failures, total)
        return 1
    return 0


def _store_files(
    settings: Settings,
    context: Context,
    group: StoreGroup,
    items: Iterable[Part10Info],
    total: int,
    tally: _Tally,
) -> bool:
    """One group's files over one association, or --associations N at once."""
    count = min(settings.associations, len(group.infos))
    if count <= 1:
        return _store_group(settings, context, group.contexts, items, total, tally)
    # One shared iterator: each association takes the next file when it is free.
    shared = _Shared(items)
    with concurrent.futures.ThreadPoolExecutor(count, thread_name_prefix="store") as pool:
        runs = [
            pool.submit(_store_group, settings, context, group.contexts, shared, total, tally)
            for _ in range(count)
        ]
        return all(run.result() for run in runs)


class _Shared:
    """An iterator several threads may draw from."""

    def __init__(self, items: Iterable[Part10Info]) -> None:
        self._items = iter(items)
        self._lock = threading.Lock()

    def __iter__(self) -> Iterator[Part10Info]:
        return self

    def __next__(self) -> Part10Info:
        with self._lock:
            return next(self._items)
