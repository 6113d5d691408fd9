"""VERP: an envelope sender per recipient, so a bounce names whom it is about (contract §9).

With ``DIGEST_VERP=yes`` the MAIL FROM of the message to ``ada@example.org`` for edition
``2026-03`` is ``bounces+2026-03.k3v7q2mxa4b6c8d1@example.org``: the bounce address's local part,
``+``, the slug, ``.`` and a 16-character tag. The tag is a keyed hash (HMAC-SHA256 under
``DIGEST_SECRET``) of the slug and the recipient's address, so it names the recipient without
showing the address, and no one without the secret can make one.

Why not the whole address in the token: RFC 5321 allows 64 octets in a local part, and many
addresses alone are longer than what is left. The tag is checked against the address a bounce
report names (its recipient block); ``digest bounces import`` also asks the ledger that the
edition was sent to that address. When the slug does not fit, it is left out (``bounces+<tag>``)
and the importer tries the editions the ledger knows.

The tag is lower-case base32, so a mail system that lower-cases local parts keeps it valid.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import NamedTuple

MAX_LOCAL_PART = 64  # octets, RFC 5321 4.5.3.1.1
TAG_LENGTH = 16  # base32 characters: 80 bits
# The longest bounce address local part that still leaves room for "+<tag>".
MAX_BOUNCE_LOCAL_PART = MAX_LOCAL_PART - 1 - TAG_LENGTH
# "+<slug>.<tag>@" or "+<tag>@" anywhere in a header value.
_TOKEN = re.compile(r"\+(?:([a-z0-9][a-z0-9-]*)\.)?([a-z2-7]{16})@", re.IGNORECASE)


class VerpToken(NamedTuple):
    slug: str | None  # None when the slug did not fit in the local part
    tag: str


def recipient_tag(secret: str, purpose: str, slug: str, address: str, length: int) -> str:
    """``length`` base32 characters of HMAC-SHA256(secret, purpose, slug, address).

    ``purpose`` keeps the tags of different uses (VERP, Message-ID) apart. The address is
    compared case-insensitively, as the ledger does.
    """
    payload = f"{purpose}\n{slug}\n{address.lower()}".encode()
    digest = hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).digest()
    # Only the bytes the tag shows are encoded (each 5 bytes make 8 characters on their own):
    # the same characters for half the work, once per message sent.
    return base64.b32encode(digest[: 5 * -(-length // 8)]).decode("ascii").lower()[:length]


def verp_address(secret: str, bounce_address: str, recipient: str, slug: str) -> str:
    """The envelope sender of ``slug``'s message to ``recipient``; ValueError when the bounce
    address's local part is longer than :data:`MAX_BOUNCE_LOCAL_PART` octets."""
    local, _, domain = bounce_address.rpartition("@")
    if len(local.encode("utf-8")) > MAX_BOUNCE_LOCAL_PART:
        raise ValueError(f"a VERP local part needs {MAX_BOUNCE_LOCAL_PART} octets at most")
    tag = recipient_tag(secret, "verp", slug, recipient, TAG_LENGTH)
    with_slug = f"{local}+{slug}.{tag}"
    if len(with_slug.encode("utf-8")) <= MAX_LOCAL_PART:
        return f"{with_slug}@{domain}"
    return f"{local}+{tag}@{domain}"


def tokens_in(text: str) -> list[VerpToken]:
    """Every VERP token that ``text`` (a header value of a bounce) seems to hold."""
    return [
        VerpToken(slug.lower() if slug else None, tag.lower()) for slug, tag in _TOKEN.findall(text)
    ]


def token_matches(secret: str, token: VerpToken, recipient: str, slug: str) -> bool:
    """True when ``token`` is the one made for ``recipient`` on edition ``slug``."""
    if token.slug is not None and token.slug != slug:
        return False
    expected = recipient_tag(secret, "verp", slug, recipient, TAG_LENGTH)
    return hmac.compare_digest(expected, token.tag)
