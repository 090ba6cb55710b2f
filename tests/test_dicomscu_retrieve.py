"""`dicomscu --move` and `--get` from real archives: the instances land in
OUTPUT/<SOP Instance UID>.dcm, and a destination the server does not know is
explained with gdcmscu's manual's advice."""

from __future__ import annotations

from pathlib import Path

from pydicom import dcmread

from cli.dicomscu import main
from tests import peers
from tests.dicomscu_support import Instance, make_instances, run_dicomscu


def at(peer: peers.Peer) -> list[str]:
    return ["--call", peer.ae_title, peer.host, str(peer.port)]


def names(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


def expected_names(instances: list[Instance]) -> set[str]:
    return {f"{i.sop_instance_uid}.dcm" for i in instances}


def check_files(directory: Path, instances: list[Instance]) -> None:
    assert names(directory) == expected_names(instances)
    for instance in instances:
        dataset = dcmread(directory / f"{instance.sop_instance_uid}.dcm")
        assert dataset.SOPInstanceUID == instance.sop_instance_uid
        assert dataset.file_meta.MediaStorageSOPInstanceUID == instance.sop_instance_uid


# -- C-MOVE -----------------------------------------------------------------------------------


def test_move_a_study_from_dcmqrscp_to_ourselves(dcmqrscp_factory, tmp_path: Path, capsys) -> None:
    port_scp = peers.free_port()
    qr = dcmqrscp_factory(move_destinations=[peers.Peer(peers.HOST, port_scp, "GDCMSCU")])
    instances = make_instances(tmp_path / "in", 3, patient_id="PID-MOVE")
    qr.load(tmp_path / "in")
    output = tmp_path / "out" / "nested"  # created if missing
    argv = ["--move", "--studyroot", "-k", f"20,d={instances[0].study_uid}"]
    assert main([*argv, "--port-scp", str(port_scp), "-o", str(output), *at(qr)]) == 0
    assert capsys.readouterr() == ("", "")
    check_files(output, instances)


def test_move_at_each_level_of_the_patient_root(dcmqrscp_factory, tmp_path: Path) -> None:
    port_scp = peers.free_port()
    qr = dcmqrscp_factory(move_destinations=[peers.Peer(peers.HOST, port_scp, "GDCMSCU")])
    instances = make_instances(tmp_path / "in", 2, patient_id="PID-LEVELS")
    qr.load(tmp_path / "in")
    first = instances[0]
    keys = {
        "--patient": ["-k", "10,20=PID-LEVELS"],
        "--series": ["-k", "10,20=PID-LEVELS", "-k", f"20,d={first.study_uid}", "-k", f"20,e={first.series_uid}"],
        "--image": [
            "-k", "10,20=PID-LEVELS", "-k", f"20,d={first.study_uid}", "-k", f"20,e={first.series_uid}",
            "-k", f"8,18={first.sop_instance_uid}",
        ],
    }  # fmt: skip
    for level, level_keys in keys.items():
        output = tmp_path / level.strip("-")
        argv = ["--move", "--patientroot", level, *level_keys, "--port-scp", str(port_scp)]
        assert main([*argv, "-o", str(output), *at(qr)]) == 0, level
        check_files(output, [first] if level == "--image" else instances)


def test_move_writes_into_the_current_directory_by_default(
    dcmqrscp_factory, tmp_path: Path
) -> None:
    port_scp = peers.free_port()
    qr = dcmqrscp_factory(move_destinations=[peers.Peer(peers.HOST, port_scp, "MOVER")])
    instances = make_instances(tmp_path / "in", 1)
    qr.load(tmp_path / "in")
    here = tmp_path / "here"
    here.mkdir()
    result = run_dicomscu(
        "--move", "--studyroot", "-k", f"20,d={instances[0].study_uid}", "--aetitle", "MOVER",
        "--port-scp", port_scp, "-V", *at(qr), cwd=here,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    check_files(here, instances)
    assert "1 instance(s) received" in result.stderr


def test_move_destination_unknown_gives_the_manuals_advice(
    dcmqrscp, tmp_path: Path, capsys
) -> None:
    make_instances(tmp_path / "in", 1, patient_id="PID-A801")
    dcmqrscp.load(tmp_path / "in")
    port_scp = peers.free_port()
    argv = [
        "--move",
        "--patientroot",
        "--patient",
        "-k",
        "10,20=PID-A801",
        "--port-scp",
        str(port_scp),
    ]
    assert main([*argv, "-o", str(tmp_path / "out"), *at(dcmqrscp)]) == 1
    err = capsys.readouterr().err
    assert "A801H" in err and "Move Destination unknown" in err
    assert f"map 'GDCMSCU' to this host and --port-scp {port_scp}" in err
    assert "try a C-ECHO first" in err and "--find before --move" in err


def test_move_from_orthanc(orthanc_factory, tmp_path: Path) -> None:
    port_scp = peers.free_port()
    orthanc = orthanc_factory(move_destinations=[peers.Peer(peers.HOST, port_scp, "GDCMSCU")])
    instances = make_instances(tmp_path / "in", 2, patient_id="PID-ORTHANC")
    for instance in instances:
        orthanc.upload(instance.path)
    argv = [
        "--move",
        "--studyroot",
        "-k",
        f"20,d={instances[0].study_uid}",
        "--port-scp",
        str(port_scp),
    ]
    assert main([*argv, "-o", str(tmp_path / "out"), *at(orthanc)]) == 0
    check_files(tmp_path / "out", instances)


def test_move_to_a_third_party_destination(
    dcmqrscp_factory, storescp, tmp_path: Path, capsys
) -> None:
    qr = dcmqrscp_factory(move_destinations=[storescp])
    instances = make_instances(tmp_path / "in", 2)
    qr.load(tmp_path / "in")
    argv = [
        "--move",
        "--studyroot",
        "-k",
        f"20,d={instances[0].study_uid}",
        "--move-destination",
        "STORESCP",
    ]
    assert main([*argv, "-V", *at(qr)]) == 0
    assert "completed 2" in capsys.readouterr().err
    received = {str(dcmread(p).SOPInstanceUID) for p in storescp.received_files()}
    assert received == {i.sop_instance_uid for i in instances}


def test_move_that_matches_nothing_says_so(dcmqrscp_factory, tmp_path: Path, capsys) -> None:
    port_scp = peers.free_port()
    qr = dcmqrscp_factory(move_destinations=[peers.Peer(peers.HOST, port_scp, "GDCMSCU")])
    argv = ["--move", "--studyroot", "-k", "20,d=1.2.3.4.5.6", "--port-scp", str(port_scp)]
    assert main([*argv, "-o", str(tmp_path / "out"), *at(qr)]) == 0
    assert "retrieved nothing" in capsys.readouterr().err


def test_port_scp_in_use_is_explained(dcmqrscp, tmp_path: Path, capsys) -> None:
    argv = ["--move", "--studyroot", "-k", "20,d=1.2.3", "--port-scp", str(dcmqrscp.port)]
    assert main([*argv, "-o", str(tmp_path / "out"), *at(dcmqrscp)]) == 1
    assert f"cannot listen on --port-scp {dcmqrscp.port}" in capsys.readouterr().err


# -- C-GET ------------------------------------------------------------------------------------


def test_get_a_series_from_dcmqrscp(dcmqrscp, tmp_path: Path, capsys) -> None:
    instances = make_instances(tmp_path / "in", 2, patient_id="PID-GET")
    dcmqrscp.load(tmp_path / "in")
    first = instances[0]
    argv = [
        "--get",
        "--studyroot",
        "--series",
        "-k",
        f"20,d={first.study_uid}",
        "-k",
        f"20,e={first.series_uid}",
    ]
    assert main([*argv, "-o", str(tmp_path / "out"), *at(dcmqrscp)]) == 0
    assert capsys.readouterr() == ("", "")
    check_files(tmp_path / "out", instances)


def test_get_from_orthanc(orthanc, tmp_path: Path) -> None:
    instances = make_instances(tmp_path / "in", 2, patient_id="PID-GET-O")
    for instance in instances:
        orthanc.upload(instance.path)
    argv = ["--get", "--patientroot", "--patient", "-k", "10,20=PID-GET-O"]
    assert main([*argv, "-o", str(tmp_path / "out"), *at(orthanc)]) == 0
    check_files(tmp_path / "out", instances)


def test_get_refused_by_a_server_that_disables_it(dcmqrscp_factory, tmp_path: Path, capsys) -> None:
    qr = dcmqrscp_factory(extra_args=["--disable-get"])
    argv = ["--get", "--studyroot", "-k", "20,d=1.2.3", "-o", str(tmp_path / "out"), *at(qr)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "does not accept this retrieve model (C-GET)" in err
    assert "more (-D lists them)" in err and len(err) < 1000  # not 127 contexts
