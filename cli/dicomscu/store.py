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
import signal
import stat
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from cli.dicomscu.association import open_association
from cli.dicomscu.failures import Context, explain_exception
from cli.dicomscu.options import Settings
from cli.dicomscu.store_summary import (
    ASSOCIATION_ENDED,
    DICOMDIR,
    FOLDER_NOT_READ,
    IN_FLIGHT,
    INTERRUPTED,
    NO_CONTEXT,
    NOT_FOUND,
    UNREADABLE,
    Summary,
)
from cli.logs import CLI_LOGGER, LIBRARY_LOGGERS
from dimse.client import NoPresentationContext
from dimse.file_check import DicomDirectory, check_file
from dimse.files import NotDicomFile, Part10Info
from dimse.proposals import MAX_CONTEXTS, StoreGroup, plan_store
from dimse.upper_layer import AssociationError, ProposedContext

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


def read_infos(files: list[Path], summary: Summary) -> list[Part10Info]:
    """The sendable files, checked (`dimse.file_check`); each file that is not is
    reported, with the element at fault, and counted in `summary`."""
    infos: list[Part10Info] = []
    for path in files:
        try:
            info = check_file(path)
        except DicomDirectory as exc:
            log.warning("%s; not sent", exc)
            summary.skip(DICOMDIR)
            continue
        except NotDicomFile as exc:
            log.error("%s; not sent", exc)
            summary.fail(UNREADABLE)
            continue
        for note in info.notes:
            log.warning("%s", note)
        infos.append(info)
    return infos


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


def _store_group(
    settings: Settings,
    context: Context,
    contexts: list[ProposedContext],
    items: Iterable[Part10Info],
    summary: Summary,
) -> bool:
    """Send `items` over one association; False if the association itself failed."""
    try:
        with open_association(
            settings, contexts, async_window=settings.async_window
        ) as association:
            for info, result in association.store_many(items, priority=settings.priority):
                if isinstance(result, NoPresentationContext):
                    log.error("%s: not sent: %s", info.path, result)
                    summary.fail(NO_CONTEXT)
                    continue
                if isinstance(result, Exception):
                    log.error("%s: not sent: %s", info.path, result)
                    summary.fail(UNREADABLE)
                    continue
                status = result.status
                if status.is_success:
                    summary.store(warning=False)
                    log.info("%s: stored (%s)", info.path, result.sop_instance_uid)
                elif status.is_warning:
                    summary.store(warning=True)
                    log.warning("%s: stored with a warning: %s", info.path, status)
                else:
                    summary.fail(f"refused {status.code:04X}H")
                    log.error("%s: C-STORE failed: %s", info.path, status)
    except NotDicomFile as exc:  # changed on disk since it was read
        log.error("%s; the association was aborted", exc)
        summary.fail(UNREADABLE)
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
            summary.fail(IN_FLIGHT, len(in_flight))
        return False
    return True


def run_store(settings: Settings, context: Context, debug: bool = False) -> int:
    """Send the files over one association (or --associations N at once, the files
    dealt out in turn), keeping up to the granted --async window outstanding; end with
    the summary line (and, with --json, the summary on stdout). Ctrl-C stops sending:
    the files on their way are answered, the association released, the summary said,
    and the exit status is 130; a second Ctrl-C aborts at once."""
    files, problems = collect_files(settings.files, settings.recursive)
    summary = Summary(total=len(files) + len(problems))
    for problem in problems:
        log.error("%s", problem)
        summary.fail(FOLDER_NOT_READ if "not read" in problem else NOT_FOUND)
    infos = read_infos(files, summary)
    if not infos:
        hint = _subfolder_hint(settings)
        log.error("no DICOM file to send (%d file(s) looked at)%s", len(files), hint)
        _finish(summary, settings)
        return 1
    groups = plan_store(infos, settings.decompress)
    if len(groups) > 1:
        log.info(
            "the files need more than %d presentation contexts: %d associations, one after the other",
            MAX_CONTEXTS,
            len(groups),
        )
    stop = threading.Event()
    with _progress(infos, debug) as items, _interruptible(stop):
        # Each group takes its files from one iterator as it sends them, so that the bar
        # advances file by file; after a Ctrl-C it gives no more.
        shared_items = _until(stop, iter(items))
        for group in groups:
            files_of_group = itertools.islice(shared_items, len(group.infos))
            if not _store_files(settings, context, group, files_of_group, summary):
                break
        for _ in shared_items:  # the end of the bar's iteration: it closes complete
            pass
    summary.interrupted = stop.is_set()
    left = summary.total - summary.accounted
    if left:
        summary.skip(INTERRUPTED, left) if summary.interrupted else summary.fail(
            ASSOCIATION_ENDED, left
        )
    return _finish(summary, settings)


def _finish(summary: Summary, settings: Settings) -> int:
    """Say the summary (always); the exit status."""
    print(f"dicomscu: {summary.line()}", file=sys.stderr, flush=True)
    if settings.json:
        print(summary.as_json(), flush=True)
    if summary.interrupted:
        return 130
    return 1 if summary.failed else 0


def _subfolder_hint(settings: Settings) -> str:
    """'; DIR holds N folder(s): -r looks inside them', when that is why none was found."""
    if settings.recursive:
        return ""
    for path in settings.files:
        if path.is_dir():
            with contextlib.suppress(OSError):
                folders = [e for e in os.scandir(path) if e.is_dir(follow_symlinks=False)]
                if folders:
                    return f"; {path} holds {len(folders)} folder(s): -r would look inside them"
    return ""


def _until(stop: threading.Event, items: Iterator[Part10Info]) -> Iterator[Part10Info]:
    for item in items:
        if stop.is_set():
            return
        yield item


@contextlib.contextmanager
def _interruptible(stop: threading.Event) -> Iterator[None]:
    """The first Ctrl-C sets `stop` (the files on their way finish, the association is
    released); the second raises KeyboardInterrupt (the association is aborted)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_interrupt(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        log.warning(
            "interrupted: sending no more files; those on their way are answered and the "
            "association released (Ctrl-C again to abort)"
        )

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _store_files(
    settings: Settings,
    context: Context,
    group: StoreGroup,
    items: Iterable[Part10Info],
    summary: Summary,
) -> bool:
    """One group's files over one association, or --associations N at once."""
    count = min(settings.associations, len(group.infos))
    if count <= 1:
        return _store_group(settings, context, group.contexts, items, summary)
    # One shared iterator: each association takes the next file when it is free.
    shared = _Shared(items)
    with concurrent.futures.ThreadPoolExecutor(count, thread_name_prefix="store") as pool:
        runs = [
            pool.submit(_store_group, settings, context, group.contexts, shared, summary)
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
