"""DMARC (RFC 7489): one ``v=DMARC1`` TXT record at ``_dmarc.<From domain>`` (or at its
organizational domain) with a ``p=`` policy. Gmail and Yahoo accept ``p=none``; ``rua=`` brings
the reports that show when a stronger policy is safe."""

from __future__ import annotations

from dataclasses import dataclass, field

from digest.doctor.domains import organizational_domain
from digest.doctor.lookup import DnsLookup, LookupFailed
from digest.doctor.report import Finding, Fix, shorten, txt_line
from digest.doctor.tags import parse_tags

POLICIES = ("none", "quarantine", "reject")
_STRONGER = (
    "p=none meets Gmail's and Yahoo's rule but only watches; stronger: p=quarantine (mail "
    "failing DMARC goes to spam), then p=reject (it is refused), once the rua= reports show "
    "all your own mail passing: then no one can send mail that looks like yours"
)


@dataclass(frozen=True)
class DmarcResult:
    finding: Finding
    tags: dict[str, str] = field(default_factory=dict)  # of the record in force, when readable


def _is_dmarc(record: str) -> bool:
    first = record.split(";", 1)[0].replace(" ", "")
    return first.lower() == "v=dmarc1"


def _record(tags: dict[str, str]) -> str:
    """Tags back into a record, v first and p second as RFC 7489 asks."""
    ordered = {"v": "DMARC1", "p": tags.get("p", "none"), **tags}
    ordered["v"] = "DMARC1"
    return "; ".join(f"{k}={v}" for k, v in ordered.items())


def check_dmarc(lookup: DnsLookup, from_domain: str) -> DmarcResult:
    name = f"_dmarc.{from_domain}"
    report_to = f"mailto:dmarc-reports@{from_domain}"
    wanted = txt_line(name, f"v=DMARC1; p=none; rua={report_to}")
    rua_note = (
        f"rua= names a mailbox you read (or a DMARC report service) for the daily reports; "
        f"create {report_to[7:]} or use another address",
    )
    try:
        answer = lookup.txt(name)
        records = [r for r in answer.records if _is_dmarc(r)]
        used_name = name
        org = organizational_domain(from_domain)
        if not answer.records and org != from_domain:
            # RFC 7489 §6.6.3: a subdomain without its own record falls under its
            # organizational domain's (its sp= policy, else p=).
            parent = lookup.txt(f"_dmarc.{org}")
            if [r for r in parent.records if _is_dmarc(r)]:
                answer, used_name = parent, f"_dmarc.{org}"
                records = [r for r in parent.records if _is_dmarc(r)]
    except LookupFailed as exc:
        return DmarcResult(Finding("DMARC", name, "ERROR", str(exc)))
    if not records:
        others = [shorten(r, 50) for r in answer.records]
        found = f" (the TXT there is no DMARC record: {others[0]!r})" if others else ""
        return DmarcResult(
            Finding(
                "DMARC",
                name,
                "FAIL",
                f"no DMARC record{found}: Gmail and Yahoo require one for bulk senders",
                fixes=(Fix("add", wanted),),
                notes=rua_note,
            )
        )
    if len(records) > 1:
        return DmarcResult(
            Finding(
                "DMARC",
                used_name,
                "FAIL",
                f"{len(records)} DMARC records: receivers ignore DMARC then; keep exactly one",
                fixes=(Fix("change", txt_line(used_name, f"v=DMARC1; p=none; rua={report_to}")),),
            )
        )
    record = records[0]
    shown = shorten(record)
    tags = parse_tags(record)
    if tags is None:
        return DmarcResult(
            Finding(
                "DMARC",
                used_name,
                "FAIL",
                f"{shown}: cannot be read (not tag=value; pairs)",
                fixes=(Fix("change", wanted),),
            )
        )
    inherited = used_name != name
    policy_tag = "sp" if inherited and "sp" in tags else "p"
    policy = tags.get(policy_tag)
    if "p" not in tags:
        return DmarcResult(
            Finding(
                "DMARC",
                used_name,
                "FAIL",
                f"{shown}: no p= policy, so the record does not count",
                fixes=(Fix("change", txt_line(used_name, _record({**tags, "p": "none"}))),),
            ),
            tags,
        )
    if policy is None or policy.lower() not in POLICIES:
        return DmarcResult(
            Finding(
                "DMARC",
                used_name,
                "FAIL",
                f"{shown}: {policy_tag}={policy} is no policy (none, quarantine or reject)",
                fixes=(Fix("change", txt_line(used_name, _record({**tags, policy_tag: "none"}))),),
            ),
            tags,
        )
    notes: list[str] = []
    if inherited:
        notes.append(f"{from_domain} has no record of its own; {used_name} applies to it")
    if policy.lower() == "none":
        notes.append(_STRONGER)
    if "rua" not in tags:
        return DmarcResult(
            Finding(
                "DMARC",
                used_name,
                "WARN",
                f"{shown}: policy {policy}, but no rua= to receive the reports",
                fixes=(Fix("change", txt_line(used_name, _record({**tags, "rua": report_to}))),),
                notes=(*notes, *rua_note),
            ),
            tags,
        )
    return DmarcResult(
        Finding("DMARC", used_name, "OK", f"{shown}", notes=tuple(notes)),
        tags,
    )
