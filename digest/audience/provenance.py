"""Is a bounce report about a message this digest sent? Only then may it suppress anyone.

Anyone can mail the bounce mailbox, so a delivery report is untrusted input (contract §9). A
recipient block of a report counts only when one of these proves it is ours, for that address:

* a VERP token (:mod:`digest.verp`) in the address the report was sent to (``To``,
  ``Delivered-To``, ``X-Original-To`` ...) that was made for that recipient and edition;
* the original ``Message-ID`` the report quotes (its returned message or headers) was made
  for that recipient (:mod:`digest.message_ids`);

and the ledger holds that edition as sent to that address. Both are keyed with
``DIGEST_SECRET``: an outsider cannot make either, and a reader who sees their own can only
speak about themselves. So a forged report suppresses no one, and a report listing 2,000
recipients counts at most the one it proves.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from email.message import Message
from email.parser import HeaderParser
from typing import Protocol

from digest.message_ids import message_id_matches, slug_of
from digest.verp import VerpToken, token_matches, tokens_in

# Where the address a report was delivered to shows (the envelope recipient of the bounce).
_ENVELOPE_HEADERS = ("Delivered-To", "X-Original-To", "To", "Envelope-To", "X-Envelope-To")
_RETURNED_TYPES = ("message/rfc822", "message/global", "text/rfc822-headers")
_MAX_TOKENS = 20  # a report quoting more candidate tokens than this is not honest mail


class SentLedger(Protocol):
    """What the check needs of :class:`digest.ledger.Ledger`."""

    def statuses(self, slug: str, addresses: Sequence[str]) -> dict[str, str]: ...
    def slugs(self) -> list[str]: ...


class SentMailCheck:
    """Tells, per recipient address of a report, which edition of ours it is about (or None)."""

    def __init__(self, secret: str, ledger: SentLedger) -> None:
        self._secret = secret
        self._ledger = ledger
        self._slugs: list[str] | None = None

    def evidence(self, message: Message) -> Evidence:
        """What ``message`` offers as proof: VERP tokens and quoted Message-IDs."""
        tokens: list[VerpToken] = []
        for name in _ENVELOPE_HEADERS:
            for value in message.get_all(name) or ():
                tokens += tokens_in(str(value))
        message_ids: list[str] = []
        for returned in _returned_headers(message):
            message_ids += [str(v) for v in returned.get_all("Message-ID") or ()]
            for value in returned.get_all("Return-Path") or ():
                tokens += tokens_in(str(value))
        return Evidence(tokens[:_MAX_TOKENS], message_ids[:_MAX_TOKENS])

    def edition_of(self, evidence: Evidence, address: str) -> str | None:
        """The slug of our edition sent to ``address`` that ``evidence`` proves, else None."""
        for message_id in evidence.message_ids:
            slug = slug_of(message_id)
            if (
                slug is not None
                and message_id_matches(self._secret, message_id, address)
                and self._was_sent(slug, address)
            ):
                return slug
        for token in evidence.tokens:
            for slug in [token.slug] if token.slug else self._known_slugs():
                if token_matches(self._secret, token, address, slug) and self._was_sent(
                    slug, address
                ):
                    return slug
        return None

    def _was_sent(self, slug: str, address: str) -> bool:
        return self._ledger.statuses(slug, [address]).get(address.lower()) == "sent"

    def _known_slugs(self) -> list[str]:
        if self._slugs is None:
            self._slugs = self._ledger.slugs()
        return self._slugs


class Evidence:
    """The tokens and quoted Message-IDs of one report."""

    def __init__(self, tokens: list[VerpToken], message_ids: list[str]) -> None:
        self.tokens = tokens
        self.message_ids = message_ids

    def __bool__(self) -> bool:
        return bool(self.tokens or self.message_ids)


def _returned_headers(message: Message) -> Iterator[Message]:
    """The headers of the returned original: a message/rfc822 part or text/rfc822-headers."""
    for part in message.walk():
        kind = part.get_content_type()
        if kind not in _RETURNED_TYPES:
            continue
        payload = part.get_payload()
        if isinstance(payload, list):
            yield from (p for p in payload[:1] if isinstance(p, Message))
        elif isinstance(payload, str):
            decoded = part.get_payload(decode=True)
            text = decoded.decode("utf-8", "replace") if isinstance(decoded, bytes) else payload
            yield HeaderParser().parsestr(text, headersonly=True)
