"""TLS (PS3.15 Annex B, BCP 195): our client and our server, and DCMTK and pynetdicom.

The certificates are made by the tests (tests/certs.py). Every server listens on a port
the OS chose, on loopback. Debian's DCMTK 3.6.7 is built with OpenSSL (`echoscu --help`
lists the "+tls" options), so DCMTK's echoscu, storescu and storescp are the other
implementation; pynetdicom (with an ssl.SSLContext) is a second.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread

from cli.dicomscu.options import Settings, resolve
from cli.dicomscu.parser import build_parser
from dimse import client
from dimse.datasets import UNCOMPRESSED
from dimse.models import VERIFICATION
from dimse.scp import Handlers, Provider
from dul import tls
from dul.connection import Timeouts
from dul.errors import AssociationError, ConnectionFailed
from dul.negotiation import ProposedContext
from tests import peers
from tests.certs import Pki, dicomscp_running, make_pki, write_encrypted_key
from tests.dicomscu_support import run_dicomscu
from tests.peers import HOST, run_dcmtk

pytest_plugins = ["tests.aio_support"]  # provider_factory: blocking and asyncio providers

TIMEOUTS = Timeouts(connect=10.0, acse=10.0, dimse=10.0, idle=10.0, artim=10.0)
SHORT_ARTIM = Timeouts(connect=10.0, acse=10.0, dimse=10.0, idle=10.0, artim=0.5)
ECHO = [ProposedContext(VERIFICATION, UNCOMPRESSED)]
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@contextlib.contextmanager
def serving(
    ssl_context: ssl.SSLContext | None,
    handlers: Handlers | None = None,
    timeouts: Timeouts = TIMEOUTS,
    host: str = HOST,
    make: Callable[..., Any] = Provider,
) -> Iterator[Any]:
    provider = make(
        handlers or Handlers(),
        ae_title="OURSCP",
        host=host,
        port=0,
        timeouts=timeouts,
        ssl_context=ssl_context,
    )
    with provider:
        yield provider


def echo(port: int, ssl_context: ssl.SSLContext | None, host: str = HOST) -> str:
    """C-ECHO; returns the TLS version the association ran over ("" without TLS)."""
    with client.connect(
        host, port, called_ae="OURSCP", contexts=ECHO, timeouts=TIMEOUTS, ssl_context=ssl_context
    ) as association:
        assert association.echo().is_success
        sock = association.channel.sock
        return sock.version() or "" if isinstance(sock, ssl.SSLSocket) else ""


# ---------------------------------------------------------------------------------------
# The contexts


def test_contexts_require_tls12_and_offer_no_weak_cipher(pki: Pki) -> None:
    contexts = [
        tls.client_context(pki.ca),
        tls.client_context(pki.ca, pki.client_cert, pki.client_key),
        tls.client_context(verify=False),
        tls.server_context(pki.server_cert, pki.server_key),
        tls.server_context(pki.server_cert, pki.server_key, pki.ca, require_client_cert=True),
    ]
    weak = ("RC4", "3DES", "DES-CBC", "NULL", "MD5", "EXP", "ADH", "AECDH", "PSK", "SRP")
    for context in contexts:
        assert context.minimum_version is ssl.TLSVersion.TLSv1_2
        assert context.options & ssl.OP_NO_COMPRESSION
        names = [cipher["name"] for cipher in context.get_ciphers()]
        assert names
        assert not [name for name in names if any(w in name for w in weak)]
        assert all(cipher["protocol"] in ("TLSv1.2", "TLSv1.3") for cipher in context.get_ciphers())


def test_client_context_verifies_by_default(pki: Pki) -> None:
    context = tls.client_context(pki.ca)
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    loose = tls.client_context(verify=False)
    assert loose.verify_mode is ssl.CERT_NONE
    assert not loose.check_hostname
    server = tls.server_context(pki.server_cert, pki.server_key, pki.ca)
    assert server.verify_mode is ssl.CERT_OPTIONAL
    mutual = tls.server_context(pki.server_cert, pki.server_key, pki.ca, require_client_cert=True)
    assert mutual.verify_mode is ssl.CERT_REQUIRED


def test_configuration_errors_say_which_file_and_why(pki: Pki, tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    der = tmp_path / "cert.der"
    der.write_bytes(b"\x30\x82\x01\x0a" + bytes(40))
    cases: list[tuple[Any, str]] = [
        (lambda: tls.server_context(missing, pki.server_key), f"cannot read the certificate file {missing}: No such file"),
        (lambda: tls.server_context(pki.server_cert, pki.stray_key), "does not match the certificate"),
        (lambda: tls.server_context(der, pki.server_key), "holds no PEM certificate (is it DER?"),
        (lambda: tls.server_context(pki.server_cert), "no private key in"),
        (lambda: tls.server_context(pki.server_cert, pki.server_cert), "holds no PEM private key"),
        (lambda: tls.server_context(pki.server_cert, pki.server_key, require_client_cert=True), "no CA file"),
        (lambda: tls.client_context(pki.server_key), "CA certificate file"),
        (lambda: tls.client_context(pki.ca, key_file=pki.client_key), "without its certificate"),
    ]  # fmt: skip
    for make, words in cases:
        with pytest.raises(tls.TlsConfigError) as caught:
            make()
        assert words in str(caught.value)


def test_an_encrypted_key_needs_its_password_and_never_prompts(pki: Pki) -> None:
    key = write_encrypted_key(pki, b"s3cret")
    with pytest.raises(tls.TlsConfigError, match="is encrypted; give its password"):
        tls.server_context(pki.server_cert, key)
    with pytest.raises(tls.TlsConfigError, match="cannot decrypt the private key"):
        tls.server_context(pki.server_cert, key, key_password="wrong")
    context = tls.server_context(pki.server_cert, key, key_password="s3cret")
    with serving(context) as provider:
        assert echo(provider.port, tls.client_context(pki.ca))


# ---------------------------------------------------------------------------------------
# Our client and our server


def test_echo_over_tls_with_a_server_certificate(pki: Pki) -> None:
    with serving(tls.server_context(pki.server_cert, pki.server_key)) as provider:
        version = echo(provider.port, tls.client_context(pki.ca))
        assert version in ("TLSv1.2", "TLSv1.3")
        assert echo(provider.port, tls.client_context(pki.ca), host="localhost")


def test_tls12_only_client_still_works(pki: Pki) -> None:
    context = tls.client_context(pki.ca)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with serving(tls.server_context(pki.server_cert, pki.server_key)) as provider:
        assert echo(provider.port, context) == "TLSv1.2"


def test_mutual_tls(pki: Pki) -> None:
    server = tls.server_context(pki.server_cert, pki.server_key, pki.ca, require_client_cert=True)
    with serving(server) as provider:
        assert echo(provider.port, tls.client_context(pki.ca, pki.client_cert, pki.client_key))
        # No client certificate, or one from a CA the server does not trust: refused.
        for refused in (
            tls.client_context(pki.ca),
            tls.client_context(pki.ca, pki.other_client_cert, pki.other_client_key),
        ):
            with pytest.raises(ConnectionFailed) as caught:
                echo(provider.port, refused)
            assert "TLS" in str(caught.value)
        assert echo(provider.port, tls.client_context(pki.ca, pki.client_cert, pki.client_key))


def test_a_server_certificate_from_another_ca_is_not_verified(pki: Pki) -> None:
    with serving(tls.server_context(pki.server_cert, pki.server_key)) as provider:
        with pytest.raises(ConnectionFailed) as caught:
            echo(provider.port, tls.client_context(pki.other_ca))
        message = str(caught.value)
        assert f"TLS handshake with {HOST}:{provider.port} failed" in message
        assert "the server's certificate could not be verified" in message
        assert "unable to get local issuer certificate" in message
        assert echo(provider.port, tls.client_context(pki.ca))  # still serving


def test_a_certificate_for_another_host_name_is_refused(pki: Pki) -> None:
    # 127.0.0.2 is loopback too, but the certificate names 127.0.0.1 and localhost only.
    server = tls.server_context(pki.server_cert, pki.server_key)
    with serving(server, host="127.0.0.2") as provider:
        with pytest.raises(ConnectionFailed, match=r"could not be verified .*127\.0\.0\.2"):
            echo(provider.port, tls.client_context(pki.ca), host="127.0.0.2")
        no_name_check = tls.client_context(pki.ca, check_hostname=False)
        assert echo(provider.port, no_name_check, host="127.0.0.2")
        assert echo(provider.port, tls.client_context(verify=False), host="127.0.0.2")


def test_a_tls11_client_is_refused(pki: Pki) -> None:
    """The client offers TLS 1.0 and 1.1 only (OpenSSL 3 needs security level 0 for them).
    The server answers with a protocol_version alert; an OpenSSL that cannot offer 1.1 at
    all fails before sending: the handshake fails either way."""
    old = tls.client_context(pki.ca)
    with warnings.catch_warnings():  # the ssl module deprecates TLS 1.1, as it should
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    with contextlib.suppress(ssl.SSLError):
        old.set_ciphers("DEFAULT:@SECLEVEL=0")
    with serving(tls.server_context(pki.server_cert, pki.server_key)) as provider:
        with pytest.raises(ConnectionFailed) as caught:
            echo(provider.port, old)
        message = str(caught.value)
        assert f"TLS handshake with {HOST}:{provider.port} failed: no TLS version" in message
        assert "TLSV1_ALERT_PROTOCOL_VERSION" in message or "NO_PROTOCOLS" in message
        assert echo(provider.port, tls.client_context(pki.ca))


def test_a_plaintext_client_to_a_tls_server_is_closed(pki: Pki) -> None:
    with serving(tls.server_context(pki.server_cert, pki.server_key)) as provider:
        with pytest.raises(AssociationError):
            echo(provider.port, None)
        # Garbage instead of a ClientHello: closed too.
        with socket.create_connection((HOST, provider.port), timeout=10) as raw:
            raw.sendall(b"GET / HTTP/1.0\r\n\r\n")
            assert _closed_by_peer(raw, 10.0)
        assert echo(provider.port, tls.client_context(pki.ca))


def test_a_tls_client_to_a_plaintext_server_says_so(pki: Pki) -> None:
    with serving(None) as provider:
        with pytest.raises(ConnectionFailed, match=r"TLS handshake .* failed"):
            echo(provider.port, tls.client_context(pki.ca))
        assert echo(provider.port, None) == ""


def _closed_by_peer(sock: socket.socket, within_s: float) -> bool:
    """Wait (reading) until the peer closes; False if it has not within `within_s`."""
    deadline = time.monotonic() + within_s
    while (remaining := deadline - time.monotonic()) > 0:
        sock.settimeout(remaining)
        try:
            if not sock.recv(4096):
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False
    return False


def test_a_client_that_never_starts_the_handshake_is_dropped_at_artim(pki: Pki) -> None:
    server = tls.server_context(pki.server_cert, pki.server_key)
    with serving(server, timeouts=SHORT_ARTIM) as provider:
        started = time.monotonic()
        with socket.create_connection((HOST, provider.port), timeout=10) as silent:
            assert _closed_by_peer(silent, 10.0)
        elapsed = time.monotonic() - started
        assert 0.4 <= elapsed < 5.0, elapsed
        assert echo(provider.port, tls.client_context(pki.ca))


def _client_hello(pki: Pki) -> bytes:
    """The bytes of a real ClientHello (made in memory, never sent by OpenSSL)."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls_object = tls.client_context(pki.ca).wrap_bio(incoming, outgoing, server_hostname=HOST)
    with contextlib.suppress(ssl.SSLWantReadError):
        tls_object.do_handshake()
    hello = outgoing.read()
    assert hello[:1] == b"\x16" and len(hello) > 100  # a handshake record
    return hello


def test_a_client_that_trickles_its_handshake_is_dropped_at_artim(pki: Pki) -> None:
    """One byte every 50 ms: no single read waits as long as ARTIM, but the handshake as
    a whole has ARTIM for a deadline."""
    hello = _client_hello(pki)
    server = tls.server_context(pki.server_cert, pki.server_key)
    with serving(server, timeouts=SHORT_ARTIM) as provider:
        started = time.monotonic()
        sent = 0
        with socket.create_connection((HOST, provider.port), timeout=10) as slow:
            closed = False
            while sent < len(hello) and time.monotonic() - started < 10.0:
                try:
                    slow.sendall(hello[sent : sent + 1])
                except (ConnectionResetError, BrokenPipeError):
                    closed = True
                    break
                sent += 1
                # The pause between two bytes is a wait for the server to close.
                if _closed_by_peer(slow, 0.05):
                    closed = True
                    break
        elapsed = time.monotonic() - started
        assert closed, f"still open after {sent} of {len(hello)} bytes, {elapsed:.1f} s"
        assert sent < len(hello)
        assert 0.4 <= elapsed < 5.0, elapsed
        assert echo(provider.port, tls.client_context(pki.ca))


# ---------------------------------------------------------------------------------------
# DCMTK (built with OpenSSL 3 on Debian)


def _dcmtk_tls_args(pki: Pki, *, with_cert: bool = True) -> list[str]:
    """Client-side TLS options of DCMTK's tools: our CA, and a client key + certificate
    (+tls) or none (+tla, anonymous TLS); -pw: the key has no password (never prompt)."""
    mine = ["+tls", str(pki.client_key), str(pki.client_cert), "-pw"] if with_cert else ["+tla"]
    return [*mine, "+cf", str(pki.ca)]


@pytest.mark.peers
def test_dcmtk_echoscu_with_a_client_certificate_to_our_mutual_tls_server(
    pki: Pki, provider_factory: Callable[..., Any]
) -> None:
    server = tls.server_context(pki.server_cert, pki.server_key, pki.ca, require_client_cert=True)
    with serving(server, make=provider_factory) as provider:
        result = run_dcmtk(
            "echoscu", "-v", *_dcmtk_tls_args(pki), "-aec", "OURSCP", HOST, str(provider.port)
        )
        assert "Received Echo Response (Success)" in result.stdout + result.stderr


@pytest.mark.peers
def test_dcmtk_anonymous_tls_echoscu_to_our_server(
    pki: Pki, provider_factory: Callable[..., Any]
) -> None:
    with serving(
        tls.server_context(pki.server_cert, pki.server_key), make=provider_factory
    ) as provider:
        result = run_dcmtk(
            "echoscu",
            "-v",
            *_dcmtk_tls_args(pki, with_cert=False),
            "-aec",
            "OURSCP",
            HOST,
            str(provider.port),
        )
        assert "Received Echo Response (Success)" in result.stdout + result.stderr


@pytest.mark.peers
def test_dcmtk_echoscu_refuses_our_server_from_another_ca(
    pki: Pki, tmp_path: Path, provider_factory: Callable[..., Any]
) -> None:
    with serving(
        tls.server_context(pki.server_cert, pki.server_key), make=provider_factory
    ) as provider:
        result = run_dcmtk(
            "echoscu",
            "+tla",
            "+cf",
            str(pki.other_ca),
            "-aec",
            "OURSCP",
            HOST,
            str(provider.port),
            check=False,
        )
        assert result.returncode != 0
        assert echo(provider.port, tls.client_context(pki.ca))


@pytest.mark.peers
def test_dcmtk_plain_echoscu_to_our_tls_server_fails_and_it_keeps_serving(
    pki: Pki, provider_factory: Callable[..., Any]
) -> None:
    with serving(
        tls.server_context(pki.server_cert, pki.server_key), make=provider_factory
    ) as provider:
        result = run_dcmtk(
            "echoscu", "-to", "10", "-aec", "OURSCP", HOST, str(provider.port), check=False
        )
        assert result.returncode != 0
        assert echo(provider.port, tls.client_context(pki.ca))


@pytest.mark.peers
def test_dcmtk_storescu_over_tls_to_our_server(
    pki: Pki, ct_small: Path, provider_factory: Callable[..., Any]
) -> None:
    received: list[str] = []

    class Recording(Handlers):
        serves_storage = True

        def store(self, caller: Any, request: Any, data: Any, transfer_syntax: str) -> int:
            received.append(request.affected_sop_instance_uid)
            return 0

    server = tls.server_context(pki.server_cert, pki.server_key, pki.ca, require_client_cert=True)
    with serving(server, Recording(), make=provider_factory) as provider:
        run_dcmtk(
            "storescu", *_dcmtk_tls_args(pki), "-aec", "OURSCP", HOST, str(provider.port), ct_small
        )
    assert received == [dcmread(ct_small).SOPInstanceUID]


@pytest.fixture
def tls_storescp(
    storescp_factory: Any, pki: Pki
) -> Iterator[Any]:  # the factory of conftest, with TLS options
    def make(*extra: str) -> peers.StoreSCP:
        scp: peers.StoreSCP = storescp_factory(
            "STORESCP",
            ["+tls", str(pki.server_key), str(pki.server_cert), "-pw", "+cf", str(pki.ca), *extra],
        )
        return scp

    yield make


def _store(scp: peers.StoreSCP, path: Path, context: ssl.SSLContext) -> None:
    with client.connect(
        scp.host,
        scp.port,
        called_ae=scp.ae_title,
        contexts=[ProposedContext(CT_IMAGE_STORAGE, UNCOMPRESSED)],
        timeouts=TIMEOUTS,
        ssl_context=context,
    ) as association:
        assert association.store(path).status.is_success


@pytest.mark.peers
def test_our_client_stores_to_dcmtk_storescp_over_mutual_tls(
    tls_storescp: Any, pki: Pki, ct_small: Path
) -> None:
    scp = tls_storescp()  # -rc, DCMTK's default: a client certificate is required
    _store(scp, ct_small, tls.client_context(pki.ca, pki.client_cert, pki.client_key))
    files = scp.received_files()
    assert len(files) == 1
    assert dcmread(files[0]).SOPInstanceUID == dcmread(ct_small).SOPInstanceUID
    with pytest.raises(ConnectionFailed, match="client certificate"):
        _store(scp, ct_small, tls.client_context(pki.ca))


@pytest.mark.peers
def test_our_client_to_dcmtk_storescp_with_a_server_certificate_only(
    tls_storescp: Any, pki: Pki, ct_small: Path
) -> None:
    scp = tls_storescp("-ic")  # --ignore-peer-cert
    _store(scp, ct_small, tls.client_context(pki.ca))
    assert len(scp.received_files()) == 1
    with pytest.raises(ConnectionFailed, match="could not be verified"):
        _store(scp, ct_small, tls.client_context(pki.other_ca))


# ---------------------------------------------------------------------------------------
# pynetdicom


def test_pynetdicom_scu_over_tls_to_our_server(
    pki: Pki, provider_factory: Callable[..., Any]
) -> None:
    peers.require_pynetdicom()
    from pynetdicom import AE

    server = tls.server_context(pki.server_cert, pki.server_key, pki.ca, require_client_cert=True)
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(pki.ca))
    context.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    with serving(server, make=provider_factory) as provider:
        ae = AE(ae_title="PYNETDICOM")
        ae.add_requested_context(VERIFICATION)
        assoc = ae.associate(HOST, provider.port, ae_title="OURSCP", tls_args=(context, HOST))
        try:
            assert assoc.is_established
            assert assoc.send_c_echo().Status == 0
        finally:
            assoc.release()
            ae.shutdown()


def test_our_client_over_tls_to_pynetdicom(pki: Pki) -> None:
    peers.require_pynetdicom()
    from pynetdicom import AE

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca))
    context.load_cert_chain(str(pki.server_cert), str(pki.server_key))
    context.verify_mode = ssl.CERT_REQUIRED
    ae = AE(ae_title="PYNETDICOM")
    ae.add_supported_context(VERIFICATION)
    server = ae.start_server((HOST, 0), block=False, ssl_context=context)
    assert server is not None
    try:
        port = server.server_address[1]
        with client.connect(
            HOST,
            port,
            called_ae="PYNETDICOM",
            contexts=ECHO,
            timeouts=TIMEOUTS,
            ssl_context=tls.client_context(pki.ca, pki.client_cert, pki.client_key),
        ) as association:
            assert association.echo().is_success
    finally:
        server.shutdown()
        ae.shutdown()


# ---------------------------------------------------------------------------------------
# dicomscu and dicomscp


def test_dicomscu_tls_options_make_the_context_and_default_to_port_2762(pki: Pki) -> None:
    def settings(*arguments: str) -> Settings:
        return resolve(build_parser().parse_intermixed_args([*arguments, "pacs"]))

    assert settings().port == 104 and settings().ssl_context is None
    for arguments in (["--tls"], ["--tls-ca", str(pki.ca)], ["--tls-no-verify"]):
        resolved = settings(*arguments)
        assert resolved.port == tls.DICOM_TLS_PORT == 2762
        assert resolved.ssl_context is not None
        assert resolved.ssl_context.minimum_version is ssl.TLSVersion.TLSv1_2
    assert settings("--tls-no-verify").ssl_context.verify_mode is ssl.CERT_NONE  # type: ignore[union-attr]
    assert settings("--tls", "-p", "11112").port == 11112
    mutual = settings("--tls-ca", str(pki.ca), "--tls-cert", str(pki.client_cert), "--tls-key", str(pki.client_key))  # fmt: skip
    assert mutual.ssl_context is not None


def test_dicomscu_and_dicomscp_over_mutual_tls(pki: Pki, tmp_path: Path) -> None:
    config = f'aetitle = "OURSCP"\nhost = "{HOST}"\n'
    server_tls = ["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key)]
    with dicomscp_running(tmp_path, config, *server_tls, "--tls-ca", str(pki.ca)) as scp:
        base = ["--echo", "--call", "OURSCP", HOST, str(scp.port)]
        mine = ["--tls-cert", str(pki.client_cert), "--tls-key", str(pki.client_key)]
        good = run_dicomscu(*base, "--tls-ca", str(pki.ca), *mine)
        assert good.returncode == 0, good.stderr
        assert run_dicomscu(*base, "--tls-no-verify", *mine).returncode == 0
        no_cert = run_dicomscu(*base, "--tls-ca", str(pki.ca))
        assert no_cert.returncode == 1
        assert "the server may require a client certificate" in no_cert.stderr
        wrong_ca = run_dicomscu(*base, "--tls-ca", str(pki.other_ca), *mine)
        assert wrong_ca.returncode == 1
        assert "the server's certificate could not be verified" in wrong_ca.stderr
        plaintext = run_dicomscu(*base)
        assert plaintext.returncode == 1
        assert run_dicomscu(*base, "--tls-ca", str(pki.ca), *mine).returncode == 0


def test_dicomscp_tls_from_its_configuration_file(pki: Pki, tmp_path: Path, ct_small: Path) -> None:
    config = (
        f'aetitle = "OURSCP"\nhost = "{HOST}"\n'
        f'[tls]\ncert = "{pki.server_cert}"\nkey = "{pki.server_key}"\n'
    )
    with dicomscp_running(tmp_path, config) as scp:
        stored = run_dicomscu(
            "--store", "--call", "OURSCP", "--tls-ca", pki.ca, HOST, scp.port, ct_small
        )
        assert stored.returncode == 0, stored.stderr
        found = run_dicomscu(
            "--find", "--patientroot", "--patient", "--key", "10,20", "--call", "OURSCP",
            "--tls-ca", pki.ca, HOST, scp.port,
        )  # fmt: skip
        assert found.returncode == 0, found.stderr
        assert dcmread(ct_small).PatientID in found.stdout
