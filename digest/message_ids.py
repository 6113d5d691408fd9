"""The Message-ID of each message sent: ``<slug.tag.random@domain>``, tagged for its recipient.

The tag is :func:`digest.verp.recipient_tag` of the slug and the recipient's address under
``DIGEST_SECRET``. So a bounce report that quotes the original Message-ID can be checked without
storing one id per message: the id must be the one made for the address the report names, and
the ledger must hold that edition as sent to that address. An outsider cannot make an id that
passes; a reader who sees their own id can only speak about themselves.

The random part keeps every id unique (contract §5), a message sent again included. Proof
copies (``--test``) get no tag at all: they are not recorded, and a bounce of one counts nothing.
"""

from __future__ import annotations

import hmac
import re
import secrets

from digest.verp import recipient_tag

TAG_LENGTH = 22  # base32 characters: 110 bits
_ID = re.compile(
    r"<?\s*([a-z0-9][a-z0-9-]*)\.([a-z2-7]{22})\.[0-9a-f]{16}@[^>\s]+\s*>?", re.IGNORECASE
)


def message_id(secret: str, slug: str, recipient: str, domain: str) -> str:
    """The Message-ID of edition ``slug``'s message to ``recipient``."""
    tag = recipient_tag(secret, "message-id", slug, recipient, TAG_LENGTH)
    return f"<{slug}.{tag}.{secrets.token_hex(8)}@{domain}>"


def random_message_id(slug: str, domain: str) -> str:
    """A Message-ID that says nothing about its recipient (proof copies)."""
    return f"<{slug}.{secrets.token_hex(12)}@{domain}>"


def slug_of(value: str) -> str | None:
    """The slug of a Message-ID this module could have made, else None."""
    match = _ID.fullmatch(value.strip())
    return match.group(1).lower() if match else None


def message_id_matches(secret: str, value: str, recipient: str) -> bool:
    """True when ``value`` is the Message-ID made for ``recipient`` (on the slug it names)."""
    match = _ID.fullmatch(value.strip())
    if match is None:
        return False
    slug, tag = match.group(1).lower(), match.group(2).lower()
    expected = recipient_tag(secret, "message-id", slug, recipient, TAG_LENGTH)
    return hmac.compare_digest(expected, tag)
