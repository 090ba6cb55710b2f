"""dicomscu: a DICOM client with the command line of GDCM's gdcmscu.

    dicomscu [OPTION]... [OPERATION]... HOSTNAME [PORT] [FILE]...

`main()` parses the command line (`cli.dicomscu.options`), builds the query (`cli.dicomscu.keys`,
`cli.dicomscu.query`), runs one operation (`cli.dicomscu.echo`, `cli.dicomscu.store`, `cli.dicomscu.find`,
`cli.dicomscu.retrieve`) and turns what went wrong into a sentence (`cli.dicomscu.failures`).

Exit status: 0 success; 1 a failure, including the two errors gdcmscu itself exits 1
for (`Could not read Tag: X`, `specified Root UID is not valid: X`); 2 a command line
that cannot run as written.

An operation's modules are imported when it runs, not at start: `--version` and
`--help` need none of them, and `--store` and `--echo` never import pydicom (half a
second of start), which the queries need.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from cli.dicomscu.charset import locale_charset, teach_pydicom
from cli.dicomscu.keys import KeySyntaxError, parse_keys
from cli.dicomscu.parser import PROG, build_parser
from cli.dicomscu.uids import InvalidRootUID, choose_root
from cli.logs import Verbosity, configured_logging

if TYPE_CHECKING:
    from cli.dicomscu.options import Settings
    from cli.dicomscu.query import Query

log = logging.getLogger("dicomscu")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def version_text() -> str:
    import importlib.metadata  # 20 ms, for --version only

    from dimse.upper_layer import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME

    try:
        version = importlib.metadata.version("dicom-ul")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout, not installed
        version = "(not installed)"
    return (
        f"{PROG}: dicom-ul {version}, implementation class UID {IMPLEMENTATION_CLASS_UID}, "
        f"version name {IMPLEMENTATION_VERSION_NAME}"
    )


def _usage_error(message: str) -> int:
    log.error("%s", message)
    sys.stderr.write(f"Try '{PROG} --help' for more information.\n")
    return EXIT_USAGE


def _prepare_query(settings: Settings, root_uid: str | None, keys_charset: str) -> Query:
    """Build the query, write --store-query, then refuse what cannot be retrieved."""
    from cli.dicomscu.query import (
        build_query,
        check_retrieve_keys,
        missing_unique_keys,
        write_query_file,
    )

    keys = parse_keys(list(settings.key_arguments))
    query = build_query(
        settings.operation, list(settings.roots), list(settings.levels), keys, keys_charset
    )
    if settings.store_query is not None:
        write_query_file(query, settings.store_query, root_uid)
        log.info("query written to %s", settings.store_query)
    if settings.operation in ("move", "get"):
        check_retrieve_keys(query)
        missing = missing_unique_keys(query)
        if missing:
            log.warning(
                "C-%s at %s level without a value for %s: a server may refuse it or move "
                "nothing; give the unique keys (--key GGGG,EEEE=VALUE)",
                settings.operation.upper(),
                query.level,
                ", ".join(missing),
            )
    return query


def _run(settings: Settings, root_uid: str | None, debug: bool) -> int:
    from cli.dicomscu.failures import Context, explain_exception
    from dimse.client import NoPresentationContext
    from dimse.upper_layer import AssociationError

    context = Context(
        settings.operation,
        settings.host,
        settings.port,
        settings.calling_ae,
        settings.called_ae,
        settings.port_scp,
        settings.move_destination,
    )
    try:
        if settings.operation == "echo":
            from cli.dicomscu.echo import run_echo

            return run_echo(settings, context)
        if settings.operation == "store":
            from cli.dicomscu.store import run_store

            return run_store(settings, context, debug)
        from cli.dicomscu.query import QueryError

        teach_pydicom()  # the query is encoded, and the responses decoded, by pydicom
        try:
            query = _prepare_query(settings, root_uid, locale_charset())
        except QueryError as exc:
            return _usage_error(str(exc))
        except OSError as exc:
            log.error("cannot write the query to %s: %s", settings.store_query, exc.strerror or exc)
            return EXIT_FAILURE
        if settings.operation in ("find", "worklist"):
            from cli.dicomscu.find import run_find

            return run_find(settings, context, query)
        from cli.dicomscu.retrieve import run_get, run_move

        if settings.operation == "move":
            return run_move(settings, context, query)
        return run_get(settings, context, query)
    except (AssociationError, NoPresentationContext) as exc:
        log.error("%s", explain_exception(exc, context))
        return EXIT_FAILURE
    except BrokenPipeError:  # the reader of our output went: end without a word
        from cli.dicomscu.printing import EXIT_PIPE, stdout_gone

        stdout_gone()
        return EXIT_PIPE
    except OSError as exc:
        log.error("%s", exc)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        log.error("interrupted")
        return EXIT_FAILURE


def main(argv: Sequence[str] | None = None) -> int:
    """Run dicomscu with `argv` (default: sys.argv[1:]); returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_intermixed_args(None if argv is None else list(argv))
    except SystemExit as exc:  # --help (0) or a usage error argparse reported (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.version:
        print(version_text())
        return EXIT_OK
    if args.queryhelp:
        from cli.dicomscu.queryhelp import query_help
        from dimse.models import Root

        roots = list(args.roots or [])
        if "worklist" in (args.operations or []):  # a service: its table is the one asked
            roots.append(Root.WORKLIST)
        sys.stdout.write(query_help(list(dict.fromkeys(roots))))
        return EXIT_OK

    verbosity = Verbosity(
        error=args.error, warning=args.warning, verbose=args.verbose, debug=args.debug
    )
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(configured_logging(verbosity, args.log_file))
        except OSError as exc:
            print(
                f"{PROG}: error: cannot open the log file {args.log_file}: {exc.strerror or exc}",
                file=sys.stderr,
            )
            return EXIT_USAGE
        return _checked_run(args)
    raise AssertionError("unreachable: the with block returns")


def _checked_run(args: argparse.Namespace) -> int:
    """The checks gdcmscu makes before anything else, then the run."""
    from cli.dicomscu.options import UsageError, resolve

    try:
        parse_keys(args.keys)  # as gdcmscu: a key that cannot be read stops everything
        root_uid = choose_root(args.root_uid)
    except (KeySyntaxError, InvalidRootUID) as exc:
        log.error("%s", exc)
        return EXIT_FAILURE
    try:
        settings = resolve(args)
    except UsageError as exc:
        return _usage_error(str(exc))
    for note in settings.notes:
        log.warning("%s", note)
    return _run(settings, root_uid, args.debug)


__all__ = ["main"]
