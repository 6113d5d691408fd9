"""One-click unsubscribe (RFC 8058), which Gmail and Yahoo require of bulk senders: digest sends
``List-Unsubscribe: <https://...>`` and ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``
when DIGEST_UNSUBSCRIBE_URL is an https link."""

from __future__ import annotations

from digest.doctor.report import Finding, Fix


def check_unsubscribe(url: str | None, mailto: str | None, domain: str) -> Finding:
    subject = "DIGEST_UNSUBSCRIBE_URL"
    fix = Fix("set", f"DIGEST_UNSUBSCRIBE_URL=https://{domain}/unsubscribe/{{token}}")
    serve = "`digest serve-unsubscribe` answers at that URL's path (behind your https proxy)"
    if url is None:
        alone = "; a mailto: link alone is not one-click" if mailto else ""
        return Finding(
            "Unsubscribe",
            subject,
            "FAIL",
            f"not set: no one-click unsubscribe (RFC 8058){alone}; Gmail and Yahoo require it",
            fixes=(fix,),
            notes=(serve,),
        )
    if not url.lower().startswith("https://"):
        return Finding(
            "Unsubscribe",
            subject,
            "FAIL",
            f"{url} is plain http (fine for a local test): one-click unsubscribe needs https",
            fixes=(fix,),
            notes=(serve,),
        )
    return Finding(
        "Unsubscribe",
        subject,
        "OK",
        "https link: every message carries List-Unsubscribe and List-Unsubscribe-Post "
        "(one-click, RFC 8058)",
    )
