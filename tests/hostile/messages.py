"""Build a real message for a subscriber and check its headers as a mail client would read them."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from functools import lru_cache

from pydantic import SecretStr

from digest.audience.subscribers import Subscriber
from digest.edition.load import load_edition_text
from digest.render.email import render_edition
from digest.send.message import MessageFactory
from digest.settings import Settings

SETTINGS = Settings(
    from_address="clippings@example.org",
    reply_to="Editor <editor@example.org>",
    secret=SecretStr("hostile-headers-secret"),
    unsubscribe_url="https://example.org/unsubscribe/{token}",
    unsubscribe_mailto="mailto:unsubscribe@example.org",
)
EXPECTED_HEADERS = {
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "reply-to",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "mime-version",
    "content-type",
}
EDITION = """\
newsletter: {newsletter}
edition: March 2026
slug: 2026-03
subject: {subject}
sections:
  - title: Papers
    items:
      - title: A paper
        url: https://arxiv.org/abs/2601.00001
"""


@lru_cache(maxsize=64)
def factory(
    newsletter: str = "Clippings", subject: str = "Clippings, March 2026"
) -> MessageFactory:
    import json

    # JSON strings are YAML double-quoted scalars: any text goes in exactly.
    text = EDITION.format(
        newsletter=json.dumps(newsletter, ensure_ascii=False),
        subject=json.dumps(subject, ensure_ascii=False),
    )
    return MessageFactory(render_edition(load_edition_text(text, "edition.yaml")), SETTINGS)


def parse(data: bytes) -> EmailMessage:
    """Parse as an RFC 6532 reader does: headers are UTF-8 (a non-ASCII address travels as is,
    with SMTPUTF8); the bodies are quoted-printable ASCII anyway."""
    parsed = email.message_from_string(data.decode("utf-8"), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def same_words(shown: str, written: str) -> bool:
    """Equal but for blanks: RFC 5322 folds runs of blanks in a phrase, and Python's parser adds
    one between adjacent encoded words (RFC 2047 says to drop it; mail clients do)."""
    return "".join(shown.split()) == "".join(written.split())


def assert_exact_headers(
    data: bytes, subscriber: Subscriber, *, subject: str, newsletter: str
) -> EmailMessage:
    """The message parses to exactly the intended headers, each once, each holding its value."""
    head = data.split(b"\r\n\r\n", 1)[0]
    assert all(len(line) <= 998 for line in head.split(b"\r\n"))
    parsed = parse(data)
    names = [name.lower() for name in parsed]
    assert sorted(names) == sorted(EXPECTED_HEADERS), names
    to = parsed["To"].addresses
    assert len(to) == 1, to
    assert to[0].addr_spec.lower() == subscriber.email.lower()
    assert same_words(to[0].display_name, subscriber.name), (to[0].display_name, subscriber.name)
    assert parsed["Subject"] == subject
    sender = parsed["From"].addresses
    assert len(sender) == 1 and sender[0].addr_spec == "clippings@example.org"
    assert same_words(sender[0].display_name, newsletter), (sender[0].display_name, newsletter)
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in parsed.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    return parsed
