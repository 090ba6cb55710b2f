"""`dicomscu --store` and `--echo` start without pydicom (and the numpy and requests it
pulls in: half a second of CPU before the first byte is sent). pydicom is imported only
where a data set is decoded: a query, a decompression. A conversion between the
uncompressed syntaxes rewrites the bytes without it (dimse/transfer/recode.py). Nor
do they import `ssl` or `hashlib` (about 20 ms of every start) without TLS or a user
identity.

Each check runs in a new interpreter, since the test process has pydicom already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

from pydicom import dcmread

from tests import peers
from tests.dicomscu_support import REPOSITORY, make_instances

HEAVY = ("pydicom", "numpy", "requests", "ssl", "hashlib")

#: Runs dicomscu's main() with the arguments after -c, then prints the heavy modules
#: that were imported (JSON, on stdout, which --store and --echo leave empty).
WRAPPER = f"""\
import json, sys
from cli.dicomscu import main
status = main(sys.argv[1:])
print(json.dumps(sorted(m for m in sys.modules if m.partition(".")[0] in {HEAVY!r})))
sys.exit(status)
"""


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPOSITORY), environment.get("PYTHONPATH", "")) if p
    )
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPOSITORY,
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=120,
        check=False,
    )


def _dicomscu(*args: str | int | Path) -> tuple[int, list[str], str]:
    """(exit status, heavy modules imported, stderr) of one dicomscu run."""
    result = _python("-c", WRAPPER, *map(str, args))
    assert result.stdout.strip(), result.stderr
    return result.returncode, json.loads(result.stdout.splitlines()[-1]), result.stderr


def test_the_store_and_echo_modules_import_no_pydicom_nor_ssl() -> None:
    code = (
        "import json, sys\n"
        "import cli.dicomscu, cli.dicomscu.store, cli.dicomscu.echo, dimse.client\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.partition('.')[0] in {HEAVY!r})))\n"
    )
    result = _python("-c", code)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_a_store_and_an_echo_import_no_pydicom_nor_ssl(
    storescp: peers.StoreSCP, tmp_path: Path
) -> None:
    instances = make_instances(tmp_path / "in", 3)
    status, heavy, err = _dicomscu(
        "--store", "--call", storescp.ae_title, storescp.host, storescp.port, tmp_path / "in"
    )
    assert status == 0, err
    assert len(storescp.received_files()) == 3
    assert {dcmread(p).SOPInstanceUID for p in storescp.received_files()} == {
        i.sop_instance_uid for i in instances
    }
    assert heavy == []

    status, heavy, err = _dicomscu(
        "--echo", "--call", storescp.ae_title, storescp.host, storescp.port
    )
    assert (status, err) == (0, "")
    assert heavy == []


def test_a_file_converted_for_the_server_keeps_its_text_bytes_without_pydicom(
    storescp_factory: Callable[..., peers.StoreSCP], tmp_path: Path
) -> None:
    scp = storescp_factory(extra_args=["+xi"])  # Implicit VR Little Endian only: converted
    (instance,) = make_instances(tmp_path / "in", 1)
    dataset = dcmread(instance.path)
    name = "Caf\u00e9^\u20ac".encode("iso8859_15")  # \u20ac, the euro sign: not in Latin-1
    dataset.SpecificCharacterSet = "ISO_IR 203"  # Latin alphabet No. 9, unknown to pydicom 3.0
    dataset.add_new(0x00100010, "PN", name)  # encoded here: this pydicom was not taught it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset.save_as(instance.path)
    status, heavy, err = _dicomscu(
        "--store", "--call", scp.ae_title, scp.host, scp.port, instance.path
    )
    # The summary line only: no "Unknown encoding 'ISO_IR 203'" from pydicom
    assert (status, err) == (0, "dicomscu: 1 of 1 stored\n")
    assert heavy == []  # the bytes are recoded, the text never decoded
    (received,) = scp.received_files()
    assert name in received.read_bytes()
