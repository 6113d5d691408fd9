"""Which domains a send involves, and whether they align (DMARC, RFC 7489 §3.1).

The From domain is what readers see; the envelope domain (MAIL FROM, Return-Path) is what SPF
checks; the DKIM domain is the signature's ``d=``. DMARC passes when SPF or DKIM passes for a
domain *aligned* with From: the same organizational domain ("relaxed", the default).
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parseaddr

from digest.addresses import normalise_address

# Suffixes under which anyone can register a name (a small part of the Public Suffix List, the
# ones senders meet most): there the organizational domain has three labels, not two. A domain
# under another multi-label suffix is then judged a little too generously; the doctor says
# "relaxed" alignment only when one domain is the other or a subdomain of it, or both share
# such an organizational domain.
_TWO_LABEL_SUFFIXES = frozenset(
    {
        "co.uk", "org.uk", "ac.uk", "gov.uk", "me.uk", "ltd.uk", "plc.uk", "net.uk",
        "com.au", "net.au", "org.au", "edu.au", "gov.au",
        "co.nz", "org.nz", "net.nz", "co.jp", "ne.jp", "or.jp", "ac.jp",
        "com.br", "net.br", "org.br", "co.in", "org.in", "net.in", "co.za", "org.za",
        "com.mx", "com.ar", "com.tr", "com.cn", "com.tw", "com.hk", "com.sg", "co.kr",
        "co.il", "com.pl", "com.es", "co.id", "com.my", "com.ph",
    }
)  # fmt: skip


def domain_of(address: str | None) -> str | None:
    """The domain of ``"Name <local@domain>"`` or ``local@domain`` as DNS spells it (lower-case,
    IDNA ``xn--`` form); None when the address is not valid."""
    if not address:
        return None
    normal = normalise_address(parseaddr(address)[1] or address)
    if normal is None:
        return None
    return normal.rpartition("@")[2].lower()


def checked_domain(domain: str) -> str | None:
    """A domain typed by the user (``--domain``) as DNS spells it, or None if it is none."""
    return domain_of(f"postmaster@{domain.strip().rstrip('.')}")


def organizational_domain(domain: str) -> str:
    """The registered domain: ``news.example.org`` -> ``example.org``, ``mail.shop.co.uk`` ->
    ``shop.co.uk``."""
    labels = domain.lower().rstrip(".").split(".")
    keep = 3 if ".".join(labels[-2:]) in _TWO_LABEL_SUFFIXES else 2
    return ".".join(labels[-keep:])


def aligned(from_domain: str, other: str) -> bool:
    """Relaxed alignment: both domains have the same organizational domain."""
    return organizational_domain(from_domain) == organizational_domain(other)


@dataclass(frozen=True)
class SenderDomains:
    """The domains one send uses, as digest's settings make it send."""

    from_domain: str
    envelope_domain: str  # SPF is checked here (the bounce address's, or Mailgun's domain)
    dkim_domain: str  # the d= of the signature receivers check
    envelope_source: str  # the setting that names the envelope domain, for the user to read
    dkim_source: str

    def spf_domains(self) -> list[str]:
        """Each domain whose SPF record matters, From domain first, no repeats."""
        return list(dict.fromkeys([self.from_domain, self.envelope_domain]))

    def mx_domains(self) -> list[str]:
        """Replies go to the From domain, bounces to the envelope domain: both must take mail."""
        return self.spf_domains()
