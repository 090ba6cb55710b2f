"""dicomscu's command line: gdcmscu's options, defaults, positional rules and errors.

These need no DICOM server: they read what `resolve()` makes of a command line, or
run `main()` up to the point where it refuses to go on. Where a test must show that
nothing was connected to, a plain listening socket stands where a server would be.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from cli.dicomscu import main
from cli.dicomscu.options import Settings, UsageError, resolve
from cli.dicomscu.parser import build_parser
from cli.logs import SILENT, Verbosity
from dimse.models import Root
from tests import peers
from tests.dicomscu_support import run_dicomscu


def settings(*argv: str) -> Settings:
    return resolve(build_parser().parse_intermixed_args(list(argv)))


def closed_port() -> int:
    return peers.free_port()


# -- help and version -----------------------------------------------------------------


@pytest.mark.parametrize("option", ["-h", "--help"])
def test_help_is_printed_on_stdout_and_exits_0(option: str, capsys) -> None:
    assert main([option]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("usage: dicomscu [OPTION]... [OPERATION]... HOSTNAME [PORT] [FILE]...")
    assert err == ""
    for name in (
        "--hostname", "--port", "--aetitle", "--call", "--echo", "--store", "--find",
        "--move", "--get", "--worklist", "--key", "--patientroot", "--studyroot",
        "--patient", "--study", "--series", "--image", "--port-scp", "--output",
        "--input", "--recursive", "--store-query", "--queryhelp", "--root-uid",
        "--verbose", "--warning", "--error", "--debug", "--log-file", "--version",
        "--json", "--timeout", "--max-pdu", "--move-destination", "--priority",
    ):  # fmt: skip
        assert name in out, name


def test_help_documents_the_choice_among_several_operations(capsys) -> None:
    main(["--help"])
    out = capsys.readouterr().out
    assert "first in gdcmscu's order (echo, store, find, move, get, worklist)" in out
    assert "C-FIND responses go to stdout" in out


@pytest.mark.parametrize("option", ["-v", "--version"])
def test_version(option: str, capsys) -> None:
    assert main([option]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("dicomscu: dicom-ul")
    assert err == ""


def test_python_dash_m_cli_runs_dicomscu() -> None:
    result = run_dicomscu("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("dicomscu: dicom-ul")


# -- defaults and positionals ---------------------------------------------------------


def test_defaults_are_gdcmscus() -> None:
    s = settings("pacs")
    assert (s.operation, s.host, s.port) == ("echo", "pacs", 104)
    assert (s.calling_ae, s.called_ae) == ("GDCMSCU", "ANY-SCP")
    assert s.max_pdu == 16384
    assert s.priority == 2  # LOW, as gdcmscu sends C-STORE
    assert s.output == Path.cwd()


def test_one_positional_is_the_hostname() -> None:
    assert (settings("pacs").host, settings("pacs").port) == ("pacs", 104)


def test_two_positionals_are_hostname_and_port() -> None:
    s = settings("pacs", "11112")
    assert (s.host, s.port) == ("pacs", 11112)


def test_three_or_more_positionals_are_files_that_replace_input() -> None:
    s = settings("--store", "-i", "ignored.dcm", "pacs", "11112", "a.dcm", "b.dcm")
    assert s.files == (Path("a.dcm"), Path("b.dcm"))


def test_input_files_are_kept_without_positional_files() -> None:
    s = settings("--store", "-i", "a.dcm", "--input", "b.dcm", "pacs")
    assert s.files == (Path("a.dcm"), Path("b.dcm"))


def test_hostname_and_port_options_work_with_values() -> None:
    # gdcmscu: --port takes no value (port 1) and --hostname aborts on an assertion
    s = settings("--hostname", "pacs", "--port", "4242")
    assert (s.host, s.port) == ("pacs", 4242)
    s = settings("-H", "pacs", "-p", "4243")
    assert (s.host, s.port) == ("pacs", 4243)


def test_positionals_win_over_hostname_and_port_options() -> None:
    s = settings("-H", "other", "-p", "1", "pacs", "11112")
    assert (s.host, s.port) == ("pacs", 11112)


def test_options_may_stand_anywhere_gnu_style() -> None:
    s = settings("pacs", "--find", "11112", "--patientroot", "-k", "10,10=A*", "--patient")
    assert (s.operation, s.host, s.port) == ("find", "pacs", 11112)
    assert s.roots == (Root.PATIENT,)
    assert s.levels == ("PATIENT",)
    assert s.key_arguments == ("10,10=A*",)


def test_long_and_short_option_names() -> None:
    s = settings(
        "--store", "--recursive", "--input", "d", "--output", "out", "--aetitle", "ME",
        "--call", "YOU", "--port-scp", "11113", "--key", "10,20", "pacs",
    )  # fmt: skip
    assert s.recursive and s.files == (Path("d"),) and s.output == Path("out")
    assert (s.calling_ae, s.called_ae, s.port_scp) == ("ME", "YOU", 11113)
    s = settings("--store", "-r", "-i", "d", "-o", "out", "-k", "10,20", "pacs")
    assert s.recursive and s.output == Path("out") and s.key_arguments == ("10,20",)


# -- several operations ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "runs"),
    [
        (["--find", "--echo"], "echo"),
        (["--move", "--find"], "find"),
        (["--worklist", "--get"], "get"),
        (["--get", "--move", "--store"], "store"),
        (["--worklist", "--move"], "move"),
    ],
)
def test_several_operations_run_the_first_in_gdcmscus_order(given: list[str], runs: str) -> None:
    s = settings(*given, "--patientroot", "--port-scp", "11113", "-i", "x.dcm", "pacs")
    assert s.operation == runs
    assert any(f"running --{runs}" in note for note in s.notes)


def test_several_operations_say_which_runs_on_stderr(capsys) -> None:
    assert main(["--find", "--patientroot", "--echo", "127.0.0.1", str(closed_port())]) == 1
    err = capsys.readouterr().err
    assert "several operations were given (--find --echo); running --echo" in err


def test_the_same_operation_twice_is_not_a_mix() -> None:
    assert settings("--echo", "--echo", "pacs").notes == ()


# -- checked before connecting ----------------------------------------------------------


@pytest.mark.parametrize(
    "option", ["--aetitle", "--call", "--move-destination"], ids=["calling", "called", "dest"]
)
def test_an_ae_title_over_16_characters_is_refused_before_connecting(option: str, capsys) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setblocking(False)
        port = listener.getsockname()[1]
        status = main(["--move", "--port-scp", "11113", "--patientroot", option, "A" * 17,
                       "127.0.0.1", str(port)])  # fmt: skip
        with pytest.raises(BlockingIOError):  # nobody connected
            listener.accept()
    assert status == 2
    err = capsys.readouterr().err
    assert f"{option} 'AAAAAAAAAAAAAAAAA': an AE title has at most 16 characters" in err


def test_an_ae_title_of_16_characters_is_fine() -> None:
    assert settings("--aetitle", "A" * 16, "pacs").calling_ae == "A" * 16


def test_an_empty_ae_title_is_refused() -> None:
    with pytest.raises(UsageError, match="cannot be empty"):
        settings("--call", "  ", "pacs")


def test_no_hostname_is_a_usage_error(capsys) -> None:
    assert main(["--echo"]) == 2
    err = capsys.readouterr().err
    assert "a HOSTNAME is needed" in err
    assert "dicomscu --help" in err


@pytest.mark.parametrize("argv", [["-p", "0", "pacs"], ["--port", "x", "pacs"], ["pacs", "70000"]])
def test_a_bad_port_is_a_usage_error(argv: list[str], capsys) -> None:
    assert main(argv) == 2
    assert "a port is a number from 1 to 65535" in capsys.readouterr().err


def test_move_without_port_scp_says_why_it_is_needed(capsys) -> None:
    assert main(["--move", "--patientroot", "-k", "10,20=X", "127.0.0.1", str(closed_port())]) == 2
    err = capsys.readouterr().err
    assert "--move needs --port-scp PORT" in err
    assert "'GDCMSCU'" in err


def test_move_to_a_third_party_needs_no_port_scp() -> None:
    s = settings("--move", "--move-destination", "ARCHIVE", "--patientroot", "pacs")
    assert s.port_scp is None and s.move_destination == "ARCHIVE"


def test_store_without_files_is_a_usage_error(capsys) -> None:
    assert main(["--store", "127.0.0.1", str(closed_port())]) == 2
    assert "--store needs files" in capsys.readouterr().err


def test_files_with_another_operation_are_noted() -> None:
    s = settings("--echo", "pacs", "104", "a.dcm")
    assert any("only sent by --store" in note for note in s.notes)


# -- extras: timeouts, PDU size, priority -------------------------------------------------


def test_timeout_sets_connect_acse_and_dimse_timeouts() -> None:
    t = settings("--timeout", "5", "pacs").timeouts
    assert (t.connect, t.acse, t.dimse) == (5, 5, 5)


def test_finer_timeouts_override_timeout() -> None:
    t = settings(
        "--timeout", "5", "--dimse-timeout", "120", "--connect-timeout", "2", "pacs"
    ).timeouts
    assert (t.connect, t.acse, t.dimse) == (2, 5, 120)


def test_timeout_zero_means_no_limit() -> None:
    t = settings("--acse-timeout", "0", "pacs").timeouts
    assert t.acse is None and t.connect == 30


@pytest.mark.parametrize("value", ["-1", "soon", "nan"])
def test_a_bad_timeout_is_a_usage_error(value: str) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_intermixed_args(["--timeout", value, "pacs"])
    assert exc.value.code == 2


def test_max_pdu() -> None:
    assert settings("--max-pdu", "65536", "pacs").max_pdu == 65536
    assert settings("--max-pdu", "0", "pacs").max_pdu == 0
    with pytest.raises(SystemExit):
        build_parser().parse_intermixed_args(["--max-pdu", "10", "pacs"])


@pytest.mark.parametrize(("name", "value"), [("low", 2), ("medium", 0), ("high", 1)])
def test_priority(name: str, value: int) -> None:
    assert settings("--priority", name, "pacs").priority == value


def test_an_unknown_option_is_a_usage_error(capsys) -> None:
    assert main(["--no-such-option", "127.0.0.1"]) == 2
    assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err


# -- logging ----------------------------------------------------------------------------


def test_log_file_receives_the_log_and_errors_still_reach_stderr(tmp_path: Path, capsys) -> None:
    log = tmp_path / "dicomscu.log"
    assert main(["-V", "-L", str(log), "127.0.0.1", str(closed_port())]) == 1
    err = capsys.readouterr().err
    assert "cannot connect" in err
    text = log.read_text()
    assert "connecting to 127.0.0.1" in text  # -V info went to the file, not stderr
    assert "cannot connect" in text
    assert "connecting to" not in err


def test_log_file_that_cannot_be_opened_is_a_usage_error(tmp_path: Path, capsys) -> None:
    assert main(["-L", str(tmp_path / "missing" / "x.log"), "127.0.0.1"]) == 2
    assert "cannot open the log file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "library", "ours"),
    [
        ({}, SILENT, logging.WARNING),
        ({"error": True}, logging.ERROR, logging.WARNING),
        ({"warning": True}, logging.WARNING, logging.WARNING),
        ({"verbose": True}, logging.WARNING, logging.INFO),
        ({"debug": True}, logging.DEBUG, logging.DEBUG),
    ],
    ids=["default", "-E", "-W", "-V", "-D"],
)
def test_verbosity_levels(flags: dict[str, bool], library: int, ours: int) -> None:
    verbosity = Verbosity(**flags)
    assert (verbosity.library_level(), verbosity.cli_level()) == (library, ours)


def test_logging_is_restored_after_main(capsys) -> None:
    before = [
        (n, logging.getLogger(n).level, logging.getLogger(n).handlers[:])
        for n in ("dul", "dimse", "dicomscu")
    ]
    main(["-D", "127.0.0.1", str(closed_port())])
    after = [
        (n, logging.getLogger(n).level, logging.getLogger(n).handlers[:])
        for n in ("dul", "dimse", "dicomscu")
    ]
    assert before == after
