"""What the doctor found: one :class:`Finding` per check, and the DNS lines it suggests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# OK: meets the rule. WARN: meets it, but something is advised. FAIL: a required record or
# setting is missing or wrong. ERROR: the DNS could not tell (timeout, SERVFAIL).
Verdict = Literal["OK", "WARN", "FAIL", "ERROR"]
FixKind = Literal["add", "change", "set"]

TTL = 3600  # one hour: short enough to correct a mistake the same day
_TXT_CHUNK = 255  # a TXT string holds at most 255 bytes; longer values are several strings


@dataclass(frozen=True)
class Fix:
    """What to do: ``add`` or ``change`` a DNS record (``line`` in zone-file form, which most DNS
    hosts' forms also read as name / type / value), or ``set`` a setting in .env."""

    kind: FixKind
    line: str


@dataclass(frozen=True)
class Finding:
    check: str  # SPF, DKIM, DMARC, MX, Alignment, Unsubscribe
    subject: str  # the DNS name or setting that was looked at
    verdict: Verdict
    message: str
    fixes: tuple[Fix, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def blocks_sending(self) -> bool:
        """A required check that did not pass: `digest doctor` exits 1."""
        return self.verdict in ("FAIL", "ERROR")


def txt_line(name: str, value: str) -> str:
    """A TXT record as one zone-file line, split into 255-byte strings when longer."""
    chunks = [value[i : i + _TXT_CHUNK] for i in range(0, len(value), _TXT_CHUNK)] or [""]
    quoted = " ".join('"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks)
    return f"{name}. {TTL} IN TXT {quoted}"


def mx_line(name: str, exchange: str, preference: int = 10) -> str:
    return f"{name}. {TTL} IN MX {preference} {exchange}."


def shorten(text: str, limit: int = 90) -> str:
    """A record as shown in a verdict line: a long DKIM key is cut, the rest stays readable."""
    return text if len(text) <= limit else text[: limit - 3] + "..."
