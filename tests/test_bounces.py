"""DSN (RFC 3464) import from mbox files and Maildir folders the tests write themselves."""

from __future__ import annotations

import base64
import textwrap
from email import message_from_string
from pathlib import Path

import pytest

from digest.audience.bounces import BounceImportError, import_bounces, parse_dsn
from digest.audience.provenance import Evidence, SentMailCheck
from digest.audience.subscribers import Subscriber
from digest.audience.suppressions import SuppressionStore
from digest.ledger import Ledger
from digest.verp import verp_address


class _TrustEveryReport(SentMailCheck):
    """These tests are about reading reports; which reports count is tested in
    test_bounce_forgery.py, with real tokens and a real ledger."""

    def __init__(self) -> None:
        pass

    def evidence(self, message: object) -> Evidence:
        return Evidence([], ["<any>"])

    def edition_of(self, evidence: Evidence, address: str) -> str | None:
        return "2026-03"


TRUST_EVERY_REPORT = _TrustEveryReport()


def record_sent(state_dir: Path, slug: str, *addresses: str) -> None:
    """The ledger says ``slug`` was sent to ``addresses`` (what a real send leaves behind)."""
    with Ledger(state_dir) as ledger:
        ledger.enqueue(slug, [Subscriber(a, "", {}, n) for n, a in enumerate(addresses, 2)])
        ledger.mark_sent(slug, [(a, None) for a in addresses])


def to_verp(report: str, secret: str, address: str, slug: str = "2026-03") -> str:
    """``report`` (made by :func:`dsn`) addressed to the VERP address of ``address``'s message,
    as a bounce of a VERP send is: it then proves it is about that message."""
    verp = verp_address(secret, "bounces@example.org", address, slug)
    return report.replace("To: clippings@example.org", f"To: {verp}", 1)


def dsn(message_id: str, *recipients: str, report_type: str = "delivery-status") -> str:
    """A Postfix-style bounce; each recipient block is given as its header lines."""
    blocks = "\n".join(textwrap.dedent(block).strip() + "\n" for block in recipients)
    return textwrap.dedent(
        """\
        From: Mail Delivery System <MAILER-DAEMON@mx.example.org>
        To: clippings@example.org
        Subject: Undelivered Mail Returned to Sender
        Date: Tue, 31 Mar 2026 09:05:00 +0000
        Message-ID: <{message_id}>
        MIME-Version: 1.0
        Content-Type: multipart/report; report-type={report_type};
            boundary="=_boundary_1"

        This is a MIME-encapsulated message.

        --=_boundary_1
        Content-Type: text/plain; charset=us-ascii

        I'm sorry to have to inform you that your message could not
        be delivered to one or more recipients.

        --=_boundary_1
        Content-Type: message/delivery-status

        Reporting-MTA: dns; mx.example.org
        Arrival-Date: Tue, 31 Mar 2026 09:00:00 +0000

        {blocks}
        --=_boundary_1
        Content-Type: text/rfc822-headers

        From: Clippings <clippings@example.org>
        Subject: Clippings, March 2026

        --=_boundary_1--
        """
    ).format(message_id=message_id, report_type=report_type, blocks=blocks)


HARD = """\
    Final-Recipient: rfc822; gone@example.net
    Original-Recipient: rfc822;Gone@Example.net
    Action: failed
    Status: 5.1.1
    Diagnostic-Code: smtp; 550 5.1.1 <gone@example.net>: Recipient address rejected
    """
SOFT_DELAYED = """\
    Final-Recipient: rfc822; full@example.net
    Action: delayed
    Status: 4.2.2
    Diagnostic-Code: smtp; 452 4.2.2 Mailbox full
    """
SOFT_FAILED_4XX = """\
    Final-Recipient: rfc822; <busy@example.net>
    Action: failed
    Status: 4.4.1
    """
DELIVERED = """\
    Final-Recipient: rfc822; fine@example.net
    Action: delivered
    Status: 2.0.0
    """
HARD_BY_DIAGNOSTIC = """\
    Final-Recipient: rfc822; nostatus@example.net
    Action: failed
    Status: unknown
    Diagnostic-Code: smtp; 550 no such user
    """

NOT_A_REPORT = textwrap.dedent(
    """\
    From: Ada <ada@example.net>
    To: clippings@example.org
    Subject: Re: Clippings, March 2026
    Message-ID: <reply-1@example.net>

    Thanks! Action: failed Status: 5.1.1 (quoted text is not a report)
    """
)


def write_mbox(path: Path, *messages: str) -> Path:
    parts = []
    for text in messages:
        # mboxrd: a body line starting with "From " gets a ">" so it does not start a message.
        body = "\n".join(
            ">" + line if line.startswith("From ") else line for line in text.split("\n")
        )
        parts.append(f"From MAILER-DAEMON Tue Mar 31 09:05:00 2026\n{body}\n")
    path.write_text("".join(parts))
    return path


def write_maildir(path: Path, *messages: str) -> Path:
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True)
    for i, text in enumerate(messages):
        folder = "new" if i % 2 == 0 else "cur"
        name = f"17750000{i:02d}.M{i}P1.mx" + ("" if folder == "new" else ":2,S")
        (path / folder / name).write_text(text.replace("\n", "\r\n"))
    return path


@pytest.fixture
def store(tmp_path: Path) -> SuppressionStore:
    with SuppressionStore(tmp_path / "state") as opened:
        yield opened


def test_parse_dsn_reads_each_recipient_block() -> None:
    message = message_from_string(dsn("r1@mx", HARD, SOFT_DELAYED, DELIVERED))
    recipients = parse_dsn(message)
    assert recipients is not None
    assert [(r.address, r.action, r.status, r.is_hard, r.is_soft) for r in recipients] == [
        ("Gone@Example.net", "failed", "5.1.1", True, False),  # the address we sent to
        ("full@example.net", "delayed", "4.2.2", False, True),
        ("fine@example.net", "delivered", "2.0.0", False, False),
    ]
    assert parse_dsn(message_from_string(NOT_A_REPORT)) is None
    assert (
        parse_dsn(message_from_string(dsn("r2@mx", HARD, report_type="disposition-notification")))
        is None
    )


def test_an_encoded_delivery_status_part_is_decoded() -> None:
    fields = "Reporting-MTA: dns; mx\r\n\r\n" + textwrap.dedent(HARD).replace("\n", "\r\n")
    encoded = base64.encodebytes(fields.encode()).decode()
    text = dsn("enc@mx", HARD).replace(
        "Content-Type: message/delivery-status\n",
        "Content-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n",
    )
    head, _, rest = text.partition("Reporting-MTA: dns; mx.example.org\n")
    text = head + encoded + "\n--=_boundary_1" + rest.split("--=_boundary_1", 1)[1]
    recipients = parse_dsn(message_from_string(text))
    assert recipients is not None
    assert [(r.address, r.is_hard) for r in recipients] == [("Gone@Example.net", True)]


def test_mbox_import_suppresses_hard_bounces_and_counts_soft_ones(
    tmp_path: Path, store: SuppressionStore
) -> None:
    store.add("busy@example.net", "manual", "cli")  # already suppressed: stays as it was
    mbox = write_mbox(
        tmp_path / "bounces.mbox",
        dsn("r1@mx", HARD, SOFT_DELAYED),
        NOT_A_REPORT,
        dsn("r2@mx", SOFT_FAILED_4XX, DELIVERED, HARD_BY_DIAGNOSTIC),
        dsn("r3@mx", SOFT_DELAYED),
    )
    report = import_bounces(mbox, store, TRUST_EVERY_REPORT)
    assert (report.messages, report.reports, report.not_reports) == (4, 3, 1)
    assert (report.hard, report.new_suppressions, report.soft) == (2, 2, 3)
    assert {(s.address, s.reason, s.source) for s in store.iter("bounced")} == {
        ("Gone@Example.net", "bounced", "dsn"),
        ("nostatus@example.net", "bounced", "dsn"),
    }
    assert store.get("busy@example.net").reason == "manual"
    assert not store.contains("full@example.net")
    assert store.soft_bounce_count("full@example.net") == 2
    assert store.soft_bounce_count("busy@example.net") == 1
    assert store.soft_bounce_count("fine@example.net") == 0


def test_importing_the_same_mailbox_twice_counts_nothing_twice(
    tmp_path: Path, store: SuppressionStore
) -> None:
    mbox = write_mbox(tmp_path / "bounces.mbox", dsn("r1@mx", HARD, SOFT_DELAYED))
    import_bounces(mbox, store, TRUST_EVERY_REPORT)
    again = import_bounces(mbox, store, TRUST_EVERY_REPORT)
    assert (again.reports, again.already_imported, again.hard, again.soft) == (1, 1, 0, 0)
    assert store.soft_bounce_count("full@example.net") == 1
    assert store.count() == 1


def test_maildir_import(tmp_path: Path, store: SuppressionStore) -> None:
    maildir = write_maildir(
        tmp_path / "Maildir", dsn("m1@mx", HARD), NOT_A_REPORT, dsn("m2@mx", SOFT_DELAYED)
    )
    report = import_bounces(maildir, store, TRUST_EVERY_REPORT)
    assert (report.messages, report.reports, report.not_reports) == (3, 2, 1)
    assert [s.address for s in store.iter()] == ["Gone@Example.net"]
    assert store.soft_bounce_count("full@example.net") == 1


def test_a_report_without_message_id_is_still_imported_once(
    tmp_path: Path, store: SuppressionStore
) -> None:
    text = dsn("x@mx", HARD).replace("Message-ID: <x@mx>\n", "")
    mbox = write_mbox(tmp_path / "b.mbox", text)
    assert import_bounces(mbox, store, TRUST_EVERY_REPORT).new_suppressions == 1
    assert import_bounces(mbox, store, TRUST_EVERY_REPORT).already_imported == 1


def test_unreadable_mailboxes_are_clear_errors(tmp_path: Path, store: SuppressionStore) -> None:
    with pytest.raises(BounceImportError, match="no such mbox file or Maildir folder"):
        import_bounces(tmp_path / "missing", store, TRUST_EVERY_REPORT)
    (tmp_path / "plain-folder").mkdir()
    with pytest.raises(BounceImportError, match="not a Maildir"):
        import_bounces(tmp_path / "plain-folder", store, TRUST_EVERY_REPORT)


def test_an_empty_or_foreign_file_imports_nothing(tmp_path: Path, store: SuppressionStore) -> None:
    empty = tmp_path / "empty.mbox"
    empty.write_text("")
    assert import_bounces(empty, store, TRUST_EVERY_REPORT).messages == 0
    junk = tmp_path / "junk.mbox"
    junk.write_bytes(b"From nobody\n\xff\xfe not mail at all\n\x00\x01")
    report = import_bounces(junk, store, TRUST_EVERY_REPORT)
    assert report.reports == 0
    assert store.count() == 0


class _EditionInMessageId(SentMailCheck):
    """Proves every report, for the edition its Message-ID names (``<2026-04.r1@mx>``)."""

    def __init__(self) -> None:
        pass

    def evidence(self, message: object) -> Evidence:
        return Evidence([], [str(message["Message-ID"])])  # type: ignore[index]

    def edition_of(self, evidence: Evidence, address: str) -> str | None:
        return evidence.message_ids[0].strip("<>").split(".")[0]


def test_soft_bounce_reports_of_three_editions_in_a_row_suppress(
    tmp_path: Path, store: SuppressionStore
) -> None:
    months = ("2026-04", "2026-05", "2026-06")
    for month in months:
        record_sent(tmp_path / "state", month, "full@example.net", "fine@example.net")
    first_two = write_mbox(
        tmp_path / "first.mbox", *(dsn(f"{m}.r1@mx", SOFT_DELAYED) for m in months[:2])
    )
    report = import_bounces(first_two, store, _EditionInMessageId())
    assert (report.soft, report.new_suppressions) == (2, 0)
    assert not store.contains("full@example.net")
    third = write_mbox(tmp_path / "third.mbox", dsn(f"{months[2]}.r1@mx", SOFT_DELAYED))
    report = import_bounces(third, store, _EditionInMessageId())
    assert report.new_suppressions == 1
    item = store.get("full@example.net")
    assert item is not None
    assert (item.reason, item.source, item.slug) == ("soft-bounced", "dsn", "2026-06")
