"""Bounce address, VERP, TLS trust, HELO name, AUTH errors and DKIM, through `digest send` to a
real SMTP server (aiosmtpd on 127.0.0.1, with a certificate of a CA made by the test)."""

from __future__ import annotations

import base64
import email
import email.policy
import ssl
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import dkim
import pytest
from conftest import CliResult, write_subscribers
from smtp_server import SMTPTestServer
from tls_certs import ServerCertificates, make_certificates

from digest.verp import MAX_LOCAL_PART, verp_address

SEND = ("send", "content/2026-03.yaml", "--subscribers", "subscribers.csv", "--yes")


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> ServerCertificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


def server_context(certificates: ServerCertificates) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates.cert_file, certificates.key_file)
    return context


@pytest.fixture
def tls_server(certificates: ServerCertificates) -> Iterator[SMTPTestServer]:
    with SMTPTestServer(tls=server_context(certificates), implicit_tls=True) as server:
        yield server


@pytest.fixture
def starttls_server(certificates: ServerCertificates) -> Iterator[SMTPTestServer]:
    with SMTPTestServer(tls=server_context(certificates)) as server:
        yield server


@pytest.fixture
def ready(tmp_path: Path, edition_file: Path) -> Path:
    write_subscribers(tmp_path / "subscribers.csv", 3)
    return tmp_path


def env_for(server: SMTPTestServer, send_env: dict[str, str], **extra: str) -> dict[str, str]:
    return {**send_env, **server.env(), **extra}


# -- the envelope sender --------------------------------------------------------------------


def test_the_envelope_sender_is_the_bounce_address(
    ready: Path, smtp_server: SMTPTestServer, send_env: dict[str, str], run_digest: Callable
) -> None:
    result = run_digest(*SEND, env=env_for(smtp_server, send_env))
    assert result.exit_code == 0, result.output
    # Without DIGEST_BOUNCE_ADDRESS: the address of DIGEST_FROM, as before.
    assert {m.mail_from for m in smtp_server.messages} == {"clippings@example.org"}

    smtp_server.handler.messages.clear()
    env = env_for(smtp_server, send_env, DIGEST_BOUNCE_ADDRESS="bounces@example.org")
    other_state = {**env, "DIGEST_STATE_DIR": str(ready / "other-state")}
    assert run_digest(*SEND, env=other_state).exit_code == 0
    messages = smtp_server.messages
    assert len(messages) == 3
    assert {m.mail_from for m in messages} == {"bounces@example.org"}
    # The From header stays the newsletter's.
    assert all(
        m.message["From"].addresses[0].addr_spec == "clippings@example.org" for m in messages
    )


def test_verp_gives_each_recipient_its_own_signed_envelope_sender(
    ready: Path, smtp_server: SMTPTestServer, send_env: dict[str, str], run_digest: Callable
) -> None:
    env = env_for(
        smtp_server, send_env, DIGEST_BOUNCE_ADDRESS="bounces@example.org", DIGEST_VERP="yes"
    )
    result = run_digest(*SEND, env=env)
    assert result.exit_code == 0, result.output
    senders = {m.rcpt_tos[0]: m.mail_from for m in smtp_server.messages}
    assert len(set(senders.values())) == 3
    for recipient, sender in senders.items():
        local, domain = sender.split("@")
        assert domain == "example.org"
        assert local.startswith("bounces+2026-03.") and len(local) <= MAX_LOCAL_PART
        assert recipient not in sender  # the address is not shown
        assert sender == verp_address(send_env["DIGEST_SECRET"], "bounces@example.org",
                                      recipient, "2026-03")  # fmt: skip


def test_verp_keeps_the_local_part_within_64_octets(
    ready: Path, smtp_server: SMTPTestServer, send_env: dict[str, str], run_digest: Callable
) -> None:
    long_local = "b" * 45
    sender = verp_address("s" * 32, f"{long_local}@example.org", "ada@example.org", "2026-03")
    local = sender.split("@")[0]
    assert len(local) <= MAX_LOCAL_PART and local.startswith(long_local + "+")
    assert "2026-03" not in local  # the slug did not fit: left out, the tag stays
    # A bounce address with no room for the tag is refused before anything is sent.
    env = env_for(
        smtp_server, send_env, DIGEST_VERP="yes", DIGEST_BOUNCE_ADDRESS=f"{'b' * 50}@example.org"
    )
    result = run_digest(*SEND, env=env)
    assert result.exit_code == 1 and "set a shorter DIGEST_BOUNCE_ADDRESS" in result.output
    assert smtp_server.messages == []


def test_verp_without_a_secret_and_bad_settings_are_named_before_sending(
    ready: Path, smtp_server: SMTPTestServer, send_env: dict[str, str], run_digest: Callable
) -> None:
    env = env_for(
        smtp_server,
        send_env,
        DIGEST_VERP="maybe",
        DIGEST_BOUNCE_ADDRESS="not an address",
        SMTP_CA_FILE=str(ready / "missing-ca.pem"),
        SMTP_HELO_NAME="bad name!",
        DKIM_DOMAIN="example.org",
    )
    result = run_digest("validate", "content/2026-03.yaml", "--subscribers", "subscribers.csv",
                        env=env)  # fmt: skip
    assert result.exit_code == 1
    for expected in (
        "DIGEST_VERP must be yes or no",
        "DIGEST_BOUNCE_ADDRESS is not an email address",
        "SMTP_CA_FILE",
        "missing-ca.pem",
        "SMTP_HELO_NAME must be a host name",
        "missing: DKIM_SELECTOR, DKIM_PRIVATE_KEY_FILE",
    ):
        assert expected in result.output
    assert run_digest(*SEND, env=env).exit_code == 1
    assert smtp_server.messages == []


# -- TLS trust ------------------------------------------------------------------------------


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_an_unverified_certificate_is_exit_1_naming_smtp_ca_file(
    security: str,
    ready: Path,
    request: pytest.FixtureRequest,
    send_env: dict[str, str],
    run_digest: Callable,
) -> None:
    server: SMTPTestServer = request.getfixturevalue(f"{security}_server")
    env = env_for(server, send_env, SMTP_SECURITY=security)
    result = run_digest(*SEND, env=env)
    assert result.exit_code == 1, result.output
    assert "does not verify" in result.stderr
    assert "add its CA with SMTP_CA_FILE" in result.stderr
    assert server.messages == []


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_smtp_ca_file_trusts_a_private_ca(
    security: str,
    ready: Path,
    request: pytest.FixtureRequest,
    certificates: ServerCertificates,
    send_env: dict[str, str],
    run_digest: Callable,
) -> None:
    server: SMTPTestServer = request.getfixturevalue(f"{security}_server")
    env = env_for(server, send_env, SMTP_SECURITY=security, SMTP_CA_FILE=str(certificates.ca_file))
    result = run_digest(*SEND, env=env)
    assert result.exit_code == 0, result.output
    assert len(server.messages) == 3


def test_ssl_cert_file_in_dot_env_is_honoured(
    ready: Path,
    starttls_server: SMTPTestServer,
    certificates: ServerCertificates,
    send_env: dict[str, str],
    run_digest: Callable,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The real environment wins over .env; this machine's may name the system's CA bundle.
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    (ready / ".env").write_text(f"SSL_CERT_FILE={certificates.ca_file}\n")
    env = env_for(starttls_server, send_env, SMTP_SECURITY="starttls")
    result = run_digest(*SEND, env=env)
    assert result.exit_code == 0, result.output
    assert len(starttls_server.messages) == 3


def test_a_broken_ssl_cert_file_matters_only_to_a_tls_connection(
    ready: Path,
    smtp_server: SMTPTestServer,
    starttls_server: SMTPTestServer,
    send_env: dict[str, str],
    run_digest: Callable,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """OpenSSL's SSL_CERT_FILE is read only for a connection that uses TLS: a local server
    over SMTP_SECURITY=none sends; STARTTLS is refused before anything is sent, naming it."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    (ready / ".env").write_text(f"SSL_CERT_FILE={ready / 'no-such-bundle.pem'}\n")

    plain = run_digest(*SEND, env=env_for(smtp_server, send_env))
    assert plain.exit_code == 0, plain.output
    assert len(smtp_server.messages) == 3

    tls = run_digest(*SEND, env=env_for(starttls_server, send_env, SMTP_SECURITY="starttls"))
    assert tls.exit_code == 1
    assert "SSL_CERT_FILE" in tls.stderr and "no-such-bundle.pem" in tls.stderr
    assert starttls_server.messages == []


def test_the_helo_name_is_sent_before_and_again_after_starttls(
    ready: Path,
    starttls_server: SMTPTestServer,
    certificates: ServerCertificates,
    send_env: dict[str, str],
    run_digest: Callable,
) -> None:
    env = env_for(
        starttls_server,
        send_env,
        SMTP_SECURITY="starttls",
        SMTP_CA_FILE=str(certificates.ca_file),
        SMTP_HELO_NAME="sender.example.org",
    )
    assert run_digest(*SEND, env=env).exit_code == 0
    names = starttls_server.handler.ehlo_names
    assert ("sender.example.org", False) in names and ("sender.example.org", True) in names
    assert {name for name, _ in names} == {"sender.example.org"}


def test_a_username_for_a_server_without_auth_is_exit_1_saying_so(
    ready: Path, smtp_server: SMTPTestServer, send_env: dict[str, str], run_digest: Callable
) -> None:
    env = env_for(smtp_server, send_env, SMTP_USERNAME="curator", SMTP_PASSWORD="pass-word-123")
    result = run_digest(*SEND, env=env)
    assert result.exit_code == 1, result.output
    assert "does not offer AUTH, but SMTP_USERNAME is set" in result.stderr
    assert "cannot reach" not in result.output
    assert "pass-word-123" not in result.output
    assert smtp_server.messages == []


# -- DKIM -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dkim_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """An RSA key file and the DNS TXT record that publishes its public half."""
    folder = tmp_path_factory.mktemp("dkim")
    key = folder / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True,
                   capture_output=True)  # fmt: skip
    public = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    return key, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def dkim_env(dkim_key: tuple[Path, bytes]) -> dict[str, str]:
    return {
        "DKIM_DOMAIN": "example.org",
        "DKIM_SELECTOR": "news2026",
        "DKIM_PRIVATE_KEY_FILE": str(dkim_key[0]),
    }


def verifies(data: bytes, record: bytes) -> bool:
    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"news2026._domainkey.example.org."
        return record

    return bool(dkim.verify(data, dnsfunc=dns))


def test_every_smtp_message_is_dkim_signed_and_verifies(
    ready: Path,
    smtp_server: SMTPTestServer,
    send_env: dict[str, str],
    dkim_key: tuple[Path, bytes],
    run_digest: Callable,
) -> None:
    result = run_digest(*SEND, env=env_for(smtp_server, send_env, **dkim_env(dkim_key)))
    assert result.exit_code == 0, result.output
    assert len(smtp_server.messages) == 3
    for received in smtp_server.messages:
        assert verifies(received.data, dkim_key[1])
        signature = email.message_from_bytes(received.data, policy=email.policy.compat32)[
            "DKIM-Signature"
        ]
        fields = signature.replace("\r\n", "").replace("\n", "").replace(" ", "").replace("\t", "")
        assert "c=relaxed/relaxed" in fields and "a=rsa-sha256" in fields
        signed = fields.split(";h=")[1].split(";")[0].lower().split(":")
        assert {"from", "to", "subject", "list-unsubscribe", "list-unsubscribe-post"} <= set(signed)
        # A changed body no longer verifies: the signature covers what was sent.
        assert not verifies(received.data.replace(b"Hello", b"Hullo", 1), dkim_key[1])
        # What relays do (a header added on top, a header refolded) does not break it.
        relayed = b"Received: from a by b; Tue, 31 Mar 2026 09:00:00 +0000\r\n" + (
            received.data.replace(b"Subject: Clippings,", b"Subject:   Clippings,\r\n\t", 1)
        )
        assert verifies(relayed, dkim_key[1])


def test_outbox_messages_are_dkim_signed_too(
    ready: Path, send_env: dict[str, str], dkim_key: tuple[Path, bytes], run_digest: Callable
) -> None:
    result = run_digest(*SEND, "--dry-run", env={**send_env, **dkim_env(dkim_key)})
    assert result.exit_code == 0, result.output
    files = sorted((ready / "outbox" / "2026-03").glob("*.eml"))
    assert len(files) == 3
    assert all(verifies(path.read_bytes(), dkim_key[1]) for path in files)


def test_an_ed25519_key_signs_ed25519_sha256(
    ready: Path, send_env: dict[str, str], run_digest: Callable
) -> None:
    key = ready / "ed25519.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(key)], check=True)
    spki = subprocess.run(
        ["openssl", "pkey", "-in", str(key), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    record = b"v=DKIM1; k=ed25519; p=" + base64.b64encode(spki[-32:])
    env = {**send_env, "DKIM_DOMAIN": "example.org", "DKIM_SELECTOR": "news2026",
           "DKIM_PRIVATE_KEY_FILE": str(key)}  # fmt: skip
    result = run_digest(*SEND, "--dry-run", env=env)
    assert result.exit_code == 0, result.output
    files = sorted((ready / "outbox" / "2026-03").glob("*.eml"))
    assert len(files) == 3
    for path in files:
        data = path.read_bytes()
        assert b"a=ed25519-sha256" in data
        assert verifies(data, record)


def test_a_key_that_is_no_key_is_named(
    ready: Path, send_env: dict[str, str], run_digest: Callable
) -> None:
    (ready / "not-a-key.pem").write_text("-----BEGIN PRIVATE KEY-----\nnonsense\n")
    env = {
        **send_env,
        "DKIM_DOMAIN": "example.org",
        "DKIM_SELECTOR": "s1",
        "DKIM_PRIVATE_KEY_FILE": str(ready / "not-a-key.pem"),
    }
    result: CliResult = run_digest(*SEND, "--dry-run", env=env)
    assert result.exit_code == 1
    assert "DKIM_PRIVATE_KEY_FILE" in result.output and "not-a-key.pem" in result.output


# -- staging on reserved domains ----------------------------------------------------------------

STAGING_READERS = ["ada@example.test", "bob@box.local", "carol@x.invalid", "dave@y.localhost"]


def test_reserved_domains_pass_only_with_digest_allow_reserved_domains(
    tmp_path: Path,
    edition_file: Path,
    smtp_server: SMTPTestServer,
    send_env: dict[str, str],
    run_digest: Callable,
) -> None:
    (tmp_path / "subscribers.csv").write_text("email\n" + "\n".join(STAGING_READERS) + "\n")
    env = env_for(smtp_server, send_env, DIGEST_FROM="Staging <news@staging.test>")
    refused = run_digest(*SEND, env=env)
    assert refused.exit_code == 1
    assert "DIGEST_FROM" in refused.output and smtp_server.messages == []

    allowed = run_digest(*SEND, env={**env, "DIGEST_ALLOW_RESERVED_DOMAINS": "yes"})
    assert allowed.exit_code == 0, allowed.output
    assert sorted(smtp_server.recipients()) == sorted(STAGING_READERS)
    assert {m.mail_from for m in smtp_server.messages} == {"news@staging.test"}

    # The next command without the setting refuses them again (nothing sticks in the process).
    again = run_digest("validate", "content/2026-03.yaml", "--subscribers", "subscribers.csv",
                       "--strict", env=env)  # fmt: skip
    assert again.exit_code == 1 and "ada@example.test" in again.output
