"""Issue 11's nine cases, each as it was seen, against real peers: exact data on every
path, or a failure that names the instance and the reason.

Each test failed on the code before the fix (the case's number in its name): pixels
left unswapped from big endian, a truncated file acknowledged over a good copy, a
truncated file sent, file meta UIDs trusted over the data set, compressed instances
a C-GET could not bring back, no decompression for a peer that takes none, the
acceptor's preference over the requestor's. Cases 8 and 9 are in
test_dimse_commands.py and test_dicomscu_query.py.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file

from cli.dicomscu import main
from dimse import client
from dimse.file_check import check_file
from dimse.messages import C_STORE_RQ, C_STORE_RSP
from dimse.outgoing import message_units
from dimse.transfer.syntaxes import EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN, lookup
from dul.negotiation import ProposedContext
from tests import peers
from tests.fidelity import decompression_problems, differences
from tests.ourserver import DicomSCP

pytest_plugins = ["tests.ourserver"]

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"


def data_file(name: str) -> Path:
    path = get_testdata_file(name)
    assert isinstance(path, str), name
    return Path(path)


def charset_file(name: str) -> Path:
    return data_file("MR_small.dcm").parent.parent / "charset_files" / name


def at(peer: peers.Peer) -> list[str]:
    return ["--call", peer.ae_title, peer.host, str(peer.port)]


def received_by_uid(directory: Path) -> dict[str, Path]:
    return {check_file(p).sop_instance_uid: p for p in directory.rglob("*") if p.is_file()}


def archived(server: DicomSCP, source: Path) -> Path:
    uid = check_file(source).sop_instance_uid
    found = [p for p in server.archive.glob("instances/*/*.dcm") if p.stem == uid]
    assert len(found) == 1, (uid, list(server.archive.glob("instances/*/*")))
    return found[0]


# -- 1. Big endian to little endian ------------------------------------------------------


def test_case1_store_of_big_endian_to_an_implicit_only_receiver_swaps_the_pixels(
    storescp_factory: Callable[..., peers.StoreSCP], capsys: pytest.CaptureFixture[str]
) -> None:
    source = data_file("MR_small_bigendian.dcm")
    scp = storescp_factory(extra_args=["+xi"])  # takes Implicit VR Little Endian only
    assert main(["--store", *at(scp), str(source)]) == 0, capsys.readouterr().err
    (received,) = scp.received_files()
    assert dcmread(received).file_meta.TransferSyntaxUID == IMPLICIT_VR_LITTLE_ENDIAN
    assert differences(source, received) == []
    assert list(dcmread(received).pixel_array.ravel()[:2]) == [905, 1019]


def test_case1_retrieve_of_a_big_endian_instance_swaps_the_pixels(
    dicomscp_factory: Callable[..., DicomSCP],
    storescp_factory: Callable[..., peers.StoreSCP],
    tmp_path: Path,
) -> None:
    source = data_file("MR_small_bigendian.dcm")
    receiver = storescp_factory(ae_title="IMPLICIT", extra_args=["+xi"])
    server = dicomscp_factory("--destination", f"IMPLICIT={receiver.host}:{receiver.port}")
    assert main(["--store", *at(server), str(source)]) == 0
    study = dcmread(source).StudyInstanceUID
    # DCMTK movescu: the server sends to a storescp that takes Implicit VR only.
    moved = peers.run_dcmtk(
        "movescu", "-S", "-aec", server.ae_title, "-aem", "IMPLICIT",
        "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}",
        server.host, str(server.port),
    )  # fmt: skip
    assert moved.returncode == 0, moved.stderr
    (received,) = receiver.received_files()
    assert differences(source, received) == []
    # DCMTK getscu taking Implicit VR only.
    out = tmp_path / "getscu"
    out.mkdir()
    got = peers.run_dcmtk(
        "getscu", "-S", "+xi", "-od", str(out), "-aec", server.ae_title,
        "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}",
        server.host, str(server.port),
    )  # fmt: skip
    assert got.returncode == 0, got.stderr
    (fetched,) = [p for p in out.iterdir() if p.is_file()]
    assert check_file(fetched).transfer_syntax != check_file(source).transfer_syntax
    assert differences(source, fetched) == []


# -- 2. and 3. Truncated files -------------------------------------------------------------


def test_case2_a_truncated_instance_is_refused_and_the_good_copy_kept(
    dicomscp_factory: Callable[..., DicomSCP],
) -> None:
    good, truncated = data_file("MR_small.dcm"), data_file("MR_truncated.dcm")
    server = dicomscp_factory()
    assert main(["--store", *at(server), str(good)]) == 0
    info = check_file(good)
    data = truncated.read_bytes()[info.dataset_offset :]
    # Sent as a peer would that does not check: the bytes as they are in the file.
    contexts = [ProposedContext(info.sop_class_uid, (EXPLICIT_VR_LITTLE_ENDIAN,))]
    with client.connect(
        server.host, server.port, called_ae=server.ae_title, contexts=contexts
    ) as association:
        context_id = next(iter(association.contexts))
        engine = association.engine
        message_id = engine.next_message_id()
        request = C_STORE_RQ(
            message_id=message_id,
            affected_sop_class_uid=info.sop_class_uid,
            affected_sop_instance_uid=info.sop_instance_uid,
        )
        units = message_units(context_id, request, data, engine.max_pdu)
        operation = engine.request(C_STORE_RSP, message_id, units)
        response, _ = association._runner.run(association.requestor.response(operation))
    status = response.get_status()
    assert status.code == 0xC000, status
    assert response.error_comment is not None and "(7FE0,0010)" in response.error_comment
    assert len(response.error_comment) <= 64
    assert differences(good, archived(server, good)) == []


def test_case3_a_truncated_file_is_named_and_not_sent_and_the_rest_go(
    storescp: peers.StoreSCP, capsys: pytest.CaptureFixture[str]
) -> None:
    truncated, good = data_file("MR_truncated.dcm"), data_file("CT_small.dcm")
    assert main(["--store", *at(storescp), str(truncated), str(good)]) == 1
    err = capsys.readouterr().err
    assert "MR_truncated.dcm" in err and "(7FE0,0010)" in err and "not sent" in err
    (received,) = storescp.received_files()
    assert differences(good, received) == []


def test_case3_against_orthanc_the_batch_is_not_lost(
    orthanc: peers.Orthanc, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [data_file("MR_truncated.dcm"), data_file("CT_small.dcm"), data_file("rtplan.dcm")]
    assert main(["--store", *at(orthanc), *map(str, files)]) == 1
    assert "MR_truncated.dcm" in capsys.readouterr().err
    expected = {check_file(p).sop_instance_uid for p in files[1:]}
    assert orthanc.sop_instance_uids() == expected


# -- 4. The data set's UIDs, not the file meta's --------------------------------------------

CASE4 = ["chrJapMulti.dcm", "rtplan.dcm", "rtdose.dcm", "rtstruct.dcm", "badVR.dcm"]


def _case4_files(tmp_path: Path) -> list[Path]:
    sources = [charset_file(CASE4[0]), *(data_file(name) for name in CASE4[1:])]
    # rtplan, rtdose and badVR share SOP Instance UIDs: one folder each, sent in turn.
    return sources


def test_case4_files_whose_meta_disagrees_are_sent_with_the_data_sets_uids(
    storescp: peers.StoreSCP, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for source in _case4_files(tmp_path):
        assert main(["--store", *at(storescp), str(source)]) == 0, capsys.readouterr().err
        err = capsys.readouterr().err
        if source.name != "rtstruct.dcm":
            assert "the data set's is sent" in err, err
        else:
            assert "has no file meta information" in err, err
        newest = max(storescp.received_files(), key=lambda p: p.stat().st_mtime_ns)
        assert differences(source, newest) == [], source.name
        shutil.rmtree(storescp.output_dir)
        storescp.output_dir.mkdir()


def test_case4_against_dcmqrscp_and_orthanc(
    dcmqrscp: peers.QRSCP,
    orthanc: peers.Orthanc,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    for source in _case4_files(tmp_path):
        for peer in (dcmqrscp, orthanc):
            assert main(["--store", *at(peer), str(source)]) == 0, (
                source.name,
                capsys.readouterr().err,
            )


# -- 5. and 6. C-GET and C-MOVE of compressed instances ------------------------------------

COMPRESSED = {
    "JPEG2000.dcm": True,  # lossy syntax (4.91)
    "JPGExtended.dcm": True,
    "SC_rgb_rle.dcm": False,
    "image_dfl.dcm": False,
    "MR_small_jpeg_ls_lossless.dcm": False,
    "examples_jpeg2k.dcm": False,
}


def _get(server: peers.Peer, source: Path, output: Path, *extra: str) -> int:
    study = dcmread(source).StudyInstanceUID
    return main(
        ["--get", "--studyroot", "-k", f"20,d={study}", "-o", str(output), *extra, *at(server)]
    )


def test_case5_get_brings_back_each_compressed_instance_as_stored(
    dicomscp_factory: Callable[..., DicomSCP], orthanc: peers.Orthanc, tmp_path: Path
) -> None:
    server = dicomscp_factory()
    for name in COMPRESSED:
        source = data_file(name)
        for peer in (server, orthanc):
            assert main(["--store", *at(peer), str(source)]) == 0
            out = tmp_path / f"{peer.ae_title}-{name}"
            assert _get(peer, source, out) == 0, (peer.ae_title, name)
            received = received_by_uid(out)[check_file(source).sop_instance_uid]
            syntax = check_file(received).transfer_syntax
            assert syntax == check_file(source).transfer_syntax, (peer.ae_title, name)
            assert differences(source, received) == [], (peer.ae_title, name)


def test_case6_get_to_an_uncompressed_only_requestor_decompresses_lossless_only(
    dicomscp_factory: Callable[..., DicomSCP], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = dicomscp_factory()
    for name, lossy in COMPRESSED.items():
        source = data_file(name)
        assert main(["--store", *at(server), str(source)]) == 0
        out = tmp_path / name
        code = _get(server, source, out, "--accept", "uncompressed")
        err = capsys.readouterr().err
        uid = check_file(source).sop_instance_uid
        if lossy:  # not allowed by default: named, with the reason, and exit 1
            assert code == 1 and uid in err and "lossy" in err, err
            continue
        assert code == 0, err
        received = received_by_uid(out)[uid]
        assert not lookup(check_file(received).transfer_syntax).encapsulated  # type: ignore[union-attr]
        assert differences(source, received, decompressed=True) == [], name


def test_case6_lossy_decompression_when_allowed_is_marked(
    dicomscp_factory: Callable[..., DicomSCP],
    storescp_factory: Callable[..., peers.StoreSCP],
    tmp_path: Path,
) -> None:
    receiver = storescp_factory(ae_title="PLAIN", extra_args=["+x="])  # no +xa: uncompressed
    server = dicomscp_factory(
        "--decompress", "lossy", "--destination", f"PLAIN={receiver.host}:{receiver.port}"
    )
    source = data_file("JPGExtended.dcm")
    assert main(["--store", *at(server), str(source)]) == 0
    study = dcmread(source).StudyInstanceUID
    moved = main(
        ["--move", "--studyroot", "-k", f"20,d={study}", "--move-destination", "PLAIN", *at(server)]
    )
    assert moved == 0
    (received,) = receiver.received_files()
    assert differences(source, received, decompressed=True) == []
    assert decompression_problems(source, received, lossy=True) == []
    assert dcmread(received).LossyImageCompression == "01"


def test_case6_store_decompresses_for_a_receiver_that_takes_uncompressed_only(
    storescp_factory: Callable[..., peers.StoreSCP], capsys: pytest.CaptureFixture[str]
) -> None:
    scp = storescp_factory(extra_args=["+x="])
    lossless, lossy = data_file("MR_small_jpeg_ls_lossless.dcm"), data_file("JPEG2000.dcm")
    assert main(["--store", *at(scp), str(lossless), str(lossy)]) == 1
    assert "JPEG2000.dcm" in capsys.readouterr().err
    (received,) = scp.received_files()
    assert differences(lossless, received, decompressed=True) == []
    assert main(["--store", "--decompress", "lossy", *at(scp), str(lossy)]) == 0


# -- 7. The requestor's order wins among the syntaxes we keep as received --------------------


def test_case7_the_requestors_first_syntax_is_accepted(
    dicomscp_factory: Callable[..., DicomSCP],
) -> None:
    server = dicomscp_factory()
    source = data_file("SC_rgb_jpeg_gdcm.dcm")  # JPEG Lossless SV1
    offered = (JPEG_LOSSLESS_SV1, EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN)
    with client.connect(
        server.host,
        server.port,
        called_ae=server.ae_title,
        contexts=[ProposedContext(SECONDARY_CAPTURE, offered)],
    ) as association:
        (context,) = association.contexts.values()
        assert context.transfer_syntax == JPEG_LOSSLESS_SV1
        assert association.store(source).status.is_success
    stored = archived(server, source)
    assert check_file(stored).transfer_syntax == JPEG_LOSSLESS_SV1
    assert differences(source, stored) == []
