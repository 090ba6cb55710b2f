"""Two dicomscp nodes, one PostgreSQL index and one archive folder act as one archive
(issue 15): an instance stored through node A is found, moved and got through node B
at once; the same SOP Instance UID stored through both at the same moment, many times,
ends with one row per instance and a file that agrees with it. Each node is a real
`python -m cli.dicomscp` on its own free loopback port (tests/ourserver.py), the
database a throw-away cluster (tests/postgres.py)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from dimse import client
from dimse.models import Root
from dimse.storage import InstanceWriter
from dimse.storage_scp import StorageSCP
from dul.negotiation import ProposedContext
from tests.peers import HOST, free_port
from tests.postgres import require_psycopg
from tests.rawpeer import CT_IMAGE_STORAGE, EXPLICIT_LE, SHORT, ct_instance

pytest.register_assert_rewrite("tests.ourserver")  # before its import: it is a plugin too
from tests.ourserver import DicomSCP, run_dicomscp, start_dicomscp  # noqa: E402

pytest_plugins = ["tests.ourserver"]  # dicomscp's log with a failure

STORE_CONTEXTS = [ProposedContext(CT_IMAGE_STORAGE, (EXPLICIT_LE,))]


@dataclass
class Nodes:
    a: DicomSCP
    b: DicomSCP
    shared: Path
    destination: StorageSCP
    destination_dir: Path


@pytest.fixture
def nodes(tmp_path: Path, pg_database: str) -> Iterator[Nodes]:
    """Nodes a and b on one database and one folder; b may C-MOVE to DEST, our own
    storage SCP in this process."""
    shared = tmp_path / "shared"
    received = tmp_path / "dest"
    with contextlib.ExitStack() as stack:
        dest = stack.enter_context(
            StorageSCP(received, ae_title="DEST", host=HOST, port=0, timeouts=SHORT)
        )
        common = ("--index", pg_database, "--no-fsync", "--destination", f"DEST={HOST}:{dest.port}")
        a = stack.enter_context(
            start_dicomscp(tmp_path / "a", *common, "--node", "a", archive=shared)
        )
        b = stack.enter_context(
            start_dicomscp(tmp_path / "b", *common, "--node", "b", archive=shared)
        )
        yield Nodes(a, b, shared, dest, received)


def associate(
    server: DicomSCP, contexts: list[ProposedContext], **options: object
) -> client.Association:
    return client.connect(
        server.host,
        server.port,
        called_ae=server.ae_title,
        contexts=contexts,
        timeouts=SHORT,
        **options,  # type: ignore[arg-type]
    )


def find(server: DicomSCP, level: str, **keys: str) -> list[Dataset]:
    query = Dataset()
    query.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(query, keyword, value)
    with associate(server, client.query_contexts(Root.STUDY, "find")) as association:
        responses = list(association.find(query, Root.STUDY))
    assert responses[-1].status.code == 0x0000, responses[-1]
    return [r.identifier for r in responses[:-1] if r.identifier is not None]


def study_query(study: str) -> Dataset:
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = study
    return query


def test_an_instance_stored_through_a_is_found_moved_and_got_through_b(
    nodes: Nodes, tmp_path: Path
) -> None:
    assert "node a" in nodes.a.startup_line and "index postgresql://" in nodes.a.startup_line
    study = generate_uid()
    datasets = [ct_instance(StudyInstanceUID=study, InstanceNumber=n) for n in range(3)]
    with associate(nodes.a, STORE_CONTEXTS) as association:
        for ds in datasets:
            assert association.store(ds).status.code == 0x0000
    uids = {str(ds.SOPInstanceUID) for ds in datasets}

    # C-FIND through b, at once
    (found,) = find(nodes.b, "STUDY", StudyInstanceUID=study, NumberOfStudyRelatedInstances="")
    assert int(found.NumberOfStudyRelatedInstances) == 3
    images = find(nodes.b, "IMAGE", StudyInstanceUID=study, SOPInstanceUID="")
    assert {str(r.SOPInstanceUID) for r in images} == uids

    # C-MOVE through b
    with associate(nodes.b, client.query_contexts(Root.STUDY, "move")) as association:
        moved = list(association.move(study_query(study), Root.STUDY, "DEST"))
    assert moved[-1].status.code == 0x0000 and moved[-1].completed == 3, moved[-1]
    assert {p.stem for p in nodes.destination_dir.glob("*.dcm")} == uids

    # C-GET through b: the very files node a wrote
    output = tmp_path / "got"
    contexts = client.query_contexts(Root.STUDY, "get")
    with associate(nodes.b, contexts, roles=client.get_roles(contexts)) as association:
        got = list(association.get(study_query(study), Root.STUDY, InstanceWriter(output)))
    assert got[-1].status.code == 0x0000 and got[-1].completed == 3, got[-1]
    stored = {p.stem: p for p in (nodes.shared / "instances").rglob("*.dcm")}
    for uid in uids:
        assert dcmread(output / f"{uid}.dcm") == dcmread(stored[uid])


def test_the_same_instance_stored_through_both_nodes_at_once_leaves_one_agreeing_copy(
    nodes: Nodes,
) -> None:
    study, series = generate_uid(), generate_uid()
    uids = [generate_uid() for _ in range(20)]
    barrier = threading.Barrier(2)
    statuses: list[int] = []
    errors: list[BaseException] = []

    def store_each(server: DicomSCP, number: int) -> None:
        try:
            with associate(server, STORE_CONTEXTS) as association:
                for uid in uids:
                    ds = ct_instance(
                        uid,
                        pixels=8192,
                        InstanceNumber=number,
                        StudyInstanceUID=study,
                        SeriesInstanceUID=series,
                    )
                    barrier.wait(30)  # both nodes receive this UID at the same moment
                    statuses.append(association.store(ds).status.code)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [
        threading.Thread(target=store_each, args=(server, n))
        for server, n in ((nodes.a, 1), (nodes.b, 2))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    assert statuses == [0] * (2 * len(uids))

    rows = find(nodes.a, "IMAGE", StudyInstanceUID=study, SOPInstanceUID="", InstanceNumber="")
    assert sorted(str(r.SOPInstanceUID) for r in rows) == sorted(uids), "one row per instance"
    files = {p.stem: p for p in (nodes.shared / "instances").rglob("*.dcm")}
    assert sorted(files) == sorted(uids), "one file per instance"
    for row in rows:
        on_disk = dcmread(files[str(row.SOPInstanceUID)])
        assert on_disk.InstanceNumber == row.InstanceNumber, "the row describes the file"
    assert not list(nodes.shared.rglob(".incoming-*"))


def test_an_index_that_is_not_one_or_cannot_be_reached_is_said_plainly(tmp_path: Path) -> None:
    result = run_dicomscp("--archive", tmp_path / "a", "--index", "mysql://x", "0")
    assert result.returncode == 2 and "PostgreSQL URI" in result.stderr, result.stderr
    require_psycopg()
    nowhere = f"postgresql://scp:secret@{HOST}:{free_port()}/archive"  # nothing listens
    result = run_dicomscp("--archive", tmp_path / "a", "--index", nowhere, "0")
    assert result.returncode == 1, result.stderr
    assert "cannot connect to the PostgreSQL index" in result.stderr
    assert "secret" not in result.stderr
