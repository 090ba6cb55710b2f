"""dicomscp's TOML configuration (cli/dicomscp/config.py), honoured by the running server.

Each test writes a configuration, starts `python -m cli.dicomscp --config FILE` and
checks from outside, as a client sees it, that the setting took effect: the AE title
and archive of the startup line, C-MOVE destinations, the allow-lists, the called AE
title check, the association limit, the maximum PDU size, the ARTIM and idle timeouts,
and the policy for duplicate SOP Instance UIDs. A configuration that cannot be used
makes dicomscp exit with status 2 and one line that names the setting at fault.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from tests import peers

pytest.register_assert_rewrite("tests.ourserver")  # before its import: it is a plugin too
from tests.ourserver import DicomSCP, Outcome, associate, run_dicomscp, start_dicomscp  # noqa: E402

pytest_plugins = ["tests.ourserver"]  # the dicomscp_factory and pynetdicom_ae fixtures


@pytest.fixture
def configured(tmp_path: Path) -> Iterator[Any]:
    """start(toml_text, *args) -> DicomSCP: dicomscp with only --config (and args); the
    archive, host and port come from the file, which gets `host = "127.0.0.1"`,
    `port = 0` and `archive = "archive"` unless it sets them."""
    import contextlib

    with contextlib.ExitStack() as stack:

        def start(text: str, *args: str) -> DicomSCP:
            defaults = {"host": '"127.0.0.1"', "port": "0", "archive": '"archive"'}
            head = [
                f"{key} = {value}"
                for key, value in defaults.items()
                if not re.search(rf"^{key}\s*=", text, re.M)
            ]
            text = "\n".join(head) + "\n" + text
            return stack.enter_context(
                start_dicomscp(tmp_path, *args, config=text, archive=None, host=None, port=None)
            )

        yield start


def _store(ae: Any, server: peers.Peer, *datasets: Dataset) -> list[int]:
    from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]

    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate(server.host, server.port, ae_title=server.ae_title)
    assert assoc.is_established
    try:
        return [int(assoc.send_c_store(ds).Status) for ds in datasets]
    finally:
        assoc.release()


def _move(
    ae: Any, server: peers.Peer, destination: str, patient_id: str, calling: str = "PYNETDICOM"
) -> Dataset:
    """C-MOVE (patient root, PATIENT level) of one patient; the final response."""
    from pynetdicom.sop_class import PatientRootQueryRetrieveInformationModelMove as MOVE  # type: ignore[attr-defined]

    ae.ae_title = calling
    ae.add_requested_context(MOVE)
    query = Dataset()
    query.QueryRetrieveLevel = "PATIENT"
    query.PatientID = patient_id
    assoc = ae.associate(server.host, server.port, ae_title=server.ae_title)
    assert assoc.is_established
    try:
        responses = list(assoc.send_c_move(query, destination, MOVE))
    finally:
        assoc.release()
    final: Dataset = responses[-1][0]
    return final


def _ct(ct_small: Path, **attributes: Any) -> Dataset:
    ds = dcmread(ct_small)
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


# --------------------------------------------------------------------------------------
# Settings taken from the file


def test_aetitle_and_archive_from_the_file(configured: Any, tmp_path: Path) -> None:
    server = configured('aetitle = "CONFIGURED"\narchive = "store-here"\n')
    assert server.ae_title == "CONFIGURED"
    # a relative path is taken from the configuration file's folder
    assert server.archive == tmp_path / "store-here"
    assert (tmp_path / "store-here" / "index.sqlite").is_file()


def test_the_command_line_overrides_the_file(configured: Any, tmp_path: Path) -> None:
    server = configured('aetitle = "CONFIGURED"\n', "--aetitle", "OVERRIDDEN")
    assert server.ae_title == "OVERRIDDEN"


def test_destinations(
    configured: Any,
    pynetdicom_ae: Any,
    storescp: peers.StoreSCP,
    pynetdicom_scp: peers.PynetdicomSCP,
    ct_small: Path,
) -> None:
    """[destinations] are the C-MOVE destinations; --destination adds to them; an AE
    title named by neither is A801, whatever the caller may know of its address."""
    server = configured(
        f'[destinations]\nSTORESCP = "{storescp.host}:{storescp.port}"\n',
        "--destination",
        f"PYNETDICOM={pynetdicom_scp.host}:{pynetdicom_scp.port}",
    )
    assert _store(pynetdicom_ae, server, _ct(ct_small)) == [0x0000]
    final = _move(pynetdicom_ae, server, "STORESCP", "1CT1")
    assert (final.Status, final.NumberOfCompletedSuboperations) == (0x0000, 1)
    assert len(storescp.received_files()) == 1
    final = _move(pynetdicom_ae, server, "PYNETDICOM", "1CT1")
    assert (final.Status, final.NumberOfCompletedSuboperations) == (0x0000, 1)
    assert [str(ds.SOPInstanceUID) for ds in pynetdicom_scp.datasets] == [
        dcmread(ct_small).SOPInstanceUID
    ]
    assert pynetdicom_scp.calling_ae_titles == ["DICOMSCP"]
    assert _move(pynetdicom_ae, server, "ELSEWHERE", "1CT1").Status == 0xA801


def test_allowed_calling_aes_and_move_allowed_aes(
    configured: Any, pynetdicom_ae: Any, storescp: peers.StoreSCP, ct_small: Path
) -> None:
    server = configured(
        'allowed_calling_aes = ["MOVER", "LOOKER"]\n'
        'move_allowed_aes = ["MOVER"]\n'
        f'[destinations]\nSTORESCP = "{storescp.host}:{storescp.port}"\n'
    )
    stranger = associate(pynetdicom_ae, server, calling="STRANGER")
    assert (stranger.result, stranger.source, stranger.reason) == (1, 1, 3), stranger
    pynetdicom_ae.requested_contexts = []
    pynetdicom_ae.ae_title = "LOOKER"
    assert _store(pynetdicom_ae, server, _ct(ct_small)) == [0x0000]
    # LOOKER may associate, store and find, but not move: the destination is refused
    assert _move(pynetdicom_ae, server, "STORESCP", "1CT1", calling="LOOKER").Status == 0xA801
    assert storescp.received_files() == []
    server.wait_for_log(r"C-MOVE from 'LOOKER' refused: not allowed to move")
    final = _move(pynetdicom_ae, server, "STORESCP", "1CT1", calling="MOVER")
    assert (final.Status, final.NumberOfCompletedSuboperations) == (0x0000, 1)
    assert len(storescp.received_files()) == 1


def test_allow_on_the_command_line_replaces_the_files_list(
    configured: Any, pynetdicom_ae: Any
) -> None:
    server = configured('allowed_calling_aes = ["FROMFILE"]\n', "--allow", "FROMARGS")
    assert associate(pynetdicom_ae, server, calling="FROMFILE").rejected
    accepted = associate(pynetdicom_ae, server, calling="FROMARGS")
    assert accepted.assoc.is_established
    accepted.assoc.release()


def test_check_called_ae_and_max_associations(configured: Any, pynetdicom_ae: Any) -> None:
    server = configured("check_called_ae = true\nmax_associations = 1\n")
    wrong = associate(pynetdicom_ae, server, called="NOTDICOMSCP")
    assert (wrong.result, wrong.source, wrong.reason) == (1, 1, 7), wrong
    # The rejected association holds its place in the limit until the server's thread
    # for it ends, just after the client has closed: the next one may come too early.
    established: list[Outcome] = []

    def accepted() -> bool:
        outcome = associate(pynetdicom_ae, server)
        if outcome.assoc.is_established:
            established.append(outcome)
        return bool(established)

    peers.wait_until(accepted, 10, "an association within the limit")
    first = established[0]
    try:
        second = associate(pynetdicom_ae, server)
        assert (second.result, second.source, second.reason) == (2, 3, 2), second
    finally:
        first.assoc.release()


def test_max_pdu(configured: Any, pynetdicom_ae: Any) -> None:
    server = configured("max_pdu = 4096\n")
    outcome = associate(pynetdicom_ae, server)
    assert outcome.assoc.is_established
    try:
        assert outcome.assoc.acceptor.maximum_length == 4096
        assert outcome.assoc.send_c_echo().Status == 0x0000
    finally:
        outcome.assoc.release()


def test_artim_timeout(configured: Any) -> None:
    """A connection that sends no A-ASSOCIATE-RQ is closed when ARTIM expires."""
    server = configured("[timeouts]\nartim = 1\n")
    with socket.create_connection((server.host, server.port), timeout=20) as sock:
        started = time.monotonic()
        assert sock.recv(1024) == b""  # the server closed it (no bytes: no PDU at all)
        waited = time.monotonic() - started
    assert 0.5 <= waited < 15


def test_idle_timeout(configured: Any, pynetdicom_ae: Any) -> None:
    """An established association without traffic for `idle` seconds is aborted."""
    server = configured("[timeouts]\nidle = 1\n")
    outcome = associate(pynetdicom_ae, server)
    assert outcome.assoc.is_established
    started = time.monotonic()
    try:
        peers.wait_until(
            lambda: not outcome.assoc.is_established, 20, "the idle association aborted"
        )
    finally:
        if outcome.assoc.is_established:
            outcome.assoc.release()
    assert time.monotonic() - started >= 0.5
    assert outcome.assoc.is_aborted
    server.wait_for_log(r"association from \S+ ended: .*within 1(\.0)? s")


@pytest.mark.parametrize(
    ("policy", "second_status", "kept"),
    [("replace", 0x0000, "2"), ("keep", 0x0000, "1"), ("reject", 0x0111, "1")],
)
def test_duplicates(
    configured: Any,
    pynetdicom_ae: Any,
    ct_small: Path,
    policy: str,
    second_status: int,
    kept: str,
) -> None:
    """The same SOP Instance UID twice: replaced, kept (success), or refused with 0111
    (Duplicate SOP Instance, PS3.7 C.5)."""
    from pynetdicom.sop_class import PatientRootQueryRetrieveInformationModelFind as FIND  # type: ignore[attr-defined]

    server = configured(f'duplicates = "{policy}"\n')
    first = _ct(ct_small, InstanceNumber=1, ImageComments="first")
    second = _ct(ct_small, InstanceNumber=2, ImageComments="second")
    assert _store(pynetdicom_ae, server, first, second) == [0x0000, second_status]
    pynetdicom_ae.add_requested_context(FIND)
    query = Dataset()
    query.QueryRetrieveLevel = "IMAGE"
    query.PatientID = first.PatientID
    query.StudyInstanceUID = first.StudyInstanceUID
    query.SeriesInstanceUID = first.SeriesInstanceUID
    query.SOPInstanceUID = ""
    query.InstanceNumber = ""
    query.ImageComments = ""
    assoc = pynetdicom_ae.associate(server.host, server.port, ae_title="DICOMSCP")
    try:
        found = [ds for _, ds in assoc.send_c_find(query, FIND) if ds is not None]
    finally:
        assoc.release()
    assert [(str(ds.InstanceNumber), ds.ImageComments) for ds in found] == [
        (kept, "first" if kept == "1" else "second")
    ]


# --------------------------------------------------------------------------------------
# Configurations that cannot be used: exit status 2, one line naming the setting


BAD_CONFIGURATIONS = [
    ('colour = "blue"\n', r"unknown settings colour"),
    ("[timeouts]\nidel = 3\n", r"\[timeouts\]: unknown settings idel"),
    ('[tls]\ncertificate = "x.pem"\n', r"\[tls\]: unknown settings certificate"),
    ('[destinations]\nSTORESCP = "localhost"\n', r"destinations.STORESCP: 'localhost' is not host:port"),
    ('[destinations]\nSTORESCP = "127.0.0.1:70000"\n', r"destinations.STORESCP: .* is not host:port"),
    ('[destinations]\n"BAD\\\\AE" = "127.0.0.1:104"\n', r"destinations: .* is not an AE title"),
    ('destinations = "STORESCP"\n', r"\[destinations\] must be a table"),
    ('duplicates = "sometimes"\n', r"duplicates must be replace, keep or reject"),
    ('allowed_calling_aes = "GOODSCU"\n', r"allowed_calling_aes must be a list"),
    ('aetitle = "A_VERY_LONG_AE_TITLE"\n', r"aetitle: .* is not an AE title"),
    ('max_associations = "many"\n', r"max_associations must be an integer"),
    ('[timeouts]\nidle = "soon"\n', r"timeouts.idle must be a number of seconds"),
    ('check_called_ae = "yes"\n', r"check_called_ae must be true or false"),
    ("port = [1\n", r"is not valid TOML"),
    ('index = "mysql://db/archive"\n', r"index: .* is not an index: .* postgresql://"),
    ('node = "../elsewhere"\n', r"node: node name .* letters, digits"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "message"), BAD_CONFIGURATIONS, ids=[m[:32] for _, m in BAD_CONFIGURATIONS]
)
def test_bad_configuration_exits_2(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "dicomscp.toml"
    config.write_text(text, encoding="utf-8")
    result = run_dicomscp("--config", config, "--archive", tmp_path / "archive", "0")
    assert result.returncode == 2, result.stderr
    assert "listening" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # one line, no traceback
    assert lines[0].startswith("dicomscp: ")
    assert re.search(message, lines[0]), lines[0]
    assert not (tmp_path / "archive").exists()  # nothing was started


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--destination", "STORESCP"], r"--destination 'STORESCP' is not AE=HOST:PORT"),
        (["--destination", "STORESCP=localhost"], r"'localhost' is not host:port"),
        (["--config", "missing.toml"], r"cannot read .*missing.toml"),
        (["--aetitle", "WAY_TOO_LONG_FOR_AN_AE"], r"--aetitle .* is not an AE title"),
    ],
)
def test_bad_command_line_exits_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = run_dicomscp(*args, "--archive", tmp_path / "archive", "0", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert re.search(message, result.stderr), result.stderr
    assert "Traceback" not in result.stderr
