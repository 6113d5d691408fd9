"""Secrets never leak: SMTP_PASSWORD, MAILGUN_API_KEY and DIGEST_SECRET set to distinctive values,
every command a curator runs (validate, build, send --dry-run, a send to an SMTP server that
refuses the login and echoes the password, a send to a Mailgun that answers 401 echoing the key,
status, suppressions export), then a grep of every output and every file written (outbox, dist,
the state folder's SQLite bytes) finds none of them, in clear, UTF-16 or base64.

Also: no SMTP login in clear text to anything but this machine, and unsubscribe tokens that
cannot be forged or moved to another address or edition.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from conftest import CliResult, write_subscribers
from faults.audit import files_holding, texts_holding
from faults.conftest import DIGEST_SECRET, MAILGUN_API_KEY, SECRETS, SMTP_PASSWORD
from hypothesis import given, settings
from hypothesis import strategies as st
from mailgun_server import MailgunServer
from smtp_server import SMTPTestServer
from test_tokens import v1_token
from werkzeug import Request, Response

from digest.settings import load_settings
from digest.tokens import InvalidToken, make_token, verify_token

EDITION = "content/2026-03.yaml"
USERNAME = "curator"


class EchoingAuthServer(SMTPTestServer):
    """Refuses every login with a reply quoting the credentials, as some servers do: in clear,
    as the AUTH PLAIN base64, hex-dumped, URL-encoded both ways and upper-cased."""

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        password = data.password.decode() if isinstance(data, LoginPassword) else "?"
        blob = base64.b64encode(f"\0{USERNAME}\0{password}".encode()).decode()
        return AuthResult(
            success=False,
            handled=False,
            message=(
                f"535 5.7.8 Authentication failed for {USERNAME}/{password} ({blob}) "
                f"hex={password.encode().hex()} url={quote(password, safe='')} "
                f"form={quote_plus(password)} upper={password.upper()}"
            ),
        )


class EchoingMailgun(MailgunServer):
    """Answers 401 quoting the key it was given, and its Basic auth header."""

    asked: int = 0

    def _dispatch(self, request: Request) -> Response:
        self.asked += 1
        given_key = request.authorization.password if request.authorization else ""
        header = request.headers.get("Authorization", "")
        if request.method == "POST":
            return Response(f"Forbidden: API key {given_key} rejected ({header})", status=401)
        return Response(f'{{"message": "invalid key {given_key} ({header})"}}', status=401)


def plain_blob(password: str) -> str:
    return base64.b64encode(f"\0{USERNAME}\0{password}".encode()).decode()


def test_no_command_leaks_a_secret_in_output_or_files(
    tmp_path: Path, edition_file: Path, send_env: dict[str, str], run_digest: Any
) -> None:
    write_subscribers(tmp_path / "subscribers.csv", 5)
    results: list[CliResult] = []
    with (
        EchoingAuthServer(credentials=(USERNAME, "unused")) as smtp,
        EchoingMailgun(api_key="the-right-key", domain="mg.example.org") as mailgun,
    ):
        env = {
            **send_env,
            **smtp.env(),
            "DIGEST_SECRET": DIGEST_SECRET,
            "SMTP_USERNAME": USERNAME,
            "SMTP_PASSWORD": SMTP_PASSWORD,
            "MAILGUN_API_KEY": MAILGUN_API_KEY,
            "MAILGUN_DOMAIN": "mg.example.org",
            "MAILGUN_API_URL": mailgun.api_url,
        }
        subscribers = ("--subscribers", "subscribers.csv")

        def run(*args: str, expect: int) -> CliResult:
            result = run_digest(*args, env=env)
            assert result.exit_code == expect, (args, result.output)
            assert "Traceback" not in result.output
            results.append(result)
            return result

        run("validate", EDITION, *subscribers, expect=0)
        run("build", EDITION, expect=0)
        run("send", EDITION, *subscribers, "--dry-run", expect=0)
        refused = run("send", EDITION, *subscribers, "--yes", expect=1)
        assert "refused the login" in refused.stderr  # the server's reply is shown, scrubbed
        run("send", EDITION, *subscribers, "--yes", "--backend", "mailgun", expect=1)
        run("status", EDITION, expect=0)
        run("status", "2026-03", "--json", expect=0)
        run("suppressions", "export", "--out", "suppressions.csv", expect=0)
        run("suppressions", "export", expect=0)
        assert mailgun.asked >= 2, "Mailgun was really asked (suppressions, then messages)"

    outputs = [result.output for result in results]
    leaked = texts_holding([*SECRETS, plain_blob(SMTP_PASSWORD)], outputs)
    assert not leaked, [
        line for o in outputs for line in o.splitlines() if any(s in line for s in leaked)
    ]
    written = [tmp_path / "outbox", tmp_path / "dist", tmp_path / ".digest"]
    written.append(tmp_path / "suppressions.csv")
    assert list((tmp_path / "outbox").rglob("*.eml")) and (tmp_path / ".digest").is_dir()
    assert not files_holding([*SECRETS, plain_blob(SMTP_PASSWORD)], written)


def test_no_login_in_clear_text_except_to_this_machine(
    tmp_path: Path, edition_file: Path, send_env: dict[str, str], run_digest: Any
) -> None:
    write_subscribers(tmp_path / "subscribers.csv", 3)
    credentials = {"SMTP_USERNAME": USERNAME, "SMTP_PASSWORD": SMTP_PASSWORD}
    args = ("send", EDITION, "--subscribers", "subscribers.csv", "--yes")
    # 127.0.0.2 is this machine too, but not a name digest trusts: it stands for a remote host.
    remote = SMTPTestServer(credentials=(USERNAME, SMTP_PASSWORD))
    remote.host = "127.0.0.2"
    with remote:
        env = {**send_env, **remote.env(), **credentials}
        refused = run_digest(*args, env=env)
        checked = run_digest("validate", EDITION, "--subscribers", "subscribers.csv", env=env)
        assert remote.connections == 0, "the password must not even start on its way"
    assert refused.exit_code == 1
    assert "refusing to send the SMTP password unencrypted" in refused.stderr
    assert checked.exit_code == 1 and "unencrypted" in checked.stderr

    with SMTPTestServer(credentials=(USERNAME, SMTP_PASSWORD)) as local:
        sent = run_digest(*args, env={**send_env, **local.env(), **credentials})
        assert sent.exit_code == 0, sent.output
        assert set(local.logins) == {USERNAME} and len(local.messages) == 3


addresses = st.emails() | st.text(min_size=1, max_size=40).filter(lambda s: "\n" not in s)
slugs = st.from_regex(r"[a-z0-9][a-z0-9-]{0,20}", fullmatch=True)
secrets = st.text(min_size=1, max_size=40)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(secret=secrets, address=addresses, slug=slugs, data=st.data())
def test_tokens_cannot_be_forged_or_moved(secret: str, address: str, slug: str, data: Any) -> None:
    token = make_token(secret, address, slug)
    assert verify_token(secret, token) == (address, slug)

    # Another address or edition: its own token differs, and this one keeps its claims.
    other_address = data.draw(addresses.filter(lambda a: a != address))
    other_slug = data.draw(slugs.filter(lambda s: s != slug))
    assert make_token(secret, other_address, slug) != token
    assert make_token(secret, address, other_slug) != token

    # Moving (v1, as mailed before): this token's signature on another payload.
    legacy = v1_token(secret, address, slug)
    assert verify_token(secret, legacy) == (address, slug)
    mac = legacy.split(".")[1]
    for moved in (v1_token(secret, other_address, slug), v1_token(secret, address, other_slug)):
        with pytest.raises(InvalidToken):
            verify_token(secret, f"{moved.split('.')[0]}.{mac}")
    # v2 hides the address: nothing of it shows in the token.
    if len(address) >= 4 and address.isascii() and address.isalnum():
        assert address.lower() not in token.lower()

    # Forging: any other secret, or any change to the token, is refused (a change that decodes
    # to the very same bytes, base64's spare bits, can only give back the same claims).
    other_secret = data.draw(secrets.filter(lambda s: s != secret))
    with pytest.raises(InvalidToken):
        verify_token(other_secret, token)
    position = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    replacement = data.draw(st.characters(codec="utf-8"))
    tampered = token[:position] + replacement + token[position + 1 :]
    try:
        claims = verify_token(secret, tampered)
    except InvalidToken:
        return
    assert claims == (address, slug)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.text(max_size=300))
def test_any_string_is_a_valid_token_or_invalid_token_never_a_crash(text: str) -> None:
    try:
        verify_token(DIGEST_SECRET, text)
    except InvalidToken:
        pass
    else:
        pytest.fail(f"{text!r} verified without being signed")


def test_settings_scrub_hides_every_secret_and_the_forms_credentials_travel_in() -> None:
    configured = load_settings(
        {
            "DIGEST_SECRET": "signing-secret-1",
            "SMTP_USERNAME": "mailer",
            "SMTP_PASSWORD": "pw-9d8c7b",
            "MAILGUN_API_KEY": "key-0a1b2c3d",
        },
        env_file=None,
    )

    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    echoed = [
        "signing-secret-1",
        "pw-9d8c7b",
        "key-0a1b2c3d",
        b64("pw-9d8c7b"),  # AUTH LOGIN
        b64("\0mailer\0pw-9d8c7b"),  # AUTH PLAIN
        b64("api:key-0a1b2c3d"),  # Mailgun's Basic auth header
        b"pw-9d8c7b".hex(),
        b"pw-9d8c7b".hex().upper(),
        "SIGNING-SECRET-1",
        "Key-0A1B2C3D",
    ]
    scrubbed = configured.scrub("server said: " + " | ".join(echoed))
    assert scrubbed == "server said: " + " | ".join(["***"] * len(echoed))
    assert load_settings({}, env_file=None).scrub("nothing secret") == "nothing secret"


def test_scrub_hides_url_encoded_forms_of_a_secret() -> None:
    password = "pw/9d 8c+7b!é"
    configured = load_settings({"SMTP_PASSWORD": password}, env_file=None)
    echoed = [
        quote(password),  # "/" kept
        quote(password, safe=""),
        quote_plus(password),
        quote(password, safe="").lower(),  # %2f instead of %2F
        password.upper(),
    ]
    assert len(set(echoed)) == len(echoed)
    scrubbed = configured.scrub("535 " + " | ".join(echoed))
    assert scrubbed == "535 " + " | ".join(["***"] * len(echoed))
