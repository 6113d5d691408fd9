"""Alignment (DMARC): SPF or DKIM must pass for a domain aligned with the From domain. Gmail and
Yahoo ask for at least one; DKIM's survives forwarding, so both is better."""

from __future__ import annotations

from collections.abc import Mapping

from digest.doctor.domains import SenderDomains, aligned
from digest.doctor.report import Finding, Fix


def _aligns(from_domain: str, other: str, mode: str) -> bool:
    """``mode`` is DMARC's adkim= / aspf=: ``s`` strict (the same domain), else relaxed."""
    return from_domain == other if mode == "s" else aligned(from_domain, other)


def check_alignment(
    domains: SenderDomains, dmarc_tags: Mapping[str, str], *, mailgun: bool = False
) -> Finding:
    sender = domains.from_domain
    dkim_ok = _aligns(sender, domains.dkim_domain, dmarc_tags.get("adkim", "r").lower())
    spf_ok = _aligns(sender, domains.envelope_domain, dmarc_tags.get("aspf", "r").lower())
    dkim_text = f"DKIM d={domains.dkim_domain} ({domains.dkim_source})"
    spf_text = f"SPF {domains.envelope_domain} ({domains.envelope_source})"
    subject = f"From {sender}"
    if dkim_ok and spf_ok:
        return Finding("Alignment", subject, "OK", f"aligned with {dkim_text} and {spf_text}")
    dkim_fix = (
        Fix("set", f"DIGEST_FROM=<name> <address@{domains.dkim_domain}>")
        if mailgun
        else Fix("set", f"DKIM_DOMAIN={sender}")
    )
    spf_fix = Fix("set", f"DIGEST_BOUNCE_ADDRESS=bounces@{sender}")
    if dkim_ok:
        return Finding(
            "Alignment",
            subject,
            "OK",
            f"aligned with {dkim_text}; not with {spf_text}, which DMARC does not need",
        )
    if spf_ok:
        return Finding(
            "Alignment",
            subject,
            "WARN",
            f"aligned with {spf_text} only, not with {dkim_text}: forwarded mail then fails DMARC",
            fixes=(dkim_fix,),
        )
    return Finding(
        "Alignment",
        subject,
        "FAIL",
        f"aligned with neither {dkim_text} nor {spf_text}: every message fails DMARC",
        fixes=(dkim_fix,) if mailgun else (dkim_fix, spf_fix),
    )
