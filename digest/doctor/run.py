"""`digest doctor`'s use-case: the sender's DNS and settings against Gmail's and Yahoo's
bulk-sender rules (docs/deliverability.md), one :class:`Finding` per check."""

from __future__ import annotations

from dataclasses import dataclass

from digest.backends.dkim import (
    DKIM_DOMAIN,
    DKIM_PRIVATE_KEY_FILE,
    DKIM_SELECTOR,
    DkimSigner,
    dkim_signer,
)
from digest.backends.mailgun import MAILGUN_DOMAIN
from digest.backends.smtp_options import DIGEST_BOUNCE_ADDRESS
from digest.doctor.alignment import check_alignment
from digest.doctor.dkim import check_dkim
from digest.doctor.dmarc import check_dmarc
from digest.doctor.domains import SenderDomains, checked_domain, domain_of
from digest.doctor.lookup import DEFAULT_LIFETIME, DnsLookup
from digest.doctor.mx import check_mx
from digest.doctor.report import Finding
from digest.doctor.spf import check_spf
from digest.doctor.unsubscribe import check_unsubscribe
from digest.errors import ConfigError
from digest.settings import Settings


@dataclass(frozen=True)
class DoctorReport:
    domains: SenderDomains
    dns_server: str  # where the look-ups went, for the user to read
    findings: tuple[Finding, ...]

    @property
    def failures(self) -> list[Finding]:
        """The required checks that did not pass (`digest doctor` then exits 1)."""
        return [f for f in self.findings if f.blocks_sending]


def uses_mailgun(settings: Settings) -> bool:
    """Mailgun sends from its own domain: the envelope and the DKIM d= are MAILGUN_DOMAIN."""
    return settings.backend == "mailgun" and settings.is_set(MAILGUN_DOMAIN.env)


def sender_domains(settings: Settings, domain: str | None = None) -> SenderDomains:
    """The domains a send uses, as the settings make digest send; ``domain`` (``--domain``)
    stands for all three instead."""
    if domain is not None:
        checked = checked_domain(domain)
        if checked is None:
            raise ConfigError(
                f"--domain: {domain!r} is not a domain name that can send mail",
                hint="give the domain of your From address, e.g. --domain example.org",
            )
        return SenderDomains(checked, checked, checked, "--domain", "--domain")
    if not settings.from_address:
        raise ConfigError(
            "missing setting: DIGEST_FROM (the doctor checks its domain)",
            hint="set DIGEST_FROM in the environment or in .env, or pass --domain example.org",
        )
    from_domain = domain_of(settings.from_address)
    if from_domain is None:
        raise ConfigError(
            f"DIGEST_FROM: {settings.from_address!r} has no valid address and domain",
            hint='write it as "Name <local@example.org>"',
        )
    if uses_mailgun(settings):
        mailgun_domain = checked_domain(settings[MAILGUN_DOMAIN] or "")
        if mailgun_domain is None:
            raise ConfigError(f"MAILGUN_DOMAIN: {settings[MAILGUN_DOMAIN]!r} is no domain name")
        return SenderDomains(
            from_domain, mailgun_domain, mailgun_domain, "MAILGUN_DOMAIN", "MAILGUN_DOMAIN"
        )
    envelope, envelope_source = from_domain, "DIGEST_FROM"
    if (bounce := settings[DIGEST_BOUNCE_ADDRESS]) is not None:
        envelope_domain = domain_of(bounce)
        if envelope_domain is None:
            raise ConfigError(f"DIGEST_BOUNCE_ADDRESS: {bounce!r} is not a valid address")
        envelope, envelope_source = envelope_domain, "DIGEST_BOUNCE_ADDRESS"
    dkim, dkim_source = from_domain, "DIGEST_FROM"
    if (dkim_setting := settings[DKIM_DOMAIN]) is not None:
        dkim_domain = checked_domain(dkim_setting)
        if dkim_domain is None:
            raise ConfigError(f"DKIM_DOMAIN: {dkim_setting!r} is no domain name")
        dkim, dkim_source = dkim_domain, "DKIM_DOMAIN"
    return SenderDomains(from_domain, envelope, dkim, envelope_source, dkim_source)


def _signer(
    settings: Settings, domains: SenderDomains, *, mailgun: bool
) -> tuple[DkimSigner | None, str | None]:
    """The key digest signs with (SMTP and outbox), when DKIM_PRIVATE_KEY_FILE is set and the
    DKIM domain checked is the one it signs for; or what keeps it from signing."""
    if mailgun or not settings.is_set(DKIM_PRIVATE_KEY_FILE.env):
        return None, None
    try:
        signer = dkim_signer(settings)
    except ConfigError as exc:
        return None, str(exc)
    if signer is None or signer.domain != domains.dkim_domain:
        return None, None  # --domain names another domain than the key signs for
    return signer, None


def run_doctor(
    settings: Settings, domain: str | None = None, *, lifetime: float = DEFAULT_LIFETIME
) -> DoctorReport:
    """Look everything up (through DIGEST_DNS_SERVER when set) and judge it."""
    domains = sender_domains(settings, domain)
    lookup = DnsLookup(settings.dns_server, lifetime=lifetime)
    mailgun = uses_mailgun(settings) and domain is None
    findings: list[Finding] = []
    for spf_domain in domains.spf_domains():
        findings.append(
            check_spf(lookup, spf_domain, mailgun=mailgun and spf_domain == domains.envelope_domain)
        )
    signer, signer_problem = _signer(settings, domains, mailgun=mailgun)
    findings.append(
        check_dkim(
            lookup,
            domains.dkim_domain,
            settings[DKIM_SELECTOR],
            signer=signer,
            signer_problem=signer_problem,
            mailgun=mailgun,
        )
    )
    dmarc = check_dmarc(lookup, domains.from_domain)
    findings.append(dmarc.finding)
    for mx_domain in domains.mx_domains():
        receives = []
        if mx_domain == domains.from_domain:
            receives.append("replies")
        if mx_domain == domains.envelope_domain:
            receives.append("bounces")
        findings.append(
            check_mx(
                lookup,
                mx_domain,
                receives=" and ".join(receives),
                mailgun=mailgun and mx_domain == domains.envelope_domain,
            )
        )
    findings.append(check_alignment(domains, dmarc.tags, mailgun=mailgun))
    findings.append(
        check_unsubscribe(
            settings.unsubscribe_url, settings.unsubscribe_mailto, domains.from_domain
        )
    )
    return DoctorReport(domains, lookup.server_label, tuple(findings))
