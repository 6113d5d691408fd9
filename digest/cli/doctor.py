"""`digest doctor`: print, for each check, OK or the record to add or change."""

from __future__ import annotations

import click

from digest.cli import cli
from digest.cli.output import out
from digest.doctor import DoctorReport, Finding, run_doctor
from digest.settings import load_settings

_VERDICT_WIDTH = 6
_CHECK_WIDTH = 12
_INDENT = " " * (_VERDICT_WIDTH + 1)


def _finding_lines(finding: Finding) -> list[str]:
    lines = [
        f"{finding.verdict:<{_VERDICT_WIDTH}} {finding.check:<{_CHECK_WIDTH}} "
        f"{finding.subject}: {finding.message}"
    ]
    lines += [f"{_INDENT}{fix.kind}: {fix.line}" for fix in finding.fixes]
    lines += [f"{_INDENT}note: {note}" for note in finding.notes]
    return lines


def _header(report: DoctorReport) -> str:
    d = report.domains
    return (
        f"From domain {d.from_domain}; envelope (SPF) {d.envelope_domain} ({d.envelope_source}); "
        f"DKIM d={d.dkim_domain} ({d.dkim_source}); DNS: {report.dns_server}.\n"
        "Checked against Gmail's and Yahoo's bulk-sender rules (see docs/deliverability.md)."
    )


@cli.command("doctor")
@click.option(
    "--domain",
    metavar="DOMAIN",
    default=None,
    help="Check this domain (as From, envelope and DKIM domain) instead of the settings' ones.",
)
def doctor_command(domain: str | None) -> int:
    """Check the sender domain's DNS (SPF, DKIM, DMARC, MX) and one-click unsubscribe.

    \b
    Domains: DIGEST_FROM's; DIGEST_BOUNCE_ADDRESS's (or MAILGUN_DOMAIN with Mailgun) for SPF
    and MX; DKIM_DOMAIN (else the From domain) with DKIM_SELECTOR for DKIM.
    DIGEST_DNS_SERVER=host:port sends the look-ups to that server.

    Each line says OK, WARN (passes, with advice), FAIL (add or change the record shown)
    or ERROR (the DNS did not answer). Exit 0 when every required check passes, 1 when one
    fails or could not be looked up.
    """
    report = run_doctor(load_settings(), domain)
    lines = [_header(report), ""]
    for finding in report.findings:
        lines += _finding_lines(finding)
    failures = report.failures
    lines.append("")
    if failures:
        names = ", ".join(f"{f.check} {f.subject}" for f in failures)
        lines.append(
            f"{len(failures)} required check{'s' if len(failures) != 1 else ''} "
            f"{'do' if len(failures) != 1 else 'does'} not pass: {names}. "
            "Make the changes shown, wait for the DNS to update (up to the old record's TTL), "
            "and rerun `digest doctor`."
        )
    else:
        lines.append("All required checks pass.")
    out.print("\n".join(lines), markup=False)
    return 1 if failures else 0
