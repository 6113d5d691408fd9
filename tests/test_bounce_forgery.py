"""Only reports about messages this digest sent count: VERP token or quoted Message-ID, checked
against the ledger. The messages are real ones, sent by `digest send` to a real SMTP server."""

from __future__ import annotations

import mailbox
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import write_subscribers
from smtp_server import Received, SMTPTestServer

from digest.audience.suppressions import SuppressionStore
from digest.verp import verp_address

BOUNCES = "bounces@example.org"


def report(
    to: str,
    *blocks: tuple[str, str],
    sender: str = "Mail Delivery System <MAILER-DAEMON@mx.example.net>",
    returned: str = "",
    message_id: str = "<r1@mx.example.net>",
) -> str:
    """A delivery report: recipient blocks as (address, status), the returned headers as text."""
    fields = "\n".join(
        f"Final-Recipient: rfc822; {address}\n"
        f"Action: {'failed' if status[0] in '45' else 'delivered'}\nStatus: {status}\n"
        for address, status in blocks
    )
    return (
        textwrap.dedent(
            f"""\
            From: {sender}
            To: {to}
            Subject: Undelivered Mail Returned to Sender
            Message-ID: {message_id}
            MIME-Version: 1.0
            Content-Type: multipart/report; report-type=delivery-status; boundary="B"

            --B
            Content-Type: text/plain

            Your message could not be delivered.

            --B
            Content-Type: message/delivery-status

            Reporting-MTA: dns; mx.example.net

            """
        )
        + fields
        + "\n--B\nContent-Type: text/rfc822-headers\n\n"
        + returned
        + "\n--B--\n"
    )


def write_maildir(path: Path, *messages: str) -> Path:
    box = mailbox.Maildir(path, create=True)
    for text in messages:
        box.add(text.encode())
    box.close()
    return path


def returned_headers(received: Received) -> str:
    head = received.data.split(b"\r\n\r\n", 1)[0].decode()
    return head.replace("\r\n", "\n")


@pytest.fixture
def sent(
    tmp_path: Path,
    edition_file: Path,
    smtp_server: SMTPTestServer,
    send_env: dict[str, str],
    run_digest: Callable,
) -> dict[str, Received]:
    """Edition 2026-03 sent with VERP to reader0000..reader0002; what the server received."""
    write_subscribers(tmp_path / "subscribers.csv", 3)
    env = {**send_env, **smtp_server.env(), "DIGEST_BOUNCE_ADDRESS": BOUNCES, "DIGEST_VERP": "yes"}
    result = run_digest(
        "send", "content/2026-03.yaml", "--subscribers", "subscribers.csv", "--yes", env=env
    )
    assert result.exit_code == 0, result.output
    return {m.rcpt_tos[0]: m for m in smtp_server.messages}


@pytest.fixture
def import_mail(
    tmp_path: Path, send_env: dict[str, str], run_digest: Callable
) -> Callable[..., tuple[str, set[str]]]:
    """Import the given messages; returns the output and every suppressed address."""

    def run(*messages: str) -> tuple[str, set[str]]:
        box = write_maildir(tmp_path / f"box{len(list(tmp_path.glob('box*')))}", *messages)
        result = run_digest("bounces", "import", str(box), "--verbose", env=send_env)
        assert result.exit_code == 0, result.output
        assert "Traceback" not in result.output
        with SuppressionStore(Path(send_env["DIGEST_STATE_DIR"])) as store:
            return result.output, {s.address for s in store.iter()}

    return run


def test_a_forged_report_suppresses_no_one(
    sent: dict[str, Received], import_mail: Callable[..., tuple[str, set[str]]]
) -> None:
    forged = report(BOUNCES, ("reader0001@example.org", "5.1.1"),
                    sender="Mallory <mallory@evil.example.net>")  # fmt: skip
    output, suppressed = import_mail(forged)
    assert suppressed == set()
    assert "Not ours: 1 reports, 1 recipient entries" in output
    assert "not ours  message-id:<r1@mx.example.net>: from Mallory" in output
    assert "reader0001@example.org" in output


def test_a_forged_report_on_a_state_that_sent_nothing_suppresses_no_one(
    tmp_path: Path, send_env: dict[str, str], import_mail: Callable[..., tuple[str, set[str]]]
) -> None:
    forged = report(BOUNCES, ("ada@example.org", "5.1.1"), sender="outsider@evil.example.net")
    output, suppressed = import_mail(forged)
    assert suppressed == set()
    assert "Not ours: 1 reports" in output


def test_a_report_to_the_verp_address_counts_for_that_recipient(
    sent: dict[str, Received], import_mail: Callable[..., tuple[str, set[str]]]
) -> None:
    to = sent["reader0001@example.org"].mail_from
    output, suppressed = import_mail(report(to, ("reader0001@example.org", "5.1.1")))
    assert suppressed == {"reader0001@example.org"}
    assert "Hard bounces: 1 (1 newly suppressed)" in output


def test_a_report_quoting_our_message_id_counts_for_that_recipient(
    sent: dict[str, Received], import_mail: Callable[..., tuple[str, set[str]]]
) -> None:
    returned = returned_headers(sent["reader0002@example.org"])
    _, suppressed = import_mail(
        report(BOUNCES, ("reader0002@example.org", "5.1.1"), returned=returned)
    )
    assert suppressed == {"reader0002@example.org"}


def test_one_readers_own_token_or_message_id_cannot_suppress_another(
    sent: dict[str, Received], import_mail: Callable[..., tuple[str, set[str]]]
) -> None:
    # reader0000 sees their own Return-Path and Message-ID, and tries them on reader0001.
    mine = sent["reader0000@example.org"]
    output, suppressed = import_mail(
        report(mine.mail_from, ("reader0001@example.org", "5.1.1")),
        report(
            BOUNCES,
            ("reader0001@example.org", "5.1.1"),
            returned=returned_headers(mine),
            message_id="<r2@x>",
        ),
    )
    assert suppressed == set()
    assert "Not ours: 2 reports" in output


def test_a_token_for_an_edition_never_sent_to_that_address_does_not_count(
    sent: dict[str, Received],
    send_env: dict[str, str],
    import_mail: Callable[..., tuple[str, set[str]]],
) -> None:
    # Signed with the right secret, but the ledger never sent 2026-04 (nor anything to ada).
    secret = send_env["DIGEST_SECRET"]
    to_other_edition = verp_address(secret, BOUNCES, "reader0001@example.org", "2026-04")
    to_stranger = verp_address(secret, BOUNCES, "ada@example.org", "2026-03")
    _, suppressed = import_mail(
        report(to_other_edition, ("reader0001@example.org", "5.1.1")),
        report(to_stranger, ("ada@example.org", "5.1.1"), message_id="<r2@x>"),
    )
    assert suppressed == set()


def test_one_report_with_2000_recipient_blocks_suppresses_only_the_one_it_proves(
    sent: dict[str, Received], import_mail: Callable[..., tuple[str, set[str]]]
) -> None:
    to = sent["reader0000@example.org"].mail_from
    blocks = [(f"victim{n:04d}@example.org", "5.1.1") for n in range(1997)]
    blocks += [(address, "5.1.1") for address in sorted(sent)]  # our three readers among them
    output, suppressed = import_mail(report(to, *blocks))
    assert suppressed == {"reader0000@example.org"}
    assert "Hard bounces: 1 (1 newly suppressed)" in output
    assert "1999 recipient entries about no message this digest sent" in output


def test_bounces_import_without_the_secret_is_exit_1(
    tmp_path: Path, send_env: dict[str, str], run_digest: Callable
) -> None:
    box = write_maildir(tmp_path / "box", report(BOUNCES, ("ada@example.org", "5.1.1")))
    env = {k: v for k, v in send_env.items() if k != "DIGEST_SECRET"}
    result = run_digest("bounces", "import", str(box), env=env)
    assert result.exit_code == 1
    assert "needs DIGEST_SECRET" in result.output


def test_a_tag_is_the_start_of_the_base32_of_the_whole_hmac() -> None:
    """Tags of messages sent by earlier versions (which encoded the whole HMAC) still verify:
    only the encoding's shortcut changed, never a character."""
    import base64
    import hashlib
    import hmac

    from digest.verp import recipient_tag

    for n, length in enumerate([1, 7, 8, 9, 16, 17, 40, 52]):
        address = f"Reader{n}@Example.org"
        payload = f"verp\n2026-03\n{address.lower()}".encode()
        whole = hmac.new(b"a-secret", payload, hashlib.sha256).digest()
        expected = base64.b32encode(whole).decode("ascii").lower()[:length]
        assert recipient_tag("a-secret", "verp", "2026-03", address, length) == expected
