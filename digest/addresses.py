"""One normal form for an email address, shared by the subscribers list, the suppression store
and bounce reports, so an address typed or reported in one place finds its twin in the others.

The form is email-validator's: the domain lower-cased and in its ASCII (IDNA) form whenever the
local part is ASCII (``user@bücher.de`` -> ``user@xn--bcher-kva.de``), the whole address in its
Unicode form otherwise (SMTPUTF8). Callers compare the result case-insensitively.
"""

from __future__ import annotations

import functools
import re

from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES

from digest.reserved_domains import policy

_MAX_ADDRESS_LENGTH = 320  # RFC 3696 erratum: 64 + 1 + 255
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")
# RFC 5322 dot-atom: the only ASCII local parts email-validator accepts with its defaults.
_DOT_ATOM_LOCAL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
)
# RFC 2142 role mailboxes (``WWW``, ``Postmaster``...), which email-validator lower-cases.
_ROLE_MAILBOXES = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)


def normalise_address(address: str) -> str | None:
    """The address as we store and send it, or None when email-validator refuses it.

    Plain ASCII addresses take a fast path whose result equals email-validator's (the local part
    is a dot-atom, the domain is validated once per domain and cached): a list of a million rows
    is normalised in seconds. Everything else goes through :func:`validate_email` in full.
    """
    local, at, domain = address.rpartition("@")
    if at and len(local) <= 64 and _DOT_ATOM_LOCAL.fullmatch(local):
        ascii_domain = _ascii_domain(domain, policy())
        if ascii_domain is not None:
            if local.lower() in _ROLE_MAILBOXES:
                result = f"{local.lower()}@{ascii_domain}"
            elif ascii_domain == domain:
                result = address  # in normal form already, as nearly every one is: no copy
            else:
                result = f"{local}@{ascii_domain}"
            if len(result) <= 254:
                return result
    try:
        checked = validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return None
    return checked.ascii_email or checked.normalized


def cleaned_address(address: str) -> str | None:
    """The address as a person or a report wrote it, without surrounding space and angle
    brackets; None when it cannot be an address at all (no local part or domain, a space or a
    control character, too long). Looser than :func:`normalise_address`: a provider may report
    an address email-validator refuses, and such a record is still kept."""
    cleaned = address.strip().removeprefix("<").removesuffix(">").strip()
    local, at, domain = cleaned.rpartition("@")
    if (
        not at
        or not local
        or not domain
        or len(cleaned) > _MAX_ADDRESS_LENGTH
        or _SPACE_OR_CONTROL.search(cleaned)
    ):
        return None
    return cleaned


def address_key(address: str) -> str | None:
    """What an address is compared and looked up by: its normal form (or, when
    email-validator refuses it, its cleaned form), lower-cased; None for what is no address."""
    cleaned = cleaned_address(address)
    if cleaned is None:
        return None
    return (normalise_address(cleaned) or cleaned).lower()


def why_invalid(address: str) -> str:
    """email-validator's reason for refusing ``address``."""
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        return str(exc)
    return "not a valid address"


@functools.lru_cache(maxsize=4096)
def _ascii_domain(domain: str, policy: int) -> str | None:
    # ``policy``: the reserved-domains policy in force, so a change of it is never answered
    # from the cache.
    try:
        checked = validate_email(f"postmaster@{domain}", check_deliverability=False)
    except EmailNotValidError:
        return None
    return checked.ascii_domain
