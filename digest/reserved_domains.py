"""Staging on reserved domains: ``DIGEST_ALLOW_RESERVED_DOMAINS=yes`` (contract §9).

By default an address at a special-use domain (RFC 2606 and RFC 6761: ``.test``, ``.invalid``,
``.localhost``, and ``.local`` of mDNS) is refused everywhere: no mail to it could ever arrive, so
in a real list it is a typo or a placeholder. A staging set-up on a private test domain needs
exactly those, ``DIGEST_FROM`` included. With the setting, these names pass (``.example`` always
did); ``.onion`` and ``.arpa`` stay refused.

email-validator, which every address check goes through, keeps its list of refused names in
the module-level ``SPECIAL_USE_DOMAIN_NAMES``, documented as the place to change it. Settings set
it on every load, so a command without the setting refuses the names again.
"""

from __future__ import annotations

import email_validator

STAGING_NAMES = ("test", "example", "invalid", "localhost", "local")
_REFUSED_BY_DEFAULT = tuple(email_validator.SPECIAL_USE_DOMAIN_NAMES)


def allow_reserved_domains(allowed: bool) -> None:
    """Let the staging names pass (``allowed``) or refuse them again."""
    names = [n for n in _REFUSED_BY_DEFAULT if not (allowed and n in STAGING_NAMES)]
    email_validator.SPECIAL_USE_DOMAIN_NAMES[:] = names


def policy() -> int:
    """A key that changes with the policy, for caches of address checks."""
    return len(email_validator.SPECIAL_USE_DOMAIN_NAMES)
