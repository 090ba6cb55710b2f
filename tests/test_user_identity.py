"""User identity negotiation (PS3.7 D.3.3.7): our client and our server, pynetdicom in
both roles, DCMTK's storescu, and dicomscu / dicomscp with their options.

What is checked on the server side is what the hook was given (recorded by the hook);
on the client side, what the A-ASSOCIATE-AC or -RJ said. A refusal is A-ASSOCIATE-RJ
(1, 2, 1): rejected-permanent, DICOM UL service-provider (ACSE related function),
no-reason-given, as PS3.7 D.3.3.7.3 "User Identity Rejection" prescribes.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cli import dicomscp, dicomscu
from cli.dicomscp.config import ConfigError
from dimse import client, identity
from dimse.datasets import UNCOMPRESSED
from dimse.identity import IdentityType
from dimse.models import VERIFICATION
from dimse.scp import Handlers, Provider
from dul import tls
from dul.connection import Timeouts
from dul.errors import AssociationRejected
from dul.negotiation import AcceptorPolicy, ProposedContext, build_request, negotiate
from dul.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RJ
from dul.user_information import UserIdentityRQSubItem
from tests import peers
from tests.certs import Pki, dicomscp_running, make_pki
from tests.dicomscu_support import run_dicomscu
from tests.peers import HOST, run_dcmtk

pytest_plugins = ["tests.aio_support"]  # provider_factory: blocking and asyncio providers

TIMEOUTS = Timeouts(connect=10.0, acse=10.0, dimse=10.0, idle=10.0, artim=10.0)
ECHO = [ProposedContext(VERIFICATION, UNCOMPRESSED)]
FAST_ITERATIONS = 1000  # PBKDF2 in tests: the format, not the cost, is under test
JWT = b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
USER_REJECTION = (1, 2, 1)  # PS3.7 D.3.3.7.3


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@dataclass
class Hook:
    """An identity hook that records its calls and answers `verdict`."""

    verdict: bool | bytes = True
    calls: list[tuple[UserIdentityRQSubItem | None, bool]] = field(default_factory=list)

    def __call__(self, given: UserIdentityRQSubItem | None, is_tls: bool) -> bool | bytes:
        self.calls.append((given, is_tls))
        return self.verdict


@contextlib.contextmanager
def serving(
    hook: Any,
    ssl_context: ssl.SSLContext | None = None,
    allow_password_without_tls: bool = False,
    make: Callable[..., Any] = Provider,
) -> Iterator[Any]:
    provider = make(
        Handlers(),
        ae_title="OURSCP",
        host=HOST,
        port=0,
        timeouts=TIMEOUTS,
        ssl_context=ssl_context,
        identity_check=hook,
        allow_password_without_tls=allow_password_without_tls,
    )
    with provider:
        yield provider


def associate(
    port: int, user: UserIdentityRQSubItem | None, ssl_context: ssl.SSLContext | None = None
) -> bytes | None:
    """Associate, C-ECHO, release; returns the Server-response (None: no 59H sub-item)."""
    with client.connect(
        HOST,
        port,
        called_ae="OURSCP",
        contexts=ECHO,
        timeouts=TIMEOUTS,
        ssl_context=ssl_context,
        user_identity=user,
    ) as association:
        assert association.echo().is_success
        return association.identity_response


def rejected(port: int, user: UserIdentityRQSubItem | None, **kw: Any) -> tuple[int, int, int]:
    with pytest.raises(AssociationRejected) as caught:
        associate(port, user, **kw)
    return caught.value.result, caught.value.source, caught.value.reason


# ---------------------------------------------------------------------------------------
# Building the sub-item


def test_the_builders_make_the_sub_items_of_d_3_3_7_1() -> None:
    assert identity.username("alice") == UserIdentityRQSubItem(1, 0, b"alice", b"")
    assert identity.username("Zoë", positive_response_requested=True) == UserIdentityRQSubItem(
        1, 1, "Zoë".encode(), b""
    )
    assert identity.username_password("alice", "pässword") == UserIdentityRQSubItem(
        2, 0, b"alice", "pässword".encode()
    )
    assert identity.token("jwt", JWT) == UserIdentityRQSubItem(5, 0, JWT, b"")
    assert identity.token("SAML", b"<saml/>").identity_type == IdentityType.SAML
    assert identity.token(3, b"ticket").identity_type == IdentityType.KERBEROS
    assert identity.with_positive_response(identity.token("jwt", JWT)).positive_response_requested
    for wrong in (
        lambda: identity.token("oauth", b"x"),
        lambda: identity.token(2, b"x"),
        lambda: identity.username(""),
        lambda: identity.username_password("alice", ""),
        lambda: identity.token("jwt", bytes(70000)),
    ):
        with pytest.raises(ValueError):
            wrong()


def test_describe_never_shows_a_secret() -> None:
    assert identity.describe(identity.username_password("alice", "s3cret")) == (
        "username and passcode 'alice'"
    )
    assert "s3cret" not in repr(identity.username_password("alice", "s3cret"))
    assert identity.describe(identity.token("jwt", JWT)) == f"jwt ({len(JWT)} bytes)"
    assert identity.describe(None) == "no user identity"


# ---------------------------------------------------------------------------------------
# The negotiation itself (pure)


def _negotiate(policy: AcceptorPolicy, user: UserIdentityRQSubItem | None) -> Any:
    request = build_request("SCU", "OURSCP", ECHO, user_identity=user)
    return negotiate(request, policy)


def test_negotiate_passes_tls_to_the_hook_and_answers_as_d_3_3_7_says() -> None:
    hook = Hook(verdict=b"server-ticket")
    policy = AcceptorPolicy("OURSCP", {VERIFICATION: UNCOMPRESSED}, identity_check=hook, tls=True)
    # A token with a positive response requested: the hook's bytes come back.
    answer = _negotiate(policy, identity.token("kerberos", b"t", positive_response_requested=True))
    assert isinstance(answer, A_ASSOCIATE_AC)
    assert answer.user_information.user_identity_response is not None
    assert answer.user_information.user_identity_response.server_response == b"server-ticket"
    # A username: the response is zero-length (D.3.3.7.2), whatever the hook returned.
    answer = _negotiate(policy, identity.username("a", positive_response_requested=True))
    assert answer.user_information.user_identity_response.server_response == b""
    # No positive response requested: no 59H sub-item.
    answer = _negotiate(policy, identity.token("jwt", JWT))
    assert answer.user_information.user_identity_response is None
    assert [is_tls for _, is_tls in hook.calls] == [True, True, True]


def test_negotiate_rejects_with_the_reason_of_d_3_3_7_3() -> None:
    def broken(given: Any, is_tls: bool) -> bool:
        raise RuntimeError("the directory server is down")

    for hook in (Hook(verdict=False), broken):
        policy = AcceptorPolicy("OURSCP", {VERIFICATION: UNCOMPRESSED}, identity_check=hook)
        answer = _negotiate(policy, identity.username("alice"))
        assert isinstance(answer, A_ASSOCIATE_RJ)
        assert (answer.result, answer.source, answer.reason) == USER_REJECTION


def test_without_a_hook_the_identity_is_ignored() -> None:
    policy = AcceptorPolicy("OURSCP", {VERIFICATION: UNCOMPRESSED})
    user = identity.username_password("alice", "pw", positive_response_requested=True)
    answer = _negotiate(policy, user)  # no TLS either: nobody checks, nothing is refused
    assert isinstance(answer, A_ASSOCIATE_AC)
    assert answer.user_information.user_identity_response is None


# ---------------------------------------------------------------------------------------
# Our client and our server


def test_username_accepted_and_refused_by_the_hook() -> None:
    hook = Hook()
    with serving(hook) as provider:
        assert associate(provider.port, identity.username("alice")) is None
        hook.verdict = False
        assert rejected(provider.port, identity.username("mallory")) == USER_REJECTION
    assert [(given.primary_field if given else None, is_tls) for given, is_tls in hook.calls] == [
        (b"alice", False),
        (b"mallory", False),
    ]


def test_username_and_passcode_are_refused_without_tls_by_default() -> None:
    hook = Hook()
    with serving(hook) as provider:
        user = identity.username_password("alice", "s3cret")
        assert rejected(provider.port, user) == USER_REJECTION
        assert associate(provider.port, identity.username("alice")) is None
    assert len(hook.calls) == 1  # the passcode never reached the hook


def test_username_and_passcode_without_tls_when_the_server_allows_it() -> None:
    hook = Hook()
    with serving(hook, allow_password_without_tls=True) as provider:
        assert associate(provider.port, identity.username_password("alice", "s3cret")) is None
    (given, is_tls), *_ = hook.calls
    assert given is not None
    assert (given.identity_type, given.primary_field, given.secondary_field, is_tls) == (
        2,
        b"alice",
        b"s3cret",
        False,
    )


def test_username_and_passcode_over_tls(pki: Pki) -> None:
    hook = Hook()
    server = tls.server_context(pki.server_cert, pki.server_key)
    with serving(hook, server) as provider:
        user = identity.username_password("alice", "s3cret", positive_response_requested=True)
        assert associate(provider.port, user, tls.client_context(pki.ca)) == b""
        hook.verdict = False
        assert rejected(provider.port, user, ssl_context=tls.client_context(pki.ca)) == (
            USER_REJECTION
        )
    assert [(given.secondary_field if given else None, is_tls) for given, is_tls in hook.calls] == [
        (b"s3cret", True),
        (b"s3cret", True),
    ]


@pytest.mark.parametrize(("kind", "number"), [("kerberos", 3), ("saml", 4), ("jwt", 5)])
def test_tokens_and_the_positive_response(kind: str, number: int) -> None:
    hook = Hook(verdict=f"response to {kind}".encode())
    with serving(hook) as provider:
        asked = identity.token(kind, b"token-" + kind.encode(), positive_response_requested=True)
        assert associate(provider.port, asked) == f"response to {kind}".encode()
        assert associate(provider.port, identity.token(kind, b"t")) is None  # not asked
    given, _ = hook.calls[0]
    assert given is not None
    assert (given.identity_type, given.primary_field) == (number, b"token-" + kind.encode())


def test_a_hook_that_accepts_without_bytes_still_confirms_when_asked() -> None:
    with serving(Hook(verdict=True)) as provider:
        asked = identity.token("jwt", JWT, positive_response_requested=True)
        assert associate(provider.port, asked) == b""


def test_no_identity_reaches_the_hook_as_none() -> None:
    hook = Hook(verdict=False)  # e.g. "an identity is required"
    with serving(hook) as provider:
        assert rejected(provider.port, None) == USER_REJECTION
    assert hook.calls == [(None, False)]


# ---------------------------------------------------------------------------------------
# The [users] table: stored passwords


def test_stored_password_forms() -> None:
    pbkdf2 = identity.hash_password("s3cret", iterations=FAST_ITERATIONS)
    assert pbkdf2.startswith(f"pbkdf2:sha256:{FAST_ITERATIONS}:")
    assert pbkdf2 != identity.hash_password("s3cret", iterations=FAST_ITERATIONS)  # salted
    sha = "sha256:" + __import__("hashlib").sha256(b"s3cret").hexdigest()
    for stored in (pbkdf2, sha, "s3cret", "plain:s3cret"):
        identity.check_stored_password(stored)
        assert identity.verify_password(stored, b"s3cret")
        assert not identity.verify_password(stored, b"s3cret ")
        assert not identity.verify_password(stored, b"")
    for malformed in ("sha256:abc", "pbkdf2:sha256:x:00:00", "pbkdf2:md5:1:00:" + "0" * 64):
        with pytest.raises(ValueError):
            identity.check_stored_password(malformed)


def test_users_check() -> None:
    users = {
        "alice": identity.hash_password("wonderland", iterations=FAST_ITERATIONS),
        "bob": "sha256:" + __import__("hashlib").sha256(b"builder").hexdigest(),
        "carol": "",
    }
    check = identity.users_check(users)
    assert check(identity.username_password("alice", "wonderland"), True) is True
    assert check(identity.username_password("alice", "Wonderland"), True) is False
    assert check(identity.username_password("bob", "builder"), True) is True
    assert check(identity.username_password("mallory", "wonderland"), True) is False
    assert check(identity.username("alice"), True) is False  # alice needs her password
    assert check(identity.username("carol"), True) is True  # carol needs none
    assert check(identity.username("mallory"), True) is False
    assert check(identity.token("jwt", JWT), True) is False  # tokens: not verifiable here
    assert check(UserIdentityRQSubItem(2, 0, b"alic\xe9", b"wonderland"), True) is False
    assert check(None, True) is True
    assert identity.users_check(users, require_identity=True)(None, True) is False
    with pytest.raises(ValueError, match="'dave'"):
        identity.users_check({"dave": "sha256:nothex"})


# ---------------------------------------------------------------------------------------
# pynetdicom in both roles


def _pynetdicom_identity(kind: int, primary: bytes, secondary: bytes | None, response: bool) -> Any:
    from pynetdicom.pdu_primitives import UserIdentityNegotiation

    item = UserIdentityNegotiation()
    item.user_identity_type = kind
    item.primary_field = primary
    if secondary is not None:
        item.secondary_field = secondary
    item.positive_response_requested = response
    return item


def test_pynetdicom_scu_sends_identities_to_our_server(
    pki: Pki, provider_factory: Callable[..., Any]
) -> None:
    peers.require_pynetdicom()
    from pynetdicom import AE, evt

    hook = Hook(verdict=b"our-jwt-response")
    server = tls.server_context(pki.server_cert, pki.server_key)
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(pki.ca))
    rejections: list[tuple[int, int, int]] = []

    def on_acse(event: Any) -> None:
        primitive = event.primitive
        if getattr(primitive, "result", None) in (1, 2):
            rejections.append((primitive.result, primitive.result_source, primitive.diagnostic))

    ae = AE(ae_title="PYNETDICOM")
    ae.add_requested_context(VERIFICATION)
    try:
        with serving(hook, server, make=provider_factory) as provider:

            def associate_with(item: Any) -> Any:
                return ae.associate(
                    HOST,
                    provider.port,
                    ae_title="OURSCP",
                    ext_neg=[item],
                    tls_args=(context, HOST),
                    evt_handlers=[(evt.EVT_ACSE_RECV, on_acse)],
                )

            assoc = associate_with(_pynetdicom_identity(2, b"alice", b"s3cret", False))
            assert assoc.is_established
            assert assoc.send_c_echo().Status == 0
            assoc.release()

            assoc = associate_with(_pynetdicom_identity(5, JWT, None, True))
            assert assoc.is_established
            assert assoc.acceptor.user_identity.server_response == b"our-jwt-response"
            assoc.release()

            hook.verdict = False
            assoc = associate_with(_pynetdicom_identity(1, b"mallory", None, False))
            assert assoc.is_rejected
    finally:
        ae.shutdown()
    assert rejections == [USER_REJECTION]
    seen = [(g.identity_type, g.primary_field, g.secondary_field, t) for g, t in hook.calls if g]
    assert seen == [(2, b"alice", b"s3cret", True), (5, JWT, b"", True), (1, b"mallory", b"", True)]


@contextlib.contextmanager
def pynetdicom_server(
    verdict: tuple[bool, bytes | None], seen: list[tuple[Any, ...]]
) -> Iterator[int]:
    peers.require_pynetdicom()
    from pynetdicom import AE, evt

    def on_user_id(event: Any) -> tuple[bool, bytes | None]:
        seen.append((event.user_id_type, event.primary_field, event.secondary_field))
        return verdict

    ae = AE(ae_title="OURSCP")
    ae.add_supported_context(VERIFICATION)
    server = ae.start_server((HOST, 0), block=False, evt_handlers=[(evt.EVT_USER_ID, on_user_id)])
    assert server is not None
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        ae.shutdown()


def test_our_client_sends_identities_to_pynetdicom() -> None:
    seen: list[tuple[Any, ...]] = []
    with pynetdicom_server((True, b"pynetdicom-response"), seen) as port:
        assert associate(port, identity.username("alice")) is None
        assert associate(port, identity.username_password("alice", "s3cret")) is None
        asked = identity.token("jwt", JWT, positive_response_requested=True)
        assert associate(port, asked) == b"pynetdicom-response"
        assert associate(port, identity.token("saml", b"<saml/>")) is None
    assert seen == [
        (1, b"alice", b""),
        (2, b"alice", b"s3cret"),
        (5, JWT, b""),
        (4, b"<saml/>", b""),
    ]


def test_pynetdicom_refuses_our_identity() -> None:
    seen: list[tuple[Any, ...]] = []
    with pynetdicom_server((False, None), seen) as port:
        with pytest.raises(AssociationRejected):
            associate(port, identity.username("mallory"))
    assert seen == [(1, b"mallory", b"")]


# ---------------------------------------------------------------------------------------
# DCMTK storescu (-usr/-pwd/--jwt, -rsp)


def _dcmtk_store(port: int, ct_small: Path, *options: str, check: bool = True) -> Any:
    return run_dcmtk(
        "storescu", "-v", *options, "-aec", "OURSCP", HOST, str(port), ct_small, check=check
    )


class Storing(Handlers):
    serves_storage = True

    def store(self, caller: Any, request: Any, data: Any, transfer_syntax: str) -> int:
        return 0


@pytest.mark.peers
def test_dcmtk_storescu_username_and_password_over_tls(
    pki: Pki, ct_small: Path, provider_factory: Callable[..., Any]
) -> None:
    users = {"alice": identity.hash_password("s3cret", iterations=FAST_ITERATIONS)}
    check = identity.users_check(users, require_identity=True)
    calls: list[tuple[UserIdentityRQSubItem | None, bool]] = []

    def hook(given: UserIdentityRQSubItem | None, is_tls: bool) -> bool | bytes:
        calls.append((given, is_tls))
        return check(given, is_tls)

    server = tls.server_context(pki.server_cert, pki.server_key)
    provider = provider_factory(
        Storing(), ae_title="OURSCP", host=HOST, port=0, timeouts=TIMEOUTS,
        ssl_context=server, identity_check=hook,
    )  # fmt: skip
    dcmtk_tls = ["+tla", "+cf", str(pki.ca)]
    with provider:
        result = _dcmtk_store(provider.port, ct_small, *dcmtk_tls, "-usr", "alice", "-pwd", "s3cret", "-rsp")  # fmt: skip
        assert "Received Store Response (Success)" in result.stdout + result.stderr
        wrong = _dcmtk_store(provider.port, ct_small, *dcmtk_tls, "-usr", "alice", "-pwd", "nope", check=False)  # fmt: skip
        assert wrong.returncode != 0
        assert "Association Rejected" in wrong.stdout + wrong.stderr
        plain = _dcmtk_store(provider.port, ct_small, *dcmtk_tls, check=False)  # no identity
        assert plain.returncode != 0
    seen = [
        (g.primary_field, g.secondary_field, g.positive_response_requested, t)
        for g, t in calls
        if g
    ]
    assert seen == [(b"alice", b"s3cret", 1, True), (b"alice", b"nope", 0, True)]
    assert (None, True) in calls


@pytest.mark.peers
def test_dcmtk_storescu_password_without_tls_is_refused(
    ct_small: Path, provider_factory: Callable[..., Any]
) -> None:
    hook = Hook()
    provider = provider_factory(
        Storing(), ae_title="OURSCP", host=HOST, port=0, timeouts=TIMEOUTS, identity_check=hook
    )
    with provider:
        refused = _dcmtk_store(provider.port, ct_small, "-usr", "alice", "-pwd", "s3cret", check=False)  # fmt: skip
        assert refused.returncode != 0
        assert "Association Rejected" in refused.stdout + refused.stderr
        assert "Rejected Permanent" in refused.stdout + refused.stderr
        accepted = _dcmtk_store(provider.port, ct_small, "-usr", "alice")  # a username alone
        assert "Received Store Response (Success)" in accepted.stdout + accepted.stderr
    assert [g.identity_type for g, _ in hook.calls if g] == [1]


# ---------------------------------------------------------------------------------------
# dicomscu and dicomscp


def _users_config(pki: Pki, **extra: str) -> str:
    alice = identity.hash_password("wonderland", iterations=FAST_ITERATIONS)
    settings = "".join(f"{key} = {value}\n" for key, value in extra.items())
    return (
        f'aetitle = "OURSCP"\nhost = "{HOST}"\n{settings}'
        f'[tls]\ncert = "{pki.server_cert}"\nkey = "{pki.server_key}"\n'
        f'[users]\nalice = "{alice}"\ncarol = ""\n'
    )


def test_dicomscu_and_dicomscp_with_tls_and_a_password(pki: Pki, tmp_path: Path) -> None:
    with dicomscp_running(tmp_path, _users_config(pki, require_identity="true")) as scp:
        base = ["--echo", "--call", "OURSCP", "--tls-ca", str(pki.ca), HOST, str(scp.port)]
        good = run_dicomscu(*base, "--username", "alice", env={"DICOMSCU_PASSWORD": "wonderland"})
        assert good.returncode == 0, good.stderr
        confirmed = run_dicomscu(
            *base, "--username", "alice", "--identity-response", env={"DICOMSCU_PASSWORD": "wonderland"}
        )  # fmt: skip
        assert confirmed.returncode == 0, confirmed.stderr
        on_command_line = run_dicomscu(*base, "--username", "alice", "--password", "wonderland")
        assert on_command_line.returncode == 0
        assert "prefer the environment variable DICOMSCU_PASSWORD" in on_command_line.stderr
        wrong = run_dicomscu(*base, "--username", "alice", "--password", "Wonderland")
        assert wrong.returncode == 1
        assert "refused the association" in wrong.stderr
        assert "may have refused the user identity" in wrong.stderr
        assert run_dicomscu(*base, "--username", "carol").returncode == 0
        nobody = run_dicomscu(*base)
        assert nobody.returncode == 1  # require_identity
        plaintext = run_dicomscu("--echo", "--call", "OURSCP", HOST, str(scp.port))
        assert plaintext.returncode == 1


def test_dicomscp_refuses_a_password_without_tls_unless_configured(
    pki: Pki, tmp_path: Path
) -> None:
    alice = identity.hash_password("wonderland", iterations=FAST_ITERATIONS)
    config = f'aetitle = "OURSCP"\nhost = "{HOST}"\n[users]\nalice = "{alice}"\n'
    args = ["--echo", "--call", "OURSCP", "--username", "alice", HOST]
    env = {"DICOMSCU_PASSWORD": "wonderland"}
    with dicomscp_running(tmp_path / "strict", config) as scp:
        refused = run_dicomscu(*args, str(scp.port), env=env)
        assert refused.returncode == 1
        assert "the password is sent without TLS" in refused.stderr
        assert "refused the association" in refused.stderr
    lax = "allow_password_without_tls = true\n" + config
    with dicomscp_running(tmp_path / "lax", lax) as scp:
        assert run_dicomscu(*args, str(scp.port), env=env).returncode == 0


def test_dicomscu_identity_response_fails_when_the_server_does_not_confirm(
    pki: Pki, tmp_path: Path
) -> None:
    config = f'aetitle = "OURSCP"\nhost = "{HOST}"\n'  # no [users]: identity ignored
    with dicomscp_running(tmp_path, config) as scp:
        base = ["--echo", "--call", "OURSCP", "--username", "alice", HOST, str(scp.port)]
        assert run_dicomscu(*base).returncode == 0
        unconfirmed = run_dicomscu(*base, "--identity-response")
        assert unconfirmed.returncode == 1
        assert "without confirming the user identity" in unconfirmed.stderr


def test_dicomscu_sends_a_token_file(tmp_path: Path) -> None:
    token_file = tmp_path / "token.jwt"
    token_file.write_bytes(JWT + b"\n")
    hook = Hook(verdict=b"ok")
    with serving(hook) as provider:
        status = dicomscu.main(
            ["--echo", "--call", "OURSCP", "--token-file", str(token_file), "--identity-response",
             HOST, str(provider.port)]
        )  # fmt: skip
        assert status == 0
        saml = tmp_path / "assertion.xml"
        saml.write_bytes(b"<saml:Assertion/>\n")
        assert dicomscu.main(
            ["--echo", "--call", "OURSCP", "--token-file", str(saml), "--token-type", "saml",
             HOST, str(provider.port)]
        ) == 0  # fmt: skip
    sent = [
        (g.identity_type, g.primary_field, g.positive_response_requested)
        for g, _ in hook.calls
        if g
    ]
    assert sent == [(5, JWT, 1), (4, b"<saml:Assertion/>\n", 0)]


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        (["--password", "x"], "--password goes with --username"),
        (["--username", "a", "--token-file", "t"], "two identities"),
        (["--identity-response"], "needs an identity"),
        (["--token-file", "/nonexistent/token"], "--token-file /nonexistent/token"),
        (["--tls-cert", "/nonexistent/cert.pem"], "TLS: cannot read the certificate file"),
        (["--tls-no-verify", "--tls-ca", "ca.pem"], "contradict"),
    ],
)
def test_dicomscu_security_usage_errors(
    arguments: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert dicomscu.main(["--echo", *arguments, HOST, "104"]) == 2
    assert words in capsys.readouterr().err


def test_dicomscp_configuration_errors(pki: Pki, tmp_path: Path) -> None:
    bad_user = tmp_path / "bad-user.toml"
    bad_user.write_text('[users]\nalice = "sha256:1234"\n')
    with pytest.raises(ConfigError, match=r"users\.alice: a sha256: password"):
        dicomscp.settings(dicomscp.build_parser().parse_args(["--config", str(bad_user)]))
    bad_tls = tmp_path / "bad-tls.toml"
    bad_tls.write_text(f'[tls]\ncert = "{pki.server_cert}"\nkey = "{pki.stray_key}"\n')
    config = dicomscp.settings(dicomscp.build_parser().parse_args(["--config", str(bad_tls)]))
    with pytest.raises(ConfigError, match="does not match the certificate"):
        dicomscp.tls_context(config)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text(f'[tls]\ncert = "{pki.server_cert}"\nkeyfile = "x"\n')
    with pytest.raises(ConfigError, match="unknown settings keyfile"):
        dicomscp.settings(dicomscp.build_parser().parse_args(["--config", str(unknown)]))
    only_ca = dicomscp.settings(dicomscp.build_parser().parse_args(["--tls-ca", str(pki.ca)]))
    with pytest.raises(ConfigError, match="TLS needs our certificate"):
        dicomscp.tls_context(only_ca)


def test_dicomscp_hash_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("wonderland\n"))
    assert dicomscp.main(["--hash-password"]) == 0
    stored = capsys.readouterr().out.strip()
    assert stored.startswith(f"pbkdf2:sha256:{identity.PBKDF2_ITERATIONS}:")
    assert identity.verify_password(stored, b"wonderland")
