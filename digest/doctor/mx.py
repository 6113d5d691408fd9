"""MX: the From domain receives replies, the envelope domain receives bounces; a domain that
takes no mail loses both (and some receivers refuse mail from such a domain)."""

from __future__ import annotations

from digest.doctor.lookup import DnsLookup, LookupFailed
from digest.doctor.report import Finding, Fix, mx_line

MAILGUN_MX = ("mxa.mailgun.org", "mxb.mailgun.org")


def check_mx(lookup: DnsLookup, domain: str, *, receives: str, mailgun: bool = False) -> Finding:
    """``receives``: what this domain's mail is, in words ("replies", "bounces")."""
    try:
        answer, exchanges = lookup.mx(domain)
    except LookupFailed as exc:
        return Finding("MX", domain, "ERROR", str(exc))
    if not answer.exists:
        return Finding(
            "MX", domain, "FAIL", f"{domain} does not exist in DNS (NXDOMAIN): {receives} are lost"
        )
    if not exchanges:
        if mailgun:
            fixes = tuple(Fix("add", mx_line(domain, host)) for host in MAILGUN_MX)
            notes: tuple[str, ...] = ()
        else:
            fixes = (Fix("add", mx_line(domain, f"mail.{domain}")),)
            notes = (
                f"mail.{domain}: the server that receives your mail (your mailbox "
                "provider names it)",
            )
        return Finding(
            "MX",
            domain,
            "FAIL",
            f"no MX record: {receives} to {domain} cannot be delivered",
            fixes=fixes,
            notes=notes,
        )
    hosts = [host for _, host in exchanges if host]
    if not hosts:
        return Finding(
            "MX",
            domain,
            "FAIL",
            f"null MX ('0 .'): {domain} declares it takes no mail, so {receives} are refused",
            fixes=(Fix("change", mx_line(domain, f"mail.{domain}")),),
        )
    return Finding("MX", domain, "OK", ", ".join(f"{p} {h}" for p, h in exchanges if h))
