"""Signed unsubscribe tokens: the address and the edition's slug, verified with the secret alone.

A token is ``<payload>.<mac>``, both base64url without padding: the payload is
``v1\\n<slug>\\n<address>`` in UTF-8, the MAC the first 16 bytes of HMAC-SHA256 under
``DIGEST_SECRET``. No database is needed to check one::

    >>> token = make_token("s3cret", "ada@example.org", "2026-03")
    >>> verify_token("s3cret", token)
    TokenClaims(address='ada@example.org', slug='2026-03')

A token cannot be forged without the secret, nor moved to another address or edition: both are
inside the signed payload. Tokens are URL-safe, so they go into ``DIGEST_UNSUBSCRIBE_URL`` as is.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import NamedTuple

from digest.errors import DigestError

_VERSION = "v1"
_MAC_BYTES = 16
_MAX_TOKEN_LENGTH = 2048


class InvalidToken(DigestError):
    """The token is malformed or its signature does not match."""


class TokenClaims(NamedTuple):
    address: str
    slug: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, payload: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).digest()[:_MAC_BYTES]


def make_token(secret: str, address: str, slug: str) -> str:
    """The token for ``address`` on edition ``slug``."""
    if not secret:
        raise InvalidToken("DIGEST_SECRET is empty; tokens cannot be signed")
    if "\n" in slug or "\n" in address or not slug or not address:
        # The payload is newline-separated: such a value would sign something else.
        raise InvalidToken("a token needs a one-line, non-empty address and slug")
    payload = f"{_VERSION}\n{slug}\n{address}".encode()
    return f"{_b64(payload)}.{_b64(_mac(secret, payload))}"


def verify_token(secret: str, token: str) -> TokenClaims:
    """The address and slug in ``token``, or :class:`InvalidToken`."""
    if not secret:
        raise InvalidToken("DIGEST_SECRET is empty; tokens cannot be verified")
    if not token or len(token) > _MAX_TOKEN_LENGTH or token.count(".") != 1:
        raise InvalidToken("malformed token")
    payload_part, mac_part = token.split(".")
    try:
        payload = _unb64(payload_part)
        mac = _unb64(mac_part)
    except (binascii.Error, ValueError) as exc:
        raise InvalidToken("malformed token") from exc
    if not hmac.compare_digest(mac, _mac(secret, payload)):
        raise InvalidToken("token signature does not match")
    try:
        version, slug, address = payload.decode("utf-8").split("\n")
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidToken("malformed token payload") from exc
    if version != _VERSION or not slug or not address:
        raise InvalidToken("malformed token payload")
    return TokenClaims(address=address, slug=slug)


def address_fingerprint(secret: str, address: str) -> str:
    """A short keyed hash of ``address`` for logs: the same address gives the same value, but
    without the secret no list of candidate addresses can be matched against it."""
    key = hmac.new(secret.encode("utf-8"), b"digest address fingerprint", hashlib.sha256).digest()
    mac = hmac.new(key, address.strip().lower().encode("utf-8"), hashlib.sha256)
    return "addr-" + mac.hexdigest()[:16]


def fill_url(template: str, token: str) -> str:
    """``DIGEST_UNSUBSCRIBE_URL`` with ``{token}`` replaced."""
    return template.replace("{token}", token)
