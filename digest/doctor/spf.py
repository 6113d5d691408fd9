"""SPF (RFC 7208): the domain publishes exactly one ``v=spf1`` TXT record that ends in ``-all``
or ``~all`` and needs at most 10 DNS look-ups to evaluate."""

from __future__ import annotations

import re
from dataclasses import dataclass

from digest.doctor.lookup import DnsLookup, LookupFailed
from digest.doctor.report import Finding, Fix, shorten, txt_line

LOOKUP_LIMIT = 10  # RFC 7208 §4.6.4: more and receivers return permerror (SPF fails)
_LOOKUP_TERMS = ("include", "a", "mx", "ptr", "exists")  # mechanisms that cost a look-up
_MECHANISM = re.compile(
    r"(?P<qualifier>[+\-~?]?)(?P<name>all|include|a|mx|ptr|ip4|ip6|exists)"
    r"(?P<rest>[:/].*)?$",
    re.IGNORECASE,
)
_MODIFIER = re.compile(r"(?P<name>[a-z][a-z0-9_.-]*)=(?P<value>.*)$", re.IGNORECASE)
_MAILGUN_INCLUDE = "include:mailgun.org"


def is_spf(record: str) -> bool:
    return record.lower() == "v=spf1" or record.lower().startswith("v=spf1 ")


@dataclass(frozen=True)
class _Parsed:
    terms: tuple[str, ...]  # everything after v=spf1, as written
    all_qualifier: str | None  # "+", "-", "~", "?" of the all term; None when there is none
    redirect: str | None
    unknown: tuple[str, ...]  # terms that are neither a mechanism nor a modifier


def _parse(record: str) -> _Parsed:
    terms = tuple(record.split()[1:])
    all_qualifier: str | None = None
    redirect: str | None = None
    unknown: list[str] = []
    for term in terms:
        mechanism = _MECHANISM.match(term)
        if mechanism:
            if mechanism["name"].lower() == "all" and not mechanism["rest"]:
                all_qualifier = mechanism["qualifier"] or "+"
            elif mechanism["name"].lower() in ("include", "exists", "ip4", "ip6") and not (
                mechanism["rest"] or ""
            ).startswith(":"):
                unknown.append(term)  # include with no domain, say
            continue
        modifier = _MODIFIER.match(term)
        if modifier:
            if modifier["name"].lower() == "redirect":
                redirect = modifier["value"]
            continue
        unknown.append(term)
    return _Parsed(terms, all_qualifier, redirect, tuple(unknown))


def suggested_record(envelope_of_mailgun: bool) -> str:
    """A starting record: Mailgun's include for a Mailgun domain, else the domain's own MX
    hosts (replace or extend with your relay's include, which its documentation gives)."""
    return f"v=spf1 {_MAILGUN_INCLUDE} ~all" if envelope_of_mailgun else "v=spf1 mx ~all"


def check_spf(lookup: DnsLookup, domain: str, *, mailgun: bool = False) -> Finding:
    """The SPF finding for ``domain``; ``mailgun`` when Mailgun sends for it (its include is
    then what to add)."""
    try:
        answer = lookup.txt(domain)
    except LookupFailed as exc:
        return Finding("SPF", domain, "ERROR", str(exc))
    if not answer.exists:
        return Finding(
            "SPF",
            domain,
            "FAIL",
            f"{domain} does not exist in DNS (NXDOMAIN): no one can receive or verify its mail",
            notes=("register the domain or correct DIGEST_FROM / DIGEST_BOUNCE_ADDRESS",),
        )
    records = [r for r in answer.records if is_spf(r)]
    relay_note: tuple[str, ...] = ()
    if not mailgun:
        relay_note = (
            "'mx' allows this domain's own mail servers; if mail leaves through a relay "
            "(SMTP_HOST), add the include: its documentation gives (include:_spf.relay.example)",
        )
    if not records:
        return Finding(
            "SPF",
            domain,
            "FAIL",
            "no SPF record (TXT v=spf1): Gmail and Yahoo require SPF for bulk senders",
            fixes=(Fix("add", txt_line(domain, suggested_record(mailgun))),),
            notes=relay_note,
        )
    if len(records) > 1:
        merged = _merge(records)
        return Finding(
            "SPF",
            domain,
            "FAIL",
            f"{len(records)} SPF records; receivers then fail SPF (permerror): keep exactly one",
            fixes=(Fix("change", txt_line(domain, merged)),),
            notes=tuple(f"remove: {txt_line(domain, r)}" for r in records),
        )
    record = records[0]
    parsed = _parse(record)
    shown = shorten(record)
    if parsed.unknown:
        return Finding(
            "SPF",
            domain,
            "FAIL",
            f"{shown}: cannot be read ({', '.join(repr(u) for u in parsed.unknown)} is no SPF "
            "term); receivers fail SPF (permerror)",
            fixes=(Fix("change", txt_line(domain, _without(parsed, parsed.unknown))),),
        )
    if parsed.all_qualifier == "+":
        return Finding(
            "SPF",
            domain,
            "FAIL",
            f"{shown}: '+all' lets anyone in the world send as {domain}",
            fixes=(Fix("change", txt_line(domain, _with_all(parsed, "~all"))),),
        )
    count, problems = _count_lookups(lookup, parsed, seen={domain})
    if problems:
        return Finding(
            "SPF",
            domain,
            "FAIL",
            f"{shown}: {'; '.join(problems)}; receivers fail SPF (permerror)",
        )
    if count > LOOKUP_LIMIT:
        return Finding(
            "SPF",
            domain,
            "FAIL",
            f"{shown}: needs {count} DNS look-ups, more than the {LOOKUP_LIMIT} allowed; "
            "receivers fail SPF (permerror)",
            notes=(
                "replace include:/a/mx terms by the ip4:/ip6: ranges they name, or drop "
                "senders you no longer use",
            ),
        )
    looked = f"{count} of {LOOKUP_LIMIT} DNS look-ups"
    if parsed.all_qualifier in ("-", "~") or parsed.redirect:
        return Finding("SPF", domain, "OK", f"{shown} ({looked})")
    if parsed.all_qualifier == "?":
        why = "'?all' says nothing about other senders"
    else:
        why = "no 'all' at the end: mail from other servers is neither passed nor failed"
    return Finding(
        "SPF",
        domain,
        "WARN",
        f"{shown}: {why} ({looked})",
        fixes=(Fix("change", txt_line(domain, _with_all(parsed, "~all"))),),
    )


def _count_lookups(
    lookup: DnsLookup, parsed: _Parsed, *, seen: set[str], depth: int = 0
) -> tuple[int, list[str]]:
    """DNS look-ups the record costs, following include: and redirect= (each counts itself and
    what its record costs); and the includes that cannot be evaluated."""
    count = 0
    problems: list[str] = []
    targets: list[str] = []
    for term in parsed.terms:
        mechanism = _MECHANISM.match(term)
        if mechanism and mechanism["name"].lower() in _LOOKUP_TERMS:
            count += 1
            if mechanism["name"].lower() == "include":
                targets.append((mechanism["rest"] or ":")[1:])
    if parsed.redirect:
        count += 1
        targets.append(parsed.redirect)
    for target in targets:
        target = target.rstrip(".").lower()
        if "%" in target or target in seen or depth >= LOOKUP_LIMIT:
            continue  # a macro is expanded per message; a loop is counted once
        seen.add(target)
        try:
            answer = lookup.txt(target)
        except LookupFailed as exc:
            problems.append(f"include:{target} could not be looked up ({exc})")
            continue
        found = [r for r in answer.records if is_spf(r)]
        if len(found) != 1:
            problems.append(
                f"include:{target} has {'no' if not found else len(found)} SPF record"
                f"{'s' if len(found) > 1 else ''}"
            )
            continue
        more, deeper = _count_lookups(lookup, _parse(found[0]), seen=seen, depth=depth + 1)
        count += more
        problems.extend(deeper)
    return count, problems


def _with_all(parsed: _Parsed, ending: str) -> str:
    kept = [t for t in parsed.terms if not _is_all(t)]
    return " ".join(["v=spf1", *kept, ending])


def _without(parsed: _Parsed, drop: tuple[str, ...]) -> str:
    kept = [t for t in parsed.terms if t not in drop and not _is_all(t)]
    ending = f"{parsed.all_qualifier}all" if parsed.all_qualifier in ("-", "~") else "~all"
    return " ".join(["v=spf1", *kept, ending])


def _merge(records: list[str]) -> str:
    """One record holding every sender the separate records allowed, ending in the strictest
    of their -all / ~all (~all when none has one)."""
    terms: list[str] = []
    endings: set[str] = set()
    for record in records:
        parsed = _parse(record)
        if parsed.all_qualifier:
            endings.add(parsed.all_qualifier)
        for term in parsed.terms:
            if not _is_all(term) and term not in terms:
                terms.append(term)
    ending = "-all" if "-" in endings else "~all"
    return " ".join(["v=spf1", *terms, ending])


def _is_all(term: str) -> bool:
    return term.lower().lstrip("+-~?") == "all"
