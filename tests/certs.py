"""Certificates for the TLS tests, made by the tests (with the `cryptography` package).

`make_pki(directory)` writes, as PEM files:

- a CA ("dicom-ul test CA") and a second, unrelated CA ("other CA");
- a server certificate for `localhost` and `127.0.0.1` (subjectAltName), signed by the CA;
- a client certificate signed by the CA, and one signed by the other CA;
- a key that belongs to none of the certificates (for the "does not match" errors).

RSA 2048 keys and SHA-256 signatures: what every peer here accepts (DCMTK's default
"Non-downgrading BCP 195" profile offers ECDHE-RSA suites). Valid from one hour ago for
30 days, so that a clock a little off does not matter.

`dicomscp_running(directory, config_text, *args)` runs dicomscp (its `serve`, in a
thread: signal handlers belong to the main thread) with a TOML configuration, for the
TLS and user identity tests of the command-line tools.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cli import dicomscp
from tests import peers

KEY_BITS = 2048


@dataclass(frozen=True)
class Pki:
    directory: Path
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path
    other_client_cert: Path
    other_client_key: Path
    stray_key: Path


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dicom-ul tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_key(key: rsa.RSAPrivateKey, path: Path, password: bytes | None = None) -> Path:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )
    path.chmod(0o600)
    return path


def _write_cert(cert: x509.Certificate, path: Path) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return builder.not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(
        now + datetime.timedelta(days=30)
    )


def _ca(common_name: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = _key()
    name = _name(common_name)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return key, _validity(builder).sign(key, hashes.SHA256())


def _leaf(
    common_name: str,
    ca_key: rsa.RSAPrivateKey,
    ca_cert: x509.Certificate,
    *,
    server: bool,
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = _key()
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return key, _validity(builder).sign(ca_key, hashes.SHA256())


def make_pki(directory: Path) -> Pki:
    """Write a test PKI into `directory` (created if missing) and say where each file is."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _ca("dicom-ul test CA")
    other_key, other_cert = _ca("other CA")
    server_key, server_cert = _leaf("localhost", ca_key, ca_cert, server=True)
    client_key, client_cert = _leaf("DICOMSCU client", ca_key, ca_cert, server=False)
    stranger_key, stranger_cert = _leaf("stranger", other_key, other_cert, server=False)
    return Pki(
        directory=directory,
        ca=_write_cert(ca_cert, directory / "ca.pem"),
        server_cert=_write_cert(server_cert, directory / "server.pem"),
        server_key=_write_key(server_key, directory / "server.key"),
        client_cert=_write_cert(client_cert, directory / "client.pem"),
        client_key=_write_key(client_key, directory / "client.key"),
        other_ca=_write_cert(other_cert, directory / "other-ca.pem"),
        other_client_cert=_write_cert(stranger_cert, directory / "stranger.pem"),
        other_client_key=_write_key(stranger_key, directory / "stranger.key"),
        stray_key=_write_key(_key(), directory / "stray.key"),
    )


def write_encrypted_key(pki: Pki, password: bytes) -> Path:
    """The server key again, encrypted with `password` (PKCS#8)."""
    key = serialization.load_pem_private_key(pki.server_key.read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return _write_key(key, pki.directory / "server-encrypted.key", password)


@dataclass
class RunningScp:
    port: int
    stop: threading.Event
    status: list[int]  # dicomscp's exit status, once it has returned


@contextlib.contextmanager
def dicomscp_running(directory: Path, config_text: str, *args: str) -> Iterator[RunningScp]:
    """dicomscp with `config_text` as its configuration file and `args` on its command
    line, listening on a free loopback port; stopped (as by SIGTERM) at exit, which must
    end with exit status 0."""
    directory.mkdir(parents=True, exist_ok=True)
    config_path = directory / "dicomscp.toml"
    config_path.write_text(config_text, encoding="utf-8")
    port = peers.free_port()
    parsed = dicomscp.build_parser().parse_args(
        ["--config", str(config_path), "--archive", str(directory / "archive"), *args, str(port)]
    )
    config = dicomscp.settings(parsed)
    stop = threading.Event()
    status: list[int] = []
    thread = threading.Thread(target=lambda: status.append(dicomscp.serve(config, stop)))
    thread.start()
    try:
        peers.wait_until(
            lambda: bool(status) or peers.port_accepts(peers.HOST, port),
            peers.STARTUP_S,
            "dicomscp listening",
        )
        assert not status, f"dicomscp exited with status {status}"
        yield RunningScp(port, stop, status)
    finally:
        stop.set()
        thread.join(60)
    assert status == [0]
