"""Unsubscribe tokens: the address and the edition's slug, sealed with the secret alone.

A token is ``v2-`` and the base64url (no padding) of an AES-SIV (RFC 5297) ciphertext of
``<kind>\\n<slug>\\n<address>`` under a 512-bit key derived from ``DIGEST_SECRET`` with
HKDF-SHA256. AES-SIV is authenticated encryption: whoever reads the link (a proxy log, a
forwarded mail) learns nothing of the address, and without the secret no token can be forged or
moved to another address or edition. It is deterministic and needs no nonce: one reader's link
for one edition is the same in every copy and every rerun, and is 16 bytes longer than what it
hides (about 70 characters for a 30-character address). The endpoint needs no database to read
a token::

    >>> token = make_token("s3cret", "ada@example.org", "2026-03")
    >>> "ada" in token
    False
    >>> verify_token("s3cret", token)
    TokenClaims(address='ada@example.org', slug='2026-03')

``kind`` is ``u`` for a subscriber's link and ``p`` for the link of a ``digest send --test``
proof (:func:`make_proof_token`): the endpoint shows a proof's page and unsubscribes no one.

Tokens already mailed (``v1``: the readable base64 of ``v1\\n<slug>\\n<address>``, a dot, the
first 16 bytes of its HMAC-SHA256 under the secret) are still verified and honoured.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
from typing import TYPE_CHECKING, NamedTuple

from digest.errors import DigestError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESSIV

_V1 = "v1"
_V2_PREFIX = "v2-"
_V2_CONTEXT = b"digest unsubscribe token v2"  # HKDF info and the SIV's associated data
_KIND_UNSUBSCRIBE = "u"
_KIND_PROOF = "p"
_MAC_BYTES = 16
_MAX_TOKEN_LENGTH = 2048
# What a token looks like, for finding one in a pasted link: v2, or v1's payload.mac.
TOKEN_SHAPE = re.compile(r"^(?:v2-[A-Za-z0-9_-]+|[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$")


class InvalidToken(DigestError):
    """The token is malformed or its signature does not match."""


class TokenClaims(NamedTuple):
    address: str
    slug: str

    @property
    def proof(self) -> bool:
        """True for the link of a ``--test`` proof, which unsubscribes no one."""
        return False


class ProofClaims(TokenClaims):
    """The claims of a proof's token (:func:`make_proof_token`)."""

    @property
    def proof(self) -> bool:
        return True


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@functools.lru_cache(maxsize=8)
def _cipher(secret: str) -> AESSIV:
    # Imported on first use: commands that make or read no token skip the 25 ms it costs.
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESSIV
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    key = HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=_V2_CONTEXT).derive(
        secret.encode("utf-8")
    )
    return AESSIV(key)


def _seal(secret: str, kind: str, address: str, slug: str) -> str:
    if not secret:
        raise InvalidToken("DIGEST_SECRET is empty; tokens cannot be signed")
    if "\n" in slug or "\n" in address or not slug or not address:
        # The plaintext is newline-separated: such a value would seal something else.
        raise InvalidToken("a token needs a one-line, non-empty address and slug")
    plaintext = f"{kind}\n{slug}\n{address}".encode()
    return _V2_PREFIX + _b64(_cipher(secret).encrypt(plaintext, [_V2_CONTEXT]))


def make_token(secret: str, address: str, slug: str) -> str:
    """The unsubscribe token for ``address`` on edition ``slug``."""
    return _seal(secret, _KIND_UNSUBSCRIBE, address, slug)


def make_proof_token(secret: str, address: str, slug: str) -> str:
    """The token of a ``--test`` proof's link: valid, but it unsubscribes no one."""
    return _seal(secret, _KIND_PROOF, address, slug)


def verify_token(secret: str, token: str) -> TokenClaims:
    """The claims of ``token`` (v2, or v1 as mailed before), or :class:`InvalidToken`."""
    if not secret:
        raise InvalidToken("DIGEST_SECRET is empty; tokens cannot be verified")
    if not token or len(token) > _MAX_TOKEN_LENGTH:
        raise InvalidToken("malformed token")
    if token.startswith(_V2_PREFIX):
        return _open_v2(secret, token.removeprefix(_V2_PREFIX))
    return _verify_v1(secret, token)


def _open_v2(secret: str, body: str) -> TokenClaims:
    try:
        sealed = _unb64(body)
    except (binascii.Error, ValueError) as exc:
        raise InvalidToken("malformed token") from exc
    if len(sealed) <= _MAC_BYTES:
        raise InvalidToken("malformed token")
    from cryptography.exceptions import InvalidTag

    cipher = _cipher(secret)
    try:
        plaintext = cipher.decrypt(sealed, [_V2_CONTEXT])
    except InvalidTag as exc:
        raise InvalidToken("token signature does not match") from exc
    try:
        kind, slug, address = plaintext.decode("utf-8").split("\n")
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidToken("malformed token payload") from exc
    if kind not in (_KIND_UNSUBSCRIBE, _KIND_PROOF) or not slug or not address:
        raise InvalidToken("malformed token payload")
    claims = ProofClaims if kind == _KIND_PROOF else TokenClaims
    return claims(address=address, slug=slug)


def _v1_mac(secret: str, payload: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).digest()[:_MAC_BYTES]


def _verify_v1(secret: str, token: str) -> TokenClaims:
    if token.count(".") != 1:
        raise InvalidToken("malformed token")
    payload_part, mac_part = token.split(".")
    try:
        payload = _unb64(payload_part)
        mac = _unb64(mac_part)
    except (binascii.Error, ValueError) as exc:
        raise InvalidToken("malformed token") from exc
    if not hmac.compare_digest(mac, _v1_mac(secret, payload)):
        raise InvalidToken("token signature does not match")
    try:
        version, slug, address = payload.decode("utf-8").split("\n")
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidToken("malformed token payload") from exc
    if version != _V1 or not slug or not address:
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
