"""One test per finding of the second security test (issue 15), each reproducing it as reported.

SECURITY.md lists them. Real parts throughout: the endpoint under uvicorn on 127.0.0.1, the CLI
as a curator types it, files on disk.
"""

from __future__ import annotations

import base64
import csv
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from conftest import CliResult
from smtp_server import SMTPTestServer
from test_cli_lifecycle import clean_environ
from test_tokens import v1_token
from test_unsubscribe_app import ONE_CLICK, SECRET, serving, settings_for

from digest.audience.subscribers import SubscriberReport, read_subscribers
from digest.audience.suppressions import SuppressionStore
from digest.errors import SubscribersError
from digest.ledger import Ledger
from digest.state import edition_lock
from digest.tokens import address_fingerprint, make_token, verify_token
from digest.unsubscribe_app import create_app

RunDigest = Callable[..., CliResult]
FORMULAS = ("=1+1@example.org", '=HYPERLINK("https://evil.example","x")@x.org', "+SUM(1;2)@x.org")


# -- low: spreadsheet formula injection --------------------------------------------------------


def test_formula_addresses_are_refused_at_validation(tmp_path: Path) -> None:
    rows = "=1+1@example.org,Eve\n+SUM(1;2)@x.org,Eve\n-x@example.org,Eve\n@x@example.org,Eve\n"
    path = tmp_path / "subscribers.csv"
    path.write_text("email,name\nada@example.org,Ada\nbob@example.org,Bob\n" + rows)
    report = SubscriberReport(path=str(path))
    try:
        addresses = [s.email for s in read_subscribers(path, report)]
    except SubscribersError as exc:  # pragma: no cover - two rows are valid
        raise AssertionError(exc.problems) from exc
    assert addresses == ["ada@example.org", "bob@example.org"]
    problems = {p.line: p for p in report.problems}
    assert sorted(problems) == [4, 5, 6, 7]
    for problem in problems.values():
        assert problem.field == "email"
        assert "RFC 5321 allows but no real reader's address does" in problem.message
        assert "spreadsheet" in problem.message


def test_exported_suppressions_never_hold_a_live_formula(
    tmp_path: Path, run_digest: RunDigest
) -> None:
    # The address reached the list before the rule above (or through a token made for it): one
    # click unsubscribes it, and the export must still be inert in a spreadsheet.
    settings = settings_for(tmp_path)
    with serving(create_app(settings)) as base, httpx.Client(base_url=base) as client:
        for address in FORMULAS:
            token = make_token(SECRET, address, "2026-03")
            assert client.post(f"/u/{token}", data=ONE_CLICK).status_code == 200
    export = tmp_path / "suppressed.csv"
    env = {"DIGEST_STATE_DIR": str(settings.state_dir)}
    result = run_digest("suppressions", "export", "--out", str(export), env=env)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(export.open(encoding="utf-8", newline="")))
    assert sorted(r["email"] for r in rows) == sorted("'" + a for a in FORMULAS)
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), row


# -- info: a redirect to the client's Host, no no-store on errors ------------------------------


def test_no_path_or_method_answers_with_a_redirect_and_every_answer_is_no_store(
    tmp_path: Path,
) -> None:
    token = make_token(SECRET, "ada@example.org", "2026-03")
    paths = [
        f"/u/{token}/",
        f"/u/{token}//",
        f"/u/{token}/x",
        "/u/",
        "/u",
        "/",
        "//evil.example",
        f"/u/{token}",
        "/U/x",
        "/u/%2e%2e/",
        "/favicon.ico",
    ]
    methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]
    settings = settings_for(tmp_path)
    answers = 0
    with serving(create_app(settings)) as base, httpx.Client(base_url=base) as client:
        for path in paths:
            for method in methods:
                response = client.request(
                    method, path, headers={"Host": "evil.example"}, data=ONE_CLICK
                )
                answers += 1
                assert not 300 <= response.status_code < 400, (method, path)
                assert "location" not in response.headers, (method, path)
                assert response.headers.get("cache-control") == "no-store", (method, path)
                assert response.headers.get("referrer-policy") == "no-referrer", (method, path)
        # The reported request exactly: POST /unsubscribe/<token>/ with a foreign Host.
        response = client.post(f"/u/{token}/", headers={"Host": "evil.example"}, data=ONE_CLICK)
        assert response.status_code == 404 and "evil.example" not in response.text
    assert answers == len(paths) * len(methods)
    # Only the one exact POST unsubscribed anyone.
    with SuppressionStore(settings.state_dir) as store:
        assert [s.address for s in store.iter()] == ["ada@example.org"]


# -- info: the documented log line was never written -------------------------------------------


def test_one_log_line_per_new_unsubscribe_without_the_address(tmp_path: Path) -> None:
    environ = clean_environ() | {
        "DIGEST_SECRET": SECRET,
        "DIGEST_UNSUBSCRIBE_URL": "https://news.example.org/u/{token}",
        "DIGEST_STATE_DIR": str(tmp_path / "state"),
        "PYTHONUNBUFFERED": "1",
    }
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "digest"), "serve-unsubscribe", "--port", "0"],
        cwd=tmp_path,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    addresses = [f"reader{n}@example.org" for n in range(5)]
    try:
        assert server.stdout is not None
        match = re.match(
            r"Unsubscribe endpoint: (http://127\.0\.0\.1:\d+)/", server.stdout.readline()
        )
        assert match
        with httpx.Client(base_url=match.group(1), timeout=5) as client:
            for _ in range(100):  # uvicorn may still be starting
                try:
                    client.get("/")
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
            for address in [*addresses, addresses[0], addresses[1]]:  # two already unsubscribed
                token = make_token(SECRET, address, "2026-03")
                assert client.post(f"/u/{token}", data=ONE_CLICK).status_code == 200
    finally:
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=10)
    lines = [line for line in err.splitlines() if "unsubscribed" in line]
    assert len(lines) == len(addresses), err
    fingerprints = {address_fingerprint(SECRET, a) for a in addresses}
    assert {re.search(r"addr-[0-9a-f]{16}", line).group() for line in lines} == fingerprints  # type: ignore[union-attr]
    assert all("edition 2026-03" in line for line in lines)
    assert not any(a in err or a.split("@")[0] in err for a in addresses)


# -- low: planted symbolic links followed by the outbox and the lock owner file ----------------


def test_a_planted_link_in_the_outbox_is_not_followed(
    tmp_path: Path, run_digest: RunDigest, send_env: dict[str, str], edition_file: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    outbox = tmp_path / "outbox" / "2026-03"
    outbox.mkdir(parents=True)
    (outbox / ".000001-x@example.org.eml.tmp").symlink_to(victim)
    (tmp_path / "subscribers.csv").write_text("email\nx@example.org\n")
    env = {**send_env, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": "9", "SMTP_SECURITY": "none"}
    result = run_digest(
        "send", "content/2026-03.yaml", "--subscribers", "subscribers.csv", "--dry-run", env=env
    )
    assert result.exit_code == 0, result.output
    assert victim.read_text() == "precious\n"
    written = outbox / "000001-x@example.org.eml"
    assert written.is_file() and not written.is_symlink()
    assert b"To: x@example.org" in written.read_bytes()


def test_a_planted_link_at_the_lock_owner_file_is_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    state = tmp_path / "state"
    (state / "locks").mkdir(parents=True)
    owner = state / "locks" / "2026-03.owner"
    owner.symlink_to(victim)
    with edition_lock(state, "2026-03"):
        assert not owner.is_symlink()
        assert json.loads(owner.read_text())["pid"] == os.getpid()
        assert stat.S_IMODE(owner.stat().st_mode) == 0o600
    assert victim.read_text() == "precious\n"


# -- low: state and outbox readable by everyone under umask 022 ---------------------------------


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_state_and_outbox_files_are_private_whatever_the_umask(
    tmp_path: Path,
    run_digest: RunDigest,
    send_env: dict[str, str],
    edition_file: Path,
    smtp_server: SMTPTestServer,
    umask_022: None,
) -> None:
    (tmp_path / "subscribers.csv").write_text("email\nada@example.org\nbob@example.org\n")
    env = {**send_env, **smtp_server.env()}
    send = ("send", "content/2026-03.yaml", "--subscribers", "subscribers.csv")
    assert run_digest(*send, "--yes", env=env).exit_code == 0
    assert run_digest(*send, "--dry-run", env=env).exit_code == 0
    assert run_digest("suppressions", "add", "eve@example.org", env=env).exit_code == 0
    export = run_digest("suppressions", "export", "--out", "suppressed.csv", env=env)
    assert export.exit_code == 0, export.output
    state = Path(send_env["DIGEST_STATE_DIR"])
    assert mode(state) == 0o700
    assert mode(state / "locks") == 0o700
    assert mode(state / "digest.sqlite3") == 0o600
    with SuppressionStore(state), Ledger(state):  # -wal and -shm exist while a connection is open
        for suffix in ("-wal", "-shm"):
            assert mode(state / f"digest.sqlite3{suffix}") == 0o600, suffix
    for path in state.rglob("*"):
        assert mode(path) in (0o600, 0o700), path
    outbox = tmp_path / "outbox" / "2026-03"
    assert mode(outbox) == 0o700
    emls = list(outbox.glob("*.eml"))
    assert len(emls) == 2 and all(mode(p) == 0o600 for p in emls)
    assert mode(tmp_path / "suppressed.csv") == 0o600
    # Build output is meant to be published: readable, still written atomically.
    assert run_digest("build", "content/2026-03.yaml", env=env).exit_code == 0
    assert {mode(p) for p in (tmp_path / "dist").rglob("*.*")} == {0o644}


# -- info: every unsubscribe link showed the reader's address ----------------------------------


def link_of(received_message: EmailMessage) -> str:
    header = str(received_message["List-Unsubscribe"])
    match = re.search(r"<(https://[^>]+)>", header)
    assert match, header
    return match.group(1)


def test_links_do_not_show_the_address_and_still_unsubscribe(
    tmp_path: Path,
    run_digest: RunDigest,
    send_env: dict[str, str],
    edition_file: Path,
    smtp_server: SMTPTestServer,
) -> None:
    (tmp_path / "subscribers.csv").write_text("email\nada.lovelace@example.org\nbob@example.org\n")
    env = {**send_env, **smtp_server.env(), "DIGEST_SECRET": SECRET}
    sent = run_digest(
        "send", "content/2026-03.yaml", "--subscribers", "subscribers.csv", "--yes", env=env
    )
    assert sent.exit_code == 0, sent.output
    links = {r.rcpt_tos[0]: link_of(r.message) for r in smtp_server.messages}
    for address, link in links.items():
        token = link.rsplit("/", 1)[1]
        readable = base64.urlsafe_b64decode(token[3:] + "=" * (-len(token[3:]) % 4))
        for part in (address, address.split("@")[0], "lovelace", "example"):
            assert part not in token and part.encode() not in readable, (part, link)
        assert len(link) < 120
    settings = settings_for(tmp_path)
    legacy = v1_token(SECRET, "carol@example.org", "2026-02")  # a link mailed before v2
    with serving(create_app(settings)) as base, httpx.Client(base_url=base) as client:
        token = links["ada.lovelace@example.org"].rsplit("/", 1)[1]
        assert client.post(f"/u/{token}", data=ONE_CLICK).status_code == 200
        assert client.post(f"/u/{legacy}", data=ONE_CLICK).status_code == 200
    with SuppressionStore(settings.state_dir) as store:
        assert sorted(s.address for s in store.iter()) == [
            "ada.lovelace@example.org",
            "carol@example.org",
        ]


def test_the_link_of_a_test_proof_unsubscribes_no_one(
    tmp_path: Path,
    run_digest: RunDigest,
    send_env: dict[str, str],
    edition_file: Path,
    smtp_server: SMTPTestServer,
) -> None:
    (tmp_path / "subscribers.csv").write_text("email\nada@example.org\n")
    env = {**send_env, **smtp_server.env(), "DIGEST_SECRET": SECRET}
    proof = run_digest(
        "send",
        "content/2026-03.yaml",
        "--subscribers",
        "subscribers.csv",
        "--test",
        "me@example.org",
        env=env,
    )
    assert proof.exit_code == 0, proof.output
    (received,) = smtp_server.messages
    token = link_of(received.message).rsplit("/", 1)[1]
    assert verify_token(SECRET, token).proof
    settings = settings_for(tmp_path)
    with serving(create_app(settings)) as base, httpx.Client(base_url=base) as client:
        page = client.get(f"/u/{token}")
        posted = client.post(f"/u/{token}", data=ONE_CLICK)
    for response in (page, posted):
        assert response.status_code == 200
        assert "test copy" in response.text and "Nobody was unsubscribed" in response.text
        assert "<form" not in response.text
    with SuppressionStore(settings.state_dir) as store:
        assert store.count() == 0
    # The curator pasting the proof's link into `digest unsubscribe` changes nothing either.
    pasted = run_digest("unsubscribe", link_of(received.message), env=env)
    assert pasted.exit_code == 0 and "nobody unsubscribed" in pasted.stdout
    with SuppressionStore(Path(send_env["DIGEST_STATE_DIR"])) as store:
        assert store.count() == 0
