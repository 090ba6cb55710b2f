"""TLS for DICOM (PS3.15 Annex B), for the programs of `dimse`: the contexts of
`dul.tls`, named here so that a program speaks to `dimse` only. Importing it imports
`ssl`: import it only when TLS is asked for.
"""

from __future__ import annotations

from dul.tls import (
    DICOM_TLS_PORT,
    TlsCertificateError,
    TlsConfigError,
    TlsHandshakeError,
    client_context,
    describe_tls_error,
    server_context,
)

__all__ = [
    "DICOM_TLS_PORT",
    "TlsCertificateError",
    "TlsConfigError",
    "TlsHandshakeError",
    "client_context",
    "describe_tls_error",
    "server_context",
]
