"""Socket details shared by the blocking drivers: TLS with one deadline for its
whole handshake, and how to tell "nothing yet" from a failure.

`ssl` is imported only where a TLS context is made (`dul.tls`): a plain
association does without its 15 ms of start-up. Until it is imported, no socket or
error is TLS.
"""

from __future__ import annotations

import functools
import selectors
import socket
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl


@functools.cache
def deadline_ssl_socket() -> type[ssl.SSLSocket]:
    """The socket class `dul.tls` gives every context it makes. Made at the first TLS
    context, not at import: `ssl` costs about 15 ms of every start of `dicomscu`, and
    a plain association never needs it."""
    import ssl

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

    return DeadlineSSLSocket


def is_tls(sock: socket.socket) -> bool:
    ssl = sys.modules.get("ssl")
    return ssl is not None and isinstance(sock, ssl.SSLSocket)


def would_block(exc: OSError) -> bool:
    """A read that found nothing yet: a timeout, or TLS waiting for a whole record."""
    if isinstance(exc, TimeoutError | BlockingIOError):
        return True
    ssl = sys.modules.get("ssl")
    return ssl is not None and isinstance(exc, ssl.SSLWantReadError)


def set_timeout(sock: socket.socket, timeout: float | None) -> None:
    # settimeout is a system call (it sets O_NONBLOCK) even when nothing changes; a
    # C-FIND answers thousands of times, reading for a C-CANCEL between responses
    if sock.gettimeout() != timeout:
        sock.settimeout(timeout)
