"""The TLS socket of the transport (PS3.15 B.1): a handshake with one deadline.

`dul.tls` installs `DeadlineSSLSocket` as the socket class of every context it makes.
It lives apart from `dul.transport` so that a plain TCP association never imports
`ssl` (about 15 ms of every start of `dicomscu`): this module is imported only when a
TLS context is made.
"""

from __future__ import annotations

import selectors
import ssl
import time

from dul.tls import TlsCertificateError, TlsHandshakeError, describe_tls_error


class DeadlineSSLSocket(ssl.SSLSocket):
    """An `SSLSocket` whose handshake ends at one deadline: the socket's timeout when
    the handshake starts. (The standard class applies the timeout to each read and
    write, so a peer sending a byte now and then could hold a thread for ever.)"""

    def do_handshake(self, block: bool = False) -> None:
        timeout = self.gettimeout()
        if not timeout:  # None (blocking) or 0.0 (non-blocking): as the standard class does
            super().do_handshake(block)
            return
        deadline = time.monotonic() + timeout
        self.settimeout(0.0)
        try:
            with selectors.DefaultSelector() as selector:
                while True:
                    try:
                        super().do_handshake()
                        return
                    except ssl.SSLWantReadError:
                        events = selectors.EVENT_READ
                    except ssl.SSLWantWriteError:
                        events = selectors.EVENT_WRITE
                    except ssl.SSLCertVerificationError as exc:
                        raise TlsCertificateError(self._certificate_text(exc), exc) from exc
                    except ssl.SSLError as exc:
                        raise TlsHandshakeError(describe_tls_error(exc), exc) from exc
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError(f"no complete TLS handshake within {timeout:g} s")
                    selector.register(self, events)
                    ready = selector.select(remaining)
                    selector.unregister(self)
                    if not ready:
                        raise TimeoutError(f"no complete TLS handshake within {timeout:g} s")
        finally:
            if self.fileno() != -1:
                self.settimeout(timeout)

    def _certificate_text(self, exc: ssl.SSLCertVerificationError) -> str:
        whose = "client's" if self.server_side else "server's"
        return (
            f"the {whose} certificate could not be verified ({exc.verify_message}); "
            "check the CA certificate given to verify it"
            + ("" if self.server_side else " and the host name called")
        )
