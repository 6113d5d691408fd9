"""Bounces learnt from delivery status notifications (DSN, RFC 3464) in a mailbox.

When an SMTP send is refused after the server accepted it, the refusal comes back as a mail: a
``multipart/report; report-type=delivery-status`` whose ``message/delivery-status`` part holds one
block of fields per recipient. For each recipient block:

* ``Action: failed`` with a ``Status: 5.x.x`` (permanent) -> a ``bounced`` suppression;
* ``Status: 4.x.x`` or ``Action: delayed`` (temporary) -> one more soft bounce for that address;
* ``delivered``, ``relayed``, ``expanded`` -> nothing.

A report counts only for the recipients it proves we sent the edition to
(:mod:`digest.audience.provenance`: a VERP token or the original Message-ID, and the ledger);
every other block, and every report that proves nothing, is "not ours" and changes nothing.

Messages that are not delivery reports (replies, auto-responders, spam) are skipped and counted.
Each report is recorded once (by its Message-ID, else a hash of its bytes), so importing the same
mailbox twice counts nothing twice.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import mailbox
import quopri
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from email.parser import HeaderParser
from pathlib import Path

from digest.audience.mail_limits import (
    MAX_MESSAGE_BYTES,
    RefusedMail,
    message_label,
    parse_untrusted_mail,
)
from digest.audience.provenance import SentMailCheck
from digest.audience.suppressions import SuppressionError, SuppressionStore, checked_address
from digest.errors import DigestError

SOURCE = "dsn"
_DSN_TYPES = ("message/delivery-status", "message/global-delivery-status")
_STATUS = re.compile(r"^\s*([245])\.\d{1,3}\.\d{1,3}")
_SMTP_REPLY = re.compile(r"(?:^|;)\s*([245])\d\d\b")


class BounceImportError(DigestError):
    """The mailbox cannot be read."""


@dataclass(frozen=True)
class RecipientStatus:
    """One per-recipient block of a delivery report."""

    address: str
    action: str  # failed, delayed, delivered, relayed, expanded (lower-cased)
    status: str | None  # e.g. "5.1.1"

    @property
    def is_hard(self) -> bool:
        return self.action == "failed" and _status_class(self) == "5"

    @property
    def is_soft(self) -> bool:
        return self.action == "delayed" or (self.action == "failed" and _status_class(self) == "4")


@dataclass
class BounceImportReport:
    messages: int = 0  # messages read from the mailbox
    reports: int = 0  # delivery reports among them
    already_imported: int = 0  # reports recorded by an earlier import
    not_reports: int = 0  # messages skipped: not a delivery report
    hard: int = 0  # permanent failures seen (recipients)
    new_suppressions: int = 0  # addresses newly suppressed
    soft: int = 0  # temporary failures counted
    unusable: int = 0  # recipient blocks without a usable address or status
    hard_addresses: list[str] = field(default_factory=list)
    not_ours: int = 0  # reports that prove no message of ours: they changed nothing
    not_ours_recipients: int = 0  # recipient blocks ignored for want of proof
    # "<report id>: from <sender> about <addresses>" for each report that changed nothing
    not_ours_reports: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # one note per message over a limit


def parse_dsn(message: Message) -> list[RecipientStatus] | None:
    """The recipient blocks of ``message`` if it is a delivery report, else None."""
    if not _is_report(message):
        return None
    for part in message.walk():
        if part.get_content_type() in _DSN_TYPES:
            return [r for block in _blocks(part)[1:] if (r := _recipient(block)) is not None]
    return None


def import_bounces(path: Path, store: SuppressionStore, check: SentMailCheck) -> BounceImportReport:
    """Read every message of the mbox file or Maildir folder at ``path`` into ``store``,
    counting only the recipients ``check`` proves we sent to."""
    report = BounceImportReport()
    for where, raw in _read_mailbox(path):
        report.messages += 1
        try:
            message = parse_untrusted_mail(raw)
        except RefusedMail as exc:
            # One hostile message must not stop the import: name it, skip it, read on.
            label = message_label(raw)
            report.refused.append(f"{where}{f' ({label})' if label else ''}: {exc}; skipped")
            continue
        recipients = parse_dsn(message)
        if recipients is None:
            report.not_reports += 1
            continue
        report.reports += 1
        hard: list[tuple[str, str | None]] = []
        soft: list[tuple[str, str | None]] = []
        soft_editions: dict[str, list[tuple[str, str | None]]] = {}  # slug -> soft bounces
        evidence = check.evidence(message)
        ignored: list[str] = []
        for recipient in recipients:
            try:
                address = checked_address(recipient.address)
            except SuppressionError:
                report.unusable += 1
                continue
            slug = check.edition_of(evidence, address) if evidence else None
            if slug is None:
                ignored.append(address)
                continue
            if recipient.is_hard:
                hard.append((address, recipient.status))
            elif recipient.is_soft:
                soft.append((address, recipient.status))
                soft_editions.setdefault(slug, []).append((address, recipient.status))
        report.not_ours_recipients += len(ignored)
        if ignored and not hard and not soft:
            report.not_ours += 1
            report.not_ours_reports.append(_describe(message, raw, ignored))
            continue
        outcome = store.record_bounce_report(_report_id(message, raw), hard, soft, source=SOURCE)
        if outcome is None:
            report.already_imported += 1
            continue
        added, soft_counted = outcome
        # Soft bounces in three editions in a row suppress (the rule the send engine applies
        # to the temporary refusals it meets itself).
        for slug, bounces in soft_editions.items():
            added += len(store.record_edition_soft_bounces(slug, bounces, source=SOURCE))
        report.hard += len(hard)
        report.new_suppressions += added
        report.soft += soft_counted
        report.hard_addresses.extend(address for address, _ in hard)
    return report


def _read_mailbox(path: Path) -> Iterator[tuple[str, bytes]]:
    """``(where, raw bytes)`` of each message of an mbox file or a Maildir folder; ``where``
    names the message for a note. A message is read no further than one byte past
    MAX_MESSAGE_BYTES, so a huge one costs no more memory than that."""
    box: mailbox.Mailbox[mailbox.Message]
    if path.is_dir():
        if not ((path / "cur").is_dir() and (path / "new").is_dir()):
            raise BounceImportError(f"{path}: a folder, but not a Maildir (no cur/ and new/ in it)")
        box = mailbox.Maildir(path, factory=None, create=False)
    elif path.is_file():
        box = mailbox.mbox(path, create=False)
    else:
        raise BounceImportError(f"{path}: no such mbox file or Maildir folder")
    locked = False
    try:
        try:
            # An mbox lock keeps a delivery agent from appending while we read; a mailbox we may
            # only read (no lock file possible) is still read.
            box.lock()
            locked = True
        except (OSError, mailbox.ExternalClashError):
            locked = False
        keys = list(box.iterkeys())
        for number, key in enumerate(keys, start=1):
            try:
                with box.get_file(key) as handle:
                    raw = handle.read(MAX_MESSAGE_BYTES + 1)
            except KeyError:  # a Maildir message taken away while we read
                continue
            where = f"message {number}" if path.is_file() else f"message {number} ({key})"
            yield where, raw
    except (OSError, mailbox.Error) as exc:
        raise BounceImportError(f"{path}: cannot read the mailbox: {exc}") from exc
    finally:
        if locked:
            box.unlock()
        box.close()


def _is_report(message: Message) -> bool:
    """A multipart/report of report-type delivery-status, at the top or forwarded within."""
    for part in message.walk():
        if part.get_content_type() == "multipart/report":
            report_type = part.get_param("report-type")
            if isinstance(report_type, str) and report_type.lower() in (
                "delivery-status",
                "global-delivery-status",
            ):
                return True
    return False


def _blocks(part: Message) -> list[Message]:
    """The field blocks of a delivery-status part: per-message first, then one per recipient."""
    payload = part.get_payload()
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if isinstance(payload, list):
        blocks = [p for p in payload if isinstance(p, Message)]
        if encoding not in ("base64", "quoted-printable"):
            return blocks
        # The parser split the still-encoded text into "blocks": join them back and decode.
        payload = "\n\n".join(block.as_string() for block in blocks)
    text = _decode(str(payload), encoding).replace("\r\n", "\n")
    return [
        HeaderParser().parsestr(block.strip() + "\n")
        for block in re.split(r"\n\s*\n", text)
        if block.strip()
    ]


def _decode(text: str, encoding: str) -> str:
    try:
        if encoding == "base64":
            return base64.b64decode("".join(text.split())).decode("utf-8", "replace")
        if encoding == "quoted-printable":
            return quopri.decodestring(text.encode("utf-8", "replace")).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return ""
    return text


def _recipient(block: Message) -> RecipientStatus | None:
    # Original-Recipient is the address we sent to; Final-Recipient may be after forwarding.
    address = _address_field(block.get("Original-Recipient")) or _address_field(
        block.get("Final-Recipient")
    )
    action = str(block.get("Action", "")).strip().lower()
    if not address or not action:
        return None
    status_match = _STATUS.match(str(block.get("Status", "")))
    status = status_match.group(0).strip() if status_match else None
    if status is None:
        # No usable Status: fall back on the SMTP reply in Diagnostic-Code ("smtp; 550 ...").
        reply = _SMTP_REPLY.search(str(block.get("Diagnostic-Code", "")))
        if reply:
            status = f"{reply.group(1)}.0.0"
    return RecipientStatus(address=address, action=action, status=status)


def _address_field(value: object) -> str | None:
    """``rfc822; ada@example.org`` -> ``ada@example.org``."""
    if value is None:
        return None
    text = re.sub(r"\s+", " ", str(value)).strip()
    _, semicolon, address = text.partition(";")
    address = (address if semicolon else text).strip().strip("<>").strip()
    return address or None


def _status_class(recipient: RecipientStatus) -> str | None:
    return recipient.status[0] if recipient.status else None


def _describe(message: Message, raw: bytes, addresses: list[str]) -> str:
    """One line naming a report that was not ours (its sender and whom it spoke about)."""
    sender = re.sub(r"\s+", " ", str(message.get("From", "?")))[:100]
    about = ", ".join(addresses[:3]) + (
        f" and {len(addresses) - 3} more" if len(addresses) > 3 else ""
    )
    return f"{_report_id(message, raw)[:80]}: from {sender} about {about}"


def _report_id(message: Message, raw: bytes) -> str:
    message_id = str(message.get("Message-ID", "")).strip()
    if message_id:
        return f"message-id:{message_id}"
    return "sha256:" + hashlib.sha256(raw).hexdigest()
