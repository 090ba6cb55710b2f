"""Client work timed inside the process, through a library's Python API.

    python -m tests.bench.api store  HOST PORT CALLED_AE DIR
    python -m tests.bench.api echo   HOST PORT CALLED_AE COUNT
    python -m tests.bench.api pyecho HOST PORT CALLED_AE COUNT
    python -m tests.bench.api find   HOST PORT CALLED_AE STUDY SERIES
    python -m tests.bench.api aiostore HOST PORT CALLED_AE DIR ASSOCIATIONS

Each prints one JSON object on stdout: the seconds of the timed part (after the
interpreter has started and the modules are imported) and what was done, so that
throughput can be told apart from interpreter start-up. The benchmark runs these in
a child process of their own (a clean interpreter, its own peak RSS).

- store: our `dimse.client`: `read_part10_info` of every file (timed apart, as
  `prepare_s`), then connect, `assoc.store_many(infos)` (what dicomscu uses), release.
- echo: our `dimse.client.connect(...).echo()` and release, COUNT times.
- pyecho: the same through pynetdicom's `AE.associate`, `send_c_echo`, `release`.
- find: our `assoc.find` of an image-level Study Root query on one series.
- aiostore: our asyncio client (`dimse.aio`) in one event loop: `read_part10_info`
  of every file (`prepare_s`), then ASSOCIATIONS associations opened at once, each
  storing its share of the files (`groups`) with `store_many`, all concurrently;
  `seconds` runs from the first connect to the last release. Also `cpu_s`: this
  process's CPU time, start-up included.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def groups(items: Sequence[T], count: int) -> list[list[T]]:
    """`items` cut into `count` consecutive groups whose sizes differ by one at most:
    how W8 shares its files out among associations (ours) and storescu processes
    (DCMTK's), the same for both."""
    n = len(items)
    return [list(items[i * n // count : (i + 1) * n // count]) for i in range(count)]


def store(host: str, port: int, called_ae: str, directory: str) -> dict[str, object]:
    from dimse import client
    from dimse.files import read_part10_info

    started = time.perf_counter()
    files = sorted(p for p in Path(directory).iterdir() if p.is_file())
    infos = [read_part10_info(p) for p in files]
    contexts = client.store_contexts(infos)
    prepared = time.perf_counter()
    ok = failed = 0
    with client.connect(host, port, called_ae=called_ae, contexts=contexts) as assoc:
        for _, result in assoc.store_many(infos):
            if not isinstance(result, Exception) and result.status.is_success:
                ok += 1
            else:
                failed += 1
    ended = time.perf_counter()
    return {
        "seconds": ended - prepared,
        "prepare_s": prepared - started,
        "ok": ok,
        "failed": failed,
    }


def echo(host: str, port: int, called_ae: str, count: int) -> dict[str, object]:
    from dimse import client
    from dimse.datasets import UNCOMPRESSED
    from dimse.models import VERIFICATION
    from dul.negotiation import ProposedContext

    contexts = [ProposedContext(VERIFICATION, UNCOMPRESSED)]
    ok = 0
    started = time.perf_counter()
    for _ in range(count):
        with client.connect(host, port, called_ae=called_ae, contexts=contexts) as assoc:
            if assoc.echo().is_success:
                ok += 1
    return {"seconds": time.perf_counter() - started, "ok": ok, "failed": count - ok}


def pyecho(host: str, port: int, called_ae: str, count: int) -> dict[str, object]:
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    ae = AE(ae_title="PYNETDICOM")
    ae.add_requested_context(Verification)
    ok = 0
    started = time.perf_counter()
    for _ in range(count):
        assoc = ae.associate(host, port, ae_title=called_ae)
        if not assoc.is_established:
            raise SystemExit(f"E: association {ok + 1} not established")
        status = assoc.send_c_echo()
        if status and status.Status == 0:
            ok += 1
        assoc.release()
    seconds = time.perf_counter() - started
    ae.shutdown()
    return {"seconds": seconds, "ok": ok, "failed": count - ok}


def find(host: str, port: int, called_ae: str, study: str, series: str) -> dict[str, object]:
    from pydicom.dataset import Dataset

    from dimse import client
    from dimse.models import Root

    query = Dataset()
    query.QueryRetrieveLevel = "IMAGE"
    query.StudyInstanceUID = study
    query.SeriesInstanceUID = series
    query.SOPInstanceUID = ""
    query.InstanceNumber = ""
    contexts = client.query_contexts(Root.STUDY, "find")
    matches = 0
    started = time.perf_counter()
    with client.connect(host, port, called_ae=called_ae, contexts=contexts) as assoc:
        for response in assoc.find(query, Root.STUDY):
            if response.status.is_pending:
                matches += 1
            elif not response.status.is_success:
                raise SystemExit(f"E: C-FIND ended with {response.status}")
    return {"seconds": time.perf_counter() - started, "ok": matches, "failed": 0}


def aiostore(
    host: str, port: int, called_ae: str, directory: str, associations: int
) -> dict[str, object]:
    import asyncio
    import os

    from dimse import aio
    from dimse.files import Part10Info, read_part10_info
    from dimse.proposals import store_contexts

    started = time.perf_counter()
    files = sorted(p for p in Path(directory).iterdir() if p.is_file())
    shares = [[read_part10_info(p) for p in share] for share in groups(files, associations)]
    prepared = time.perf_counter()

    async def one(infos: list[Part10Info]) -> int:
        ok = 0
        contexts = store_contexts(infos)
        async with aio.connect(host, port, called_ae=called_ae, contexts=contexts) as assoc:
            async for _, result in assoc.store_many(infos):
                if not isinstance(result, Exception) and result.status.is_success:
                    ok += 1
        return ok

    async def everything() -> list[int | BaseException]:
        return await asyncio.gather(*(one(s) for s in shares), return_exceptions=True)

    outcomes = asyncio.run(everything())
    ended = time.perf_counter()
    ok = failed = broken = 0
    for number, (share, outcome) in enumerate(zip(shares, outcomes, strict=True), 1):
        if isinstance(outcome, BaseException):
            broken += 1
            failed += len(share)  # counted whole: which of its files were stored is moot
            print(f"E: association {number}: {outcome!r}", file=sys.stderr, flush=True)
        else:
            ok += outcome
            failed += len(share) - outcome
    cpu = os.times()
    return {
        "seconds": ended - prepared,
        "prepare_s": prepared - started,
        "ok": ok,
        "failed": failed,
        "associations": associations,
        "failed_associations": broken,
        "cpu_s": cpu.user + cpu.system,
    }


def main(argv: list[str]) -> int:
    command, host, port, called_ae, *rest = argv
    if command == "store":
        result = store(host, int(port), called_ae, rest[0])
    elif command == "echo":
        result = echo(host, int(port), called_ae, int(rest[0]))
    elif command == "pyecho":
        result = pyecho(host, int(port), called_ae, int(rest[0]))
    elif command == "find":
        result = find(host, int(port), called_ae, rest[0], rest[1])
    elif command == "aiostore":
        result = aiostore(host, int(port), called_ae, rest[0], int(rest[1]))
    else:
        raise SystemExit(f"unknown command {command!r}")
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
