"""Hide secrets in text a server or a library may echo back: every form a secret travels in.

A hostile or careless server may quote what it was given in an error: the password as sent
(clear, or base64 in AUTH LOGIN/PLAIN), but also hex-dumped, URL-encoded (``quote`` or
``quote_plus``, ``%2F`` or ``%2f``) or upper-cased. :func:`scrub` replaces each of those forms
of each secret, compared without regard to case, by ``***``.

    >>> scrub("535 bad password 70617373776f7264 PASSWORD", ["password"])
    '535 bad *** *** ***'
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MASK = "***"


def encoded_forms(secret: str) -> set[str]:
    """``secret`` as written, hex-encoded (UTF-8 bytes) and URL-encoded the usual ways."""
    forms = {
        secret,
        secret.encode("utf-8").hex(),
        quote(secret),
        quote(secret, safe=""),
        quote_plus(secret),
        quote_plus(secret, safe="/"),
    }
    return {form for form in forms if form}


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every form (:func:`encoded_forms`) of every secret, in any case, masked."""
    pattern = _pattern(tuple(sorted(set(secrets))))
    return pattern.sub(MASK, text) if pattern is not None else text


@functools.lru_cache(maxsize=32)
def _pattern(secrets: tuple[str, ...]) -> re.Pattern[str] | None:
    forms = {form for secret in secrets if secret for form in encoded_forms(secret)}
    if not forms:
        return None
    # Longest first: a secret inside another must not leave the longer one half shown.
    alternatives = sorted(forms, key=len, reverse=True)
    return re.compile("|".join(re.escape(form) for form in alternatives), re.IGNORECASE)
