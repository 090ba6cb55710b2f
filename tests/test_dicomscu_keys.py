"""`-k/--key gggg,eeee[=VALUE]`: every form gdcmscu reads, and the errors it gives."""

from __future__ import annotations

import pytest
from pydicom.sequence import Sequence

from cli.dicomscu import main
from cli.keys import KeySyntaxError, parse_key, parse_keys
from tests import peers


@pytest.mark.parametrize(
    ("argument", "tag", "vr", "text"),
    [
        ("10,10=A*", 0x00100010, "PN", "A*"),  # --key 10,10="A*": the shell removed the quotes
        ("10,10,A*", 0x00100010, "PN", "A*"),
        ("0010,0010=A*", 0x00100010, "PN", "A*"),
        ("10,20=", 0x00100020, "LO", ""),
        ("10,20", 0x00100020, "LO", ""),
        ("8,60=CT", 0x00080060, "CS", "CT"),
        ("20,D=1.2.3", 0x0020000D, "UI", "1.2.3"),
        ("0020,000d=1.2.3", 0x0020000D, "UI", "1.2.3"),
        ("10,10=Doe^John Q", 0x00100010, "PN", "Doe^John Q"),  # spaces kept
        ("10,10=A,B=C", 0x00100010, "PN", "A,B=C"),  # the value runs to the end
        ("10,10= A ", 0x00100010, "PN", " A "),
        ("8,61=CT\\MR", 0x00080061, "CS", "CT\\MR"),
    ],
)
def test_key_forms(argument: str, tag: int, vr: str, text: str) -> None:
    key = parse_key(argument)
    assert (key.tag, key.vr, key.text) == (tag, vr, text)


@pytest.mark.parametrize(
    "argument",
    ["10", "10;10=A", "xyz,10=A", "12345,10=A", "10,10X", "10,,10", ",10=A", "", "10 ,10=A"],
)
def test_a_key_that_cannot_be_read(argument: str) -> None:
    with pytest.raises(KeySyntaxError) as exc:
        parse_key(argument)
    assert str(exc.value).startswith(f"Could not read Tag: {argument} (")


@pytest.mark.parametrize(
    ("argument", "why"),
    [
        ("9,1234=A", "not in the DICOM data dictionary"),
        ("10,0=A", "group length"),
        ("2,10=1.2", "file meta"),
        ("0,100=1", "command"),
        ("28,10=abc", "must be an integer"),
        ("8,1032=X", "can only be asked for"),
    ],
)
def test_keys_that_read_but_cannot_be_sent_say_why(argument: str, why: str) -> None:
    with pytest.raises(KeySyntaxError, match=why):
        parse_key(argument)


def test_the_vr_comes_from_the_dictionary_and_values_are_converted() -> None:
    assert parse_key("28,10=512").value() == 512  # Rows, US
    assert parse_key("28,30=0.5\\0.5").value() == "0.5\\0.5"  # Pixel Spacing, DS: text
    assert parse_key("18,9087=1.5").value() == 1.5  # Diffusion b-value, FD
    assert parse_key("8,1032=").value() == Sequence([])  # a sequence can be asked for


def test_a_later_key_replaces_an_earlier_one_with_the_same_tag() -> None:
    keys = parse_keys(["10,10=A", "10,20=1", "0010,0010=B"])
    assert [(k.tag, k.text) for k in keys] == [(0x00100020, "1"), (0x00100010, "B")]


@pytest.mark.parametrize("argument", ["10x10", "9,1234=A"])
def test_main_exits_1_with_gdcmscus_message_before_connecting(argument: str, capsys) -> None:
    port = peers.free_port()
    assert main(["--find", "--patientroot", "--key", argument, "127.0.0.1", str(port)]) == 1
    err = capsys.readouterr().err
    assert f"Could not read Tag: {argument}" in err
    assert "cannot connect" not in err
