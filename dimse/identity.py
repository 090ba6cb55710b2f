"""User identity negotiation (PS3.7 D.3.3.7): what a requestor sends, how an acceptor checks.

As requestor, build the sub-item and pass it to `dimse.client.connect(user_identity=...)`:

    from dimse import identity
    connect(..., user_identity=identity.username("alice"))
    connect(..., user_identity=identity.username_password("alice", secret),
            ssl_context=tls.client_context("ca.pem"))       # a passcode wants TLS
    connect(..., user_identity=identity.token("jwt", jwt_bytes,
                                              positive_response_requested=True))
    association.identity_response      # the acceptor's 59H Server-response, or None

As acceptor, give `dimse.scp.Provider(identity_check=hook)` an `IdentityHook`: it gets
the identity (None when the requestor sent none) and whether the connection is TLS,
and returns False to reject the association (A-ASSOCIATE-RJ (1, 2, 1), PS3.7
D.3.3.7.3), True to accept, or bytes to accept with that Server-response (sent when a
positive response was requested; for a Kerberos ticket, the server ticket). A
username and passcode over a connection without TLS is refused before the hook is
called, unless the Provider is given `allow_password_without_tls=True`.

`users_check(users)` is a ready hook over a table username -> stored password, the
table of dicomscp's `[users]`. A stored password is one of:

- `pbkdf2:sha256:<iterations>:<salt hex>:<key hex>` (PBKDF2-HMAC-SHA256; what
  `hash_password()` and `dicomscp --hash-password` write; the advised form);
- `sha256:<hex>`: the SHA-256 of the password, unsalted (better than plain text, not
  much: prefer pbkdf2);
- `plain:<text>` or any other text: the password itself;
- `""`: the username alone identifies the user (type 1 or 2 accepted).

Every comparison is in constant time (`hmac.compare_digest`), and an unknown username
costs the same work as a known one, so that timing tells nothing about either.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import secrets
from collections.abc import Mapping
from enum import IntEnum

from dul.negotiation import IdentityCheck
from dul.user_information import UserIdentityRQSubItem

log = logging.getLogger("dimse.identity")


class IdentityType(IntEnum):
    """User-Identity-Type (PS3.7 Table D.3-14)."""

    USERNAME = 1
    USERNAME_AND_PASSCODE = 2
    KERBEROS = 3
    SAML = 4
    JWT = 5


#: Names of the token types, as dicomscu's --token-type spells them.
TOKEN_TYPES = {
    "kerberos": IdentityType.KERBEROS,
    "saml": IdentityType.SAML,
    "jwt": IdentityType.JWT,
}

#: (identity or None, connection is TLS) -> False (reject), True (accept), or bytes
#: (accept; the Server-response of a positive response). The same type as
#: `dul.negotiation.IdentityCheck`, which calls it.
IdentityHook = IdentityCheck

PBKDF2_ITERATIONS = 600_000  # OWASP's figure for PBKDF2-HMAC-SHA256 (2023)
SALT_BYTES = 16
MAX_FIELD = 0xFFFF  # a primary or secondary field has a 16-bit length (PS3.7 D.3.3.7.1)


# ---------------------------------------------------------------------------------------
# The requestor's side: building the A-ASSOCIATE-RQ sub-item (58H)


def _field(value: bytes, what: str) -> bytes:
    if not value:
        raise ValueError(f"the {what} is empty")
    if len(value) > MAX_FIELD:
        raise ValueError(f"the {what} is {len(value)} bytes; at most {MAX_FIELD} fit")
    return value


def username(name: str, *, positive_response_requested: bool = False) -> UserIdentityRQSubItem:
    """Type 1: a username (UTF-8)."""
    return UserIdentityRQSubItem(
        IdentityType.USERNAME,
        int(positive_response_requested),
        _field(name.encode("utf-8"), "username"),
    )


def username_password(
    name: str, password: str | bytes, *, positive_response_requested: bool = False
) -> UserIdentityRQSubItem:
    """Type 2: a username (UTF-8) and passcode (UTF-8 when given as text). Send it over
    TLS only: the passcode travels as it is."""
    secret = password.encode("utf-8") if isinstance(password, str) else bytes(password)
    return UserIdentityRQSubItem(
        IdentityType.USERNAME_AND_PASSCODE,
        int(positive_response_requested),
        _field(name.encode("utf-8"), "username"),
        _field(secret, "passcode"),
    )


def token(
    kind: int | str, data: bytes, *, positive_response_requested: bool = False
) -> UserIdentityRQSubItem:
    """Types 3, 4, 5: a Kerberos service ticket, a SAML assertion or a JSON Web Token;
    `kind` is the type number or "kerberos", "saml", "jwt"."""
    if isinstance(kind, str):
        try:
            number = TOKEN_TYPES[kind.lower()]
        except KeyError:
            raise ValueError(
                f"unknown token type {kind!r}; one of {', '.join(TOKEN_TYPES)}"
            ) from None
    else:
        if kind not in (IdentityType.KERBEROS, IdentityType.SAML, IdentityType.JWT):
            raise ValueError(f"a token is of type 3, 4 or 5 (PS3.7 D.3.3.7.1), not {kind}")
        number = IdentityType(kind)
    return UserIdentityRQSubItem(
        number, int(positive_response_requested), _field(bytes(data), f"{number.name} token")
    )


def with_positive_response(identity: UserIdentityRQSubItem) -> UserIdentityRQSubItem:
    """The same identity, asking the acceptor for a positive response (59H)."""
    return dataclasses.replace(identity, positive_response_requested=1)


def describe(identity: UserIdentityRQSubItem | None) -> str:
    """For a log line: the type and the username, never a passcode or a token."""
    if identity is None:
        return "no user identity"
    try:
        kind = IdentityType(identity.identity_type).name.lower().replace("_", " ")
    except ValueError:
        kind = f"type {identity.identity_type}"
    if identity.identity_type in (IdentityType.USERNAME, IdentityType.USERNAME_AND_PASSCODE):
        name = identity.primary_field.decode("utf-8", "replace")
        return f"{kind} {name!r}"
    return f"{kind} ({len(identity.primary_field)} bytes)"


# ---------------------------------------------------------------------------------------
# The acceptor's side: stored passwords and a ready hook


def hash_password(
    password: str, *, iterations: int = PBKDF2_ITERATIONS, salt: bytes | None = None
) -> str:
    """`pbkdf2:sha256:<iterations>:<salt hex>:<key hex>` for a `[users]` table."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    key = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    return f"pbkdf2:sha256:{iterations}:{salt.hex()}:{key.hex()}"


def check_stored_password(stored: str) -> None:
    """ValueError unless `stored` is a form `verify_password` reads (see the module)."""
    if stored.startswith("sha256:"):
        digest = stored.removeprefix("sha256:")
        if len(digest) != 64 or not _is_hex(digest):
            raise ValueError("a sha256: password is 64 hexadecimal digits")
    elif stored.startswith("pbkdf2:"):
        parts = stored.split(":")
        if (
            len(parts) != 5
            or parts[1] != "sha256"
            or not parts[2].isdigit()
            or int(parts[2]) < 1
            or not (parts[3] and _is_hex(parts[3]))
            or len(parts[4]) != 64
            or not _is_hex(parts[4])
        ):
            raise ValueError(
                "a pbkdf2 password is pbkdf2:sha256:<iterations>:<salt hex>:<64 hex digits> "
                "(dicomscp --hash-password writes one)"
            )


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True


def verify_password(stored: str, given: bytes) -> bool:
    """Whether the passcode `given` matches `stored` (any form of the module), in
    constant time for a given form."""
    if stored.startswith("pbkdf2:"):
        _, algorithm, iterations, salt, key = stored.split(":")
        computed = hashlib.pbkdf2_hmac(algorithm, given, bytes.fromhex(salt), int(iterations))
        return hmac.compare_digest(computed, bytes.fromhex(key))
    if stored.startswith("sha256:"):
        computed = hashlib.sha256(given).digest()
        return hmac.compare_digest(computed, bytes.fromhex(stored.removeprefix("sha256:")))
    return hmac.compare_digest(stored.removeprefix("plain:").encode("utf-8"), given)


def users_check(users: Mapping[str, str], *, require_identity: bool = False) -> IdentityHook:
    """A hook over `users` (username -> stored password, see the module):

    - no identity: accepted, unless `require_identity`;
    - a username (type 1): accepted if the user's stored password is "" (none needed);
    - a username and passcode (type 2): accepted if the passcode matches;
    - a Kerberos ticket, SAML assertion or JWT (3, 4, 5): refused (this table cannot
      verify them: write a hook of your own).

    Raises ValueError for a stored password in no known form.
    """
    table = dict(users)
    for name, stored in table.items():
        try:
            check_stored_password(stored)
        except ValueError as exc:
            raise ValueError(f"users: {name!r}: {exc}") from None
    # An unknown username is checked against the costliest stored form, so that it
    # takes as long as a known one: timing does not tell who exists.
    forms = sorted(table.values(), key=lambda s: (s.startswith("pbkdf2:"), s.startswith("sha256:")))
    decoy = forms[-1] if forms else ""

    def check(identity: UserIdentityRQSubItem | None, tls: bool) -> bool | bytes:
        if identity is None:
            if require_identity:
                log.warning("association refused: no user identity, and one is required")
                return False
            return True
        kind = identity.identity_type
        if kind not in (IdentityType.USERNAME, IdentityType.USERNAME_AND_PASSCODE):
            log.warning("user identity refused: %s cannot be verified here", describe(identity))
            return False
        try:
            name = identity.primary_field.decode("utf-8")  # PS3.7 D.3.3.7.1: UTF-8
        except UnicodeDecodeError:
            log.warning("user identity refused: a username that is not UTF-8")
            return False
        stored = table.get(name)
        if kind == IdentityType.USERNAME:
            accepted = stored == ""
        else:
            matches = verify_password(decoy if stored is None else stored, identity.secondary_field)
            accepted = stored is not None and (stored == "" or matches)
        if accepted:
            log.info("user identity accepted: %s%s", describe(identity), " (TLS)" if tls else "")
        else:
            log.warning("user identity refused: %s", describe(identity))
        return accepted

    return check


__all__ = [
    "TOKEN_TYPES",
    "IdentityHook",
    "IdentityType",
    "check_stored_password",
    "describe",
    "hash_password",
    "token",
    "username",
    "username_password",
    "users_check",
    "verify_password",
    "with_positive_response",
]
