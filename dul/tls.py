"""TLS for DICOM (PS3.15 Annex B): the `ssl.SSLContext` of a requestor and of an acceptor.

    from dul import tls
    context = tls.client_context(ca_file="ca.pem")                     # server certificate
    context = tls.client_context("ca.pem", "me.pem", "me.key")         # and ours (mutual)
    context = tls.server_context("server.pem", "server.key")           # acceptor
    context = tls.server_context("server.pem", "server.key", "ca.pem",
                                 require_client_cert=True)             # mutual TLS

Pass the context to `dul.drivers.sockets.request_association(ssl_context=...)` /
`Server(ssl_context=...)`, or `dimse.client.connect` / `dimse.scp.Provider`.

What these contexts promise (PS3.15 B.9, "BCP 195 TLS Secure Transport Connection
Profile"; BCP 195 is RFC 9325 today):

- TLS 1.2 or newer: `minimum_version` is TLS 1.2 on both sides, so a peer that offers
  only TLS 1.1 or older fails the handshake (no downgrade).
- The cipher suites are Python's default secure set (`@SECLEVEL=2`, ECDHE/DHE key
  exchange with AES-GCM, ChaCha20-Poly1305 or AES with SHA-2 MACs; TLS 1.3's AEAD
  suites): no RC4, no 3DES or DES, no NULL encryption, no anonymous suites, no
  SHA-1 MACs. Compression and (for TLS 1.2) renegotiation are off.
- A requestor verifies the acceptor's certificate against `ca_file` (or the system's
  CAs) and, unless told otherwise, that it names the host called (RFC 6125).
- The handshake has a deadline: the socket's timeout when it starts (the acceptor
  sets ARTIM, the requestor its connect timeout) bounds the *whole* handshake, not
  each read, so a peer that trickles its ClientHello a byte at a time is dropped
  when the deadline passes, as one that sends nothing is.
- A failed handshake says why in words (`TlsHandshakeError`), and a certificate or key
  that cannot be used says which file and why (`TlsConfigError`); an encrypted private
  key never makes OpenSSL prompt on the terminal.

The IANA port for DICOM over TLS is 2762 ("dicom-tls"), `DICOM_TLS_PORT`.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

#: The registered port of DICOM over TLS (IANA "dicom-tls"; PS3.15 Annex B).
DICOM_TLS_PORT = 2762

#: BCP 195 (RFC 9325) and PS3.15 B.9: nothing older than TLS 1.2.
MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2

StrPath = str | os.PathLike[str]


class TlsConfigError(ValueError):
    """A certificate, key or CA file cannot be used; the message names the file and why."""


class TlsHandshakeError(ssl.SSLError):
    """A TLS handshake failed; `str()` says why in words, `.reason` keeps OpenSSL's code."""

    def __init__(self, message: str, cause: ssl.SSLError) -> None:
        super().__init__(cause.errno, message)
        self.message = message
        self.reason = cause.reason
        self.library = cause.library

    def __str__(self) -> str:
        return self.message


class TlsCertificateError(TlsHandshakeError, ssl.SSLCertVerificationError):
    """The peer's certificate could not be verified."""

    def __init__(self, message: str, cause: ssl.SSLCertVerificationError) -> None:
        super().__init__(message, cause)
        self.verify_code = cause.verify_code
        self.verify_message = cause.verify_message


def describe_tls_error(exc: BaseException) -> str:
    """What a failed TLS handshake means, in words (with OpenSSL's reason code)."""
    if isinstance(exc, TlsHandshakeError):
        return exc.message
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"the peer's certificate could not be verified ({exc.verify_message})"
    if isinstance(exc, TimeoutError):
        return str(exc) or "the TLS handshake timed out"
    if isinstance(exc, ssl.SSLEOFError | ConnectionResetError | BrokenPipeError):
        return (
            "the peer closed the connection during the TLS handshake (it may not speak "
            "TLS on this port, or it refused our certificate or our TLS versions)"
        )
    reason = getattr(exc, "reason", None) or ""
    texts = {
        "WRONG_VERSION_NUMBER": "the peer does not speak TLS here (a plain DICOM port?)",
        "HTTP_REQUEST": "the peer sent HTTP, not a TLS handshake",
        "UNSUPPORTED_PROTOCOL": "no TLS version in common (we require TLS 1.2 or newer)",
        "TLSV1_ALERT_PROTOCOL_VERSION": "no TLS version in common: the peer refused the "
        "versions offered",
        "NO_PROTOCOLS_AVAILABLE": "no TLS version is enabled on our side",
        "NO_SHARED_CIPHER": "no cipher suite in common",
        "SSLV3_ALERT_HANDSHAKE_FAILURE": "the peer ended the handshake (no cipher suite or "
        "TLS version in common, or it wants a client certificate)",
        "TLSV13_ALERT_CERTIFICATE_REQUIRED": "the peer requires a client certificate",
        "PEER_DID_NOT_RETURN_A_CERTIFICATE": "the client sent no certificate, and one is required",
        "TLSV1_ALERT_UNKNOWN_CA": "the peer does not trust the CA of our certificate",
        "SSLV3_ALERT_BAD_CERTIFICATE": "the peer refused our certificate",
        "SSLV3_ALERT_CERTIFICATE_EXPIRED": "the peer says our certificate has expired",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "the peer refused our certificate",
        "TLSV1_ALERT_DECRYPT_ERROR": "the peer could not check our signature (wrong key?)",
    }
    text = texts.get(reason)
    if text is None:
        return f"{exc}"
    return f"{text} [{reason}]"


# ---------------------------------------------------------------------------------------
# Files


def _read(path: StrPath, what: str, marker: bytes) -> tuple[str, bytes]:
    """The path as text and the file's bytes; TlsConfigError unless it holds `marker`
    (a PEM "-----BEGIN ..." line)."""
    text = os.fspath(path)
    try:
        data = Path(text).read_bytes()
    except OSError as exc:
        raise TlsConfigError(f"cannot read the {what} {text}: {exc.strerror or exc}") from exc
    if marker not in data:
        pem = b"-----BEGIN " in data
        raise TlsConfigError(
            f"the {what} {text} holds no PEM {marker.decode().strip('-').lower()}"
            + ("" if pem else " (is it DER? convert it to PEM with openssl)")
        )
    return text, data


def _load_chain(
    context: ssl.SSLContext, cert_file: StrPath, key_file: StrPath | None, password: str | None
) -> None:
    cert, cert_data = _read(cert_file, "certificate file", b"CERTIFICATE-----")
    if key_file is None:
        if b"PRIVATE KEY-----" not in cert_data:
            raise TlsConfigError(f"no private key in {cert}; give the key file too")
        key, key_holder, key_data = None, cert, cert_data
    else:
        key, key_data = _read(key_file, "private key file", b"PRIVATE KEY-----")
        key_holder = key
    encrypted = b"ENCRYPTED PRIVATE KEY" in key_data or b"Proc-Type: 4,ENCRYPTED" in key_data
    if encrypted and password is None:
        raise TlsConfigError(
            f"the private key {key_holder} is encrypted; give its password, or write it "
            f"without one (openssl pkey -in {key_holder} -out plain.key)"
        )

    def no_prompt() -> str:  # never let OpenSSL ask on the terminal
        raise TlsConfigError(f"the private key {key_holder} needs a password")

    try:
        context.load_cert_chain(cert, key, password if password is not None else no_prompt)
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise TlsConfigError(
                f"the private key {key_holder} does not match the certificate {cert}"
            ) from exc
        if encrypted:
            raise TlsConfigError(
                f"cannot decrypt the private key {key_holder} with the password given"
            ) from exc
        raise TlsConfigError(
            f"cannot use the certificate {cert} with the private key {key_holder}: {exc}"
        ) from exc


def _load_ca(context: ssl.SSLContext, ca_file: StrPath) -> None:
    ca, _ = _read(ca_file, "CA certificate file", b"CERTIFICATE-----")
    try:
        context.load_verify_locations(cafile=ca)
    except ssl.SSLError as exc:
        raise TlsConfigError(f"no usable CA certificate in {ca}: {exc}") from exc


def _harden(context: ssl.SSLContext) -> None:
    context.minimum_version = MINIMUM_VERSION
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    from dul.drivers.tls_socket import deadline_ssl_socket  # socket code lives in the drivers

    context.sslsocket_class = deadline_ssl_socket()


# ---------------------------------------------------------------------------------------
# The two contexts


def client_context(
    ca_file: StrPath | None = None,
    cert_file: StrPath | None = None,
    key_file: StrPath | None = None,
    *,
    verify: bool = True,
    check_hostname: bool | None = None,
    key_password: str | None = None,
) -> ssl.SSLContext:
    """The requestor's context.

    `ca_file`: PEM CA certificate(s) that signed the server's certificate (None: the
    system's CAs). `cert_file`/`key_file`: our certificate and key, for an acceptor
    that asks for one (the key may be in `cert_file`). `verify=False` accepts any
    server certificate (tests and first set-up only: it gives no protection against a
    man in the middle). `check_hostname` (default: `verify`) requires the server's
    certificate to name the host we call. Raises `TlsConfigError`.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _harden(context)
    if verify:
        context.check_hostname = True if check_hostname is None else check_hostname
        context.verify_mode = ssl.CERT_REQUIRED
        if ca_file is not None:
            _load_ca(context, ca_file)
        else:
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:
        if check_hostname:
            raise TlsConfigError(
                "check_hostname needs verify: a name is only checked on a verified certificate"
            )
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if cert_file is not None:
        _load_chain(context, cert_file, key_file, key_password)
    elif key_file is not None:
        raise TlsConfigError("a private key without its certificate: give the certificate too")
    return context


def server_context(
    cert_file: StrPath,
    key_file: StrPath | None = None,
    ca_file: StrPath | None = None,
    *,
    require_client_cert: bool = False,
    key_password: str | None = None,
) -> ssl.SSLContext:
    """The acceptor's context.

    `cert_file`/`key_file`: our certificate (with its chain) and key, PEM (the key may
    be in `cert_file`). `ca_file`: the CA(s) that sign client certificates; a client
    certificate is then verified if sent, and with `require_client_cert` one is
    required (mutual TLS). Raises `TlsConfigError`.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _harden(context)
    context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    _load_chain(context, cert_file, key_file, key_password)
    if ca_file is not None:
        _load_ca(context, ca_file)
        context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    elif require_client_cert:
        raise TlsConfigError(
            "client certificates are required but no CA file is given to verify them"
        )
    return context
