"""W4: the query. An image-level C-FIND on one series, answered by dicomscp, dcmqrscp
and Orthanc, each loaded beforehand with the same instances."""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import os
import shutil
import time
from pathlib import Path

from tests.bench import peers
from tests.bench.common import (
    Bench,
    Pairing,
    Row,
    api_argv,
    filesystem,
    median,
    ratio,
    run_interleaved,
    verdict,
)
from tests.bench.data import InstanceSet
from tests.bench.peers import environment, run_client


def _load(bench: Bench, name: str, host: str, port: int, ae: str, files: InstanceSet) -> float:
    started = time.perf_counter()
    argv = [peers.dcmtk("storescu"), "-aec", ae, "+sd", host, str(port), str(files.directory)]
    run_client(f"W4-load-{name}", argv, bench.logs, environment(nodelay=True), timeout_s=3600)
    seconds = time.perf_counter() - started
    bench.log(f"  W4 loaded {files.count} instances into {name} in {seconds:.1f} s")
    return seconds


def _dcmqrscp_cache(bench: Bench, files: InstanceSet) -> Path | None:
    """With --cache: the folder of a dcmqrscp storage area loaded with exactly these
    files by this dcmqrscp binary (kept between runs: dcmqrscp takes minutes to take
    10,000 instances, each insert scanning its whole index file)."""
    if bench.cache is None:
        return None
    binary = os.stat(peers.dcmtk("dcmqrscp"))
    digest = hashlib.sha256()
    for path in (files.files[0], files.files[-1]):
        digest.update(path.read_bytes())
    digest.update(f"{files.count} {binary.st_size} {binary.st_mtime_ns}".encode())
    return bench.cache / f"dcmqrscp-{files.count}-{digest.hexdigest()[:16]}"


def w4(bench: Bench) -> list[Row]:
    """An image-level Study Root C-FIND on the one series of N instances, answered by
    dicomscp, dcmqrscp and Orthanc, each loaded beforehand with the same N instances
    by DCMTK storescu over one association (not timed; the three loads at once). The
    client is DCMTK `findscu -q` (timed from start to exit; C++, its start-up is a few
    ms), and also our Python API (`assoc.find`, in-process time), which counts the
    matches: every server must return all N. With --cache, dcmqrscp's loaded storage
    area is kept and reused by the next runs."""
    files = bench.data.small(bench.sizes.query)
    keys = [
        "-k", "QueryRetrieveLevel=IMAGE", "-k", f"StudyInstanceUID={files.study_uid}",
        "-k", f"SeriesInstanceUID={files.series_uid}", "-k", "SOPInstanceUID", "-k", "InstanceNumber",
    ]  # fmt: skip
    load_seconds: dict[str, float | None] = {}
    results: dict[str, dict[str, list[float]]] = {}
    cached_qr = _dcmqrscp_cache(bench, files)
    qr_loaded = cached_qr is not None and (cached_qr / "loaded").exists()
    with contextlib.ExitStack() as stack:
        servers: dict[str, tuple[str, int, str]] = {}
        scp = stack.enter_context(
            peers.dicomscp(bench.dir("W4-dicomscp", scratch=True), fsync=False)
        )
        servers["dicomscp"] = (scp.host, scp.port, scp.ae_title)
        if cached_qr is not None and not qr_loaded:
            shutil.rmtree(cached_qr, ignore_errors=True)  # a load that did not finish
        if cached_qr is not None:
            cached_qr.mkdir(parents=True, exist_ok=True)
        qr_dir = cached_qr or bench.dir("W4-dcmqrscp", scratch=True)
        qr = stack.enter_context(peers.dcmqrscp(qr_dir))
        servers["dcmqrscp"] = (qr.host, qr.port, qr.ae_title)
        orthanc = stack.enter_context(peers.orthanc(bench.dir("W4-orthanc", scratch=True)))
        servers["Orthanc"] = (orthanc.host, orthanc.port, orthanc.ae_title)
        to_load = {n: a for n, a in servers.items() if not (n == "dcmqrscp" and qr_loaded)}
        if qr_loaded:
            load_seconds["dcmqrscp"] = None
            bench.log(f"  W4 dcmqrscp: storage area loaded by an earlier run ({cached_qr})")
        with concurrent.futures.ThreadPoolExecutor(len(to_load)) as pool:
            futures = {
                name: pool.submit(_load, bench, name, host, port, ae, files)
                for name, (host, port, ae) in to_load.items()
            }
            for name, future in futures.items():
                load_seconds[name] = future.result()
        if cached_qr is not None and not qr_loaded:
            (cached_qr / "loaded").write_text(f"{files.count}\n")
        pairings: list[tuple[str, str, Pairing]] = []
        for name, (host, port, ae) in servers.items():
            findscu = [peers.dcmtk("findscu"), "-q", "-S", "-aec", ae, *keys, host, str(port)]
            label = f"{name} <- findscu"
            pairings.append(
                (
                    name,
                    "findscu",
                    Pairing(f"{name}-findscu", label, findscu, environment(nodelay=True)),
                )
            )
            api = api_argv("find", host, port, ae, files.study_uid, files.series_uid)
            label = f"{name} <- dimse.client (API)"
            pairings.append(
                (name, "api", Pairing(f"{name}-api", label, api, environment(), api=True))
            )
        run_interleaved(bench, [p for _, _, p in pairings], "W4", expect_ok=files.count)
        for name, client, p in pairings:
            results.setdefault(client, {})[name] = p.seconds

    rows = []
    for client, label in (("findscu", "findscu -q (command)"), ("api", "dimse.client find (API)")):
        reference = files.count / median(results[client]["dcmqrscp"])
        for name in ("dicomscp", "dcmqrscp", "Orthanc"):
            value = files.count / median(results[client][name])
            row = Row(
                "W4", f"{name} <- {label}", value, "resp/s", results[client][name],
                vs_dcmtk=ratio(value, reference),
                extra={"load_s": load_seconds[name], "instances": files.count},
            )  # fmt: skip
            if name == "dicomscp" and client == "findscu":
                row.target = ">=1.0x dcmqrscp"
                row.verdict = verdict((row.vs_dcmtk or 0) >= 1.0)
            rows.append(row)
    loads = ", ".join(
        f"{n} {'(cached)' if s is None else f'{s:.0f} s'}" for n, s in load_seconds.items()
    )
    bench.notes.append(
        f"W4: {files.count} instances in one series; loading them (DCMTK storescu, one "
        f"association each, the three at once, not timed) took {loads}; archives in "
        f"{bench.scratch} ({filesystem(bench.scratch)})"
        + (f", dcmqrscp's in {cached_qr}" if cached_qr else "")
        + "; dicomscp with --no-fsync (nothing is stored during a query). "
        "'vs DCMTK' is vs dcmqrscp with the same client."
    )
    return rows
