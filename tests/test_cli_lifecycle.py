"""The lifecycle commands as a curator types them: suppressions, unsubscribe, bounces, serve."""

from __future__ import annotations

import csv
import io
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from digest.audience.subscribers import Subscriber
from digest.audience.suppressions import SuppressionStore
from digest.cli import cli
from digest.cli.output import run_guarded
from digest.ledger import Ledger
from digest.tokens import make_token
from digest.verp import verp_address

SECRET = "cli-test-secret-value-2a7f5c9e1b3d"
UNSUBSCRIBE_URL = "https://news.example.org/unsubscribe/{token}"


class Digest:
    """Runs ``digest ...`` in-process, as the installed script does, and captures its output."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
        self.monkeypatch = monkeypatch
        self.capsys = capsys

    def __call__(self, *args: str) -> tuple[int, str, str]:
        self.monkeypatch.setattr(sys, "argv", ["digest", *args])
        code = run_guarded(cli)
        captured = self.capsys.readouterr()
        assert "Traceback" not in captured.err
        assert SECRET not in captured.out + captured.err
        return code, captured.out, captured.err


def clean_environ() -> dict[str, str]:
    return {
        k: v for k, v in os.environ.items() if not k.startswith(("DIGEST_", "SMTP_", "MAILGUN_"))
    }


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("DIGEST_", "SMTP_", "MAILGUN_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DIGEST_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("DIGEST_SECRET", SECRET)
    monkeypatch.setenv("DIGEST_UNSUBSCRIBE_URL", UNSUBSCRIBE_URL)
    return tmp_path / "state"


@pytest.fixture
def digest(state: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> Digest:
    return Digest(monkeypatch, capsys)


def test_suppressions_list_add_remove_export_round_trip(
    digest: Digest, state: Path, tmp_path: Path
) -> None:
    code, out, _ = digest("suppressions", "add", "Ada@Example.org", "--note", "asked by email")
    assert (code, out.strip()) == (0, "Suppressed Ada@Example.org (manual).")
    assert digest("suppressions", "add", "bob@example.org", "--reason", "bounced")[0] == 0
    code, out, _ = digest("suppressions", "add", "ada@example.org", "--reason", "complained")
    assert code == 0 and "already suppressed (manual" in out

    code, out, err = digest("suppressions", "list")
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 2
    assert re.search(r"manual\s+cli\s+Ada@Example.org\s+\(asked by email\)", out)
    assert "2 suppressed addresses (1 bounced, 1 manual in all)" in err
    code, out, _ = digest("suppressions", "list", "--reason", "bounced")
    assert [line.split()[-1] for line in out.strip().splitlines()] == ["bob@example.org"]

    export = tmp_path / "out" / "suppressed.csv"
    export.parent.mkdir()
    code, _, err = digest("suppressions", "export", "--out", str(export))
    assert code == 0 and "Wrote 2 suppressed addresses" in err
    rows = list(csv.DictReader(export.open(encoding="utf-8")))
    assert {(r["email"], r["status"], r["reason"], r["source"]) for r in rows} == {
        ("Ada@Example.org", "unsubscribed", "manual", "cli"),
        ("bob@example.org", "bounced", "bounced", "cli"),
    }
    assert list(export.parent.iterdir()) == [export]  # no temporary file left behind

    code, out, _ = digest("suppressions", "remove", "ADA@example.org")
    assert code == 0 and "Removed" in out
    code, _, err = digest("suppressions", "remove", "ada@example.org")
    assert code == 1 and "not suppressed" in err
    code, out, _ = digest("suppressions", "export")
    assert code == 0
    assert [r["email"] for r in csv.DictReader(io.StringIO(out))] == ["bob@example.org"]


def test_bad_input_is_a_message_not_a_traceback(digest: Digest) -> None:
    code, _, err = digest("suppressions", "add", "not-an-address")
    assert code == 1 and "not an email address" in err
    code, _, err = digest("suppressions", "add", "ada@example.org", "--reason", "annoyed")
    assert code == 2 and "annoyed" in err
    code, _, err = digest("suppressions", "add", "ada@example.org", "--note", "two\nlines")
    assert code == 2
    code, _, err = digest("unsubscribe", "neither-address-nor-token")
    assert code == 2 and "neither an email address nor an unsubscribe token" in err


def test_unsubscribe_by_address_token_and_link(digest: Digest, state: Path) -> None:
    assert digest("unsubscribe", "cy@example.org")[:2] == (0, "Unsubscribed cy@example.org.\n")
    token = make_token(SECRET, "ada@example.org", "2026-03")
    code, out, _ = digest("unsubscribe", token)
    assert (code, out.strip()) == (0, "Unsubscribed ada@example.org (edition 2026-03).")
    link = UNSUBSCRIBE_URL.replace("{token}", make_token(SECRET, "bob@example.org", "2026-02"))
    assert digest("unsubscribe", link)[0] == 0
    code, out, _ = digest("unsubscribe", token)
    assert code == 0 and "already suppressed" in out
    with SuppressionStore(state) as store:
        assert {(s.address, s.reason, s.slug) for s in store.iter()} == {
            ("cy@example.org", "unsubscribed", None),
            ("ada@example.org", "unsubscribed", "2026-03"),
            ("bob@example.org", "unsubscribed", "2026-02"),
        }


def test_unsubscribe_refuses_foreign_tokens_and_needs_the_secret(
    digest: Digest, state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    foreign = make_token("some-other-secret", "ada@example.org", "2026-03")
    code, _, err = digest("unsubscribe", foreign)
    assert code == 1 and "signature does not match" in err
    monkeypatch.delenv("DIGEST_SECRET")
    code, _, err = digest("unsubscribe", make_token(SECRET, "ada@example.org", "2026-03"))
    assert code == 1 and "DIGEST_SECRET" in err
    with SuppressionStore(state) as store:
        assert store.count() == 0


def test_bounces_import_prints_a_summary(digest: Digest, tmp_path: Path, state: Path) -> None:
    with Ledger(state) as ledger:
        sent = [Subscriber(a, "", {}, 2) for a in ("gone@example.net", "full@example.net")]
        ledger.enqueue("2026-03", sent)
        ledger.mark_sent("2026-03", [(s.email, None) for s in sent])
    # The report reached the VERP address made for gone@: it proves that block, not full@'s.
    verp = verp_address(SECRET, "bounces@example.org", "gone@example.net", "2026-03")
    mbox = tmp_path / "bounces.mbox"
    mbox.write_text(
        textwrap.dedent(
            """\
            From MAILER-DAEMON Tue Mar 31 09:05:00 2026
            From: Mail Delivery System <MAILER-DAEMON@mx.example.org>
            To: VERP_ADDRESS
            Subject: Undelivered Mail Returned to Sender
            Message-ID: <b1@mx.example.org>
            MIME-Version: 1.0
            Content-Type: multipart/report; report-type=delivery-status; boundary="B"

            --B
            Content-Type: text/plain

            Your message could not be delivered.
            --B
            Content-Type: message/delivery-status

            Reporting-MTA: dns; mx.example.org

            Final-Recipient: rfc822; gone@example.net
            Action: failed
            Status: 5.1.1

            Final-Recipient: rfc822; full@example.net
            Action: delayed
            Status: 4.2.2

            --B--

            From ada@example.net Tue Mar 31 10:00:00 2026
            From: Ada <ada@example.net>
            Subject: Re: Clippings

            Thanks!
            """
        ).replace("VERP_ADDRESS", verp)
    )
    code, out, _ = digest("bounces", "import", str(mbox), "--verbose")
    assert code == 0
    assert "bounced  gone@example.net" in out
    assert "2 messages, 1 delivery reports (0 already imported), 1 other messages skipped" in out
    assert "Hard bounces: 1 (1 newly suppressed). Soft bounces counted: 0." in out
    assert "Not ours: 0 reports, 1 recipient entries about no message this digest sent" in out
    code, _, err = digest("bounces", "import", str(tmp_path / "nowhere"))
    assert code == 1 and "no such mbox file or Maildir folder" in err


def test_suppressions_sync_from_mailgun(
    digest: Digest, monkeypatch: pytest.MonkeyPatch, state: Path
) -> None:
    mailgun_server = pytest.importorskip("mailgun_server")
    code, _, err = digest("suppressions", "sync")
    assert code == 1 and "MAILGUN_API_KEY" in err
    with mailgun_server.MailgunServer(api_key="key-cli", domain="mg.example.org") as server:
        server.add_suppressions("bounces", mailgun_server.sample_suppressions("bounces", 2))
        server.add_suppressions("complaints", mailgun_server.sample_suppressions("complaints", 1))
        monkeypatch.setenv("MAILGUN_API_KEY", "key-cli")
        monkeypatch.setenv("MAILGUN_DOMAIN", "mg.example.org")
        monkeypatch.setenv("MAILGUN_API_URL", server.api_url)
        code, out, err = digest("suppressions", "sync")
    assert code == 0, err
    assert "3 listed (0 unsubscribed, 2 bounced, 1 complained); 3 new" in out
    assert "key-cli" not in out + err


def test_serve_unsubscribe_needs_its_settings(
    digest: Digest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DIGEST_UNSUBSCRIBE_URL")
    code, _, err = digest("serve-unsubscribe", "--port", "0")
    assert code == 1 and "DIGEST_UNSUBSCRIBE_URL" in err


def test_serve_unsubscribe_runs_the_endpoint(tmp_path: Path) -> None:
    """The installed command, as a curator starts it: prints its URL, answers a one-click POST."""
    environ = clean_environ() | {
        "DIGEST_SECRET": SECRET,
        "DIGEST_UNSUBSCRIBE_URL": UNSUBSCRIBE_URL,
        "DIGEST_STATE_DIR": str(tmp_path / "state"),
        "PYTHONUNBUFFERED": "1",
    }
    script = Path(sys.executable).parent / "digest"
    server = subprocess.Popen(
        [str(script), "serve-unsubscribe", "--port", "0"],
        cwd=tmp_path,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        match = re.match(
            r"Unsubscribe endpoint: (http://127\.0\.0\.1:\d+)/unsubscribe/\{token\}", first
        )
        assert match, first
        token = make_token(SECRET, "ada@example.org", "2026-03")
        url = f"{match.group(1)}/unsubscribe/{token}"
        response = None
        for _ in range(100):  # the socket listens at once; uvicorn may still be starting
            try:
                response = httpx.post(url, data={"List-Unsubscribe": "One-Click"}, timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        assert response is not None and response.status_code == 200
    finally:
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=10)
    assert server.returncode == 0, err
    assert SECRET not in err and token not in err
    with SuppressionStore(tmp_path / "state") as store:
        assert [(s.address, s.source) for s in store.iter()] == [("ada@example.org", "one-click")]
