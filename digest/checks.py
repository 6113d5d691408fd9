"""The one registry of checks that ``digest build``, ``digest validate``, ``digest send`` and the
preview's checks panel all run, so they all say the same thing about an edition.

A check looks at what subscribers will get (:class:`Subject`: the edition, and the email filled
with sample values) and returns :class:`Finding` records: ``ok``, ``info``, ``warn`` or
``error``, a title, a one-line detail and, where useful, the items concerned. ``warn`` and
``error`` findings are what the command line prints as warnings; the preview shows them all.

Adding a check is one decorated function, anywhere that is imported before the checks run (a
module of this package, or a plug-in)::

    from digest.checks import Finding, Subject, check

    @check("Item summaries", order=35)
    def summaries(subject: Subject) -> Finding | None:
        bare = [
            item.title
            for section in subject.edition.sections
            for item in section.items
            if not item.summary
        ]
        if bare:
            return Finding("warn", "Item summaries", f"{len(bare)} without one", tuple(bare))
        return None

Return one Finding, several (any iterable), or None for nothing to say. ``order`` places it in
the panel (the built-in ones use 10, 20, 30...). A check must not fail on odd content: it is
given rendered, valid editions, and an exception in it is reported as an ``error`` finding
naming it, never a traceback. Checks that need the network (``digest links``) run in their own
command and leave their results for the panel; they are not registered here.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from html.parser import HTMLParser
from typing import Any, Literal

from digest.edition.model import Edition
from digest.link_results import LinkRun

Level = Literal["ok", "info", "warn", "error"]
WARNING_LEVELS = frozenset({"warn", "error"})

# Gmail clips messages whose HTML is larger than about 102 KB behind a "[Message clipped]" link,
# which also hides the unsubscribe link at the bottom; warn a little before.
GMAIL_CLIP_BYTES = 102 * 1024
SIZE_WARN_BYTES = 90 * 1024
# RFC 5322 recommends header lines of at most 78 characters; most inboxes cut subjects near there.
SUBJECT_MAX_CHARS = 78
# Inboxes show roughly 40-140 characters of preheader, depending on client and width.
PREHEADER_MIN_CHARS = 40
PREHEADER_MAX_CHARS = 140
_STYLE_BLOCK = re.compile(r"(<style\b[^>]*>)(.*?)(</style\s*>)", re.IGNORECASE | re.DOTALL)
_DARK_QUERY = re.compile(r"\(\s*prefers-color-scheme\s*:\s*dark\s*\)", re.IGNORECASE)


@dataclass(frozen=True)
class Finding:
    """What one check says."""

    level: Level
    title: str
    detail: str
    items: tuple[str, ...] = field(default_factory=tuple)

    @property
    def is_warning(self) -> bool:
        return self.level in WARNING_LEVELS

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["items"] = list(self.items)
        return data

    def __str__(self) -> str:
        """As the command line prints a warning: ``Title: detail``."""
        return f"{self.title}: {self.detail}"


@dataclass(frozen=True)
class Subject:
    """What the checks look at: the edition, and its email as a sample subscriber gets it."""

    edition: Edition
    html: str
    text: str

    @property
    def html_bytes(self) -> int:
        return len(self.html.encode("utf-8"))


CheckFunction = Callable[[Subject], "Finding | Iterable[Finding] | None"]


@dataclass(frozen=True)
class _Registered:
    name: str
    order: int
    function: CheckFunction


_REGISTRY: dict[str, _Registered] = {}


def check(name: str, *, order: int = 100) -> Callable[[CheckFunction], CheckFunction]:
    """Register the decorated function as the check ``name`` (registering a name again
    replaces it, so a plug-in can override a built-in check)."""

    def register(function: CheckFunction) -> CheckFunction:
        _REGISTRY[name] = _Registered(name, order, function)
        return function

    return register


def registered_checks() -> list[str]:
    """The names of every registered check, in the order they run."""
    return [r.name for r in sorted(_REGISTRY.values(), key=lambda r: (r.order, r.name))]


def run_checks(subject: Subject) -> list[Finding]:
    """Every registered check's findings, in order."""
    findings: list[Finding] = []
    for registered in sorted(_REGISTRY.values(), key=lambda r: (r.order, r.name)):
        try:
            result = registered.function(subject)
        except Exception as exc:  # a check's own bug must not stop build, validate or send
            findings.append(
                Finding("error", registered.name, f"the check failed: {type(exc).__name__}")
            )
            continue
        if result is None:
            continue
        findings.extend([result] if isinstance(result, Finding) else result)
    return findings


def warnings_of(findings: Iterable[Finding]) -> list[Finding]:
    """The findings the command line prints as warnings."""
    return [finding for finding in findings if finding.is_warning]


def last_link_check_finding(run: LinkRun | None, now: float) -> Finding:
    """What the last ``digest links`` of this edition found, for the preview's panel. Not a
    registered check: asking every address on each save would be slow and impolite."""
    if run is None:
        return Finding("info", "Link check", "not run yet: digest links EDITION checks every link")
    minutes = max(0, int(now - run.checked_at) // 60)
    age = f"{minutes} min ago" if minutes < 120 else f"{minutes // 60} h ago"
    if run.broken:
        items = tuple(f"{b['where']}: {b['status']}: {b['url']}" for b in run.broken)
        count = len({b["url"] for b in run.broken})  # one address may sit at several places
        return Finding("error", "Broken links", f"{count} broken at the last check ({age})", items)
    notes = tuple(f"{n['where']}: {n['note']}" for n in run.notes)
    return Finding(
        "info" if notes else "ok",
        "Link check",
        f"all {run.links} link(s) reachable at the last check ({age})",
        notes,
    )


# -- the built-in checks -----------------------------------------------------------------------


@check("HTML size", order=10)
def size_check(subject: Subject) -> Finding:
    size = subject.html_bytes
    kb = size / 1024
    limit = f"Gmail clips messages over {GMAIL_CLIP_BYTES // 1024} KB"
    hidden = "and hides the unsubscribe link with the rest; shorten the edition"
    if size > GMAIL_CLIP_BYTES:
        return Finding("error", "HTML size", f"{kb:.0f} KB: over the clip; {limit} {hidden}")
    if size > SIZE_WARN_BYTES:
        return Finding("warn", "HTML size", f"{kb:.0f} KB: close to the clip; {limit} {hidden}")
    return Finding("ok", "HTML size", f"{kb:.1f} KB of {GMAIL_CLIP_BYTES // 1024} KB ({limit})")


@check("Subject length", order=20)
def subject_check(subject: Subject) -> Finding:
    text = subject.edition.subject
    n = len(text)
    if n > SUBJECT_MAX_CHARS:
        return Finding(
            "warn",
            "Subject length",
            f"{n} characters: inboxes cut it near {SUBJECT_MAX_CHARS}",
            (text[:SUBJECT_MAX_CHARS] + "…",),
        )
    return Finding("ok", "Subject length", f"{n} characters (at most {SUBJECT_MAX_CHARS})")


@check("Preheader", order=30)
def preheader_check(subject: Subject) -> Finding:
    preheader = subject.edition.preheader
    if not preheader:
        return Finding(
            "warn", "Preheader", "none: inboxes will preview the first words of the email instead"
        )
    n = len(preheader)
    if n < PREHEADER_MIN_CHARS:
        return Finding(
            "warn",
            "Preheader length",
            f"{n} characters: short; inboxes fill the rest with the email's first text",
        )
    if n > PREHEADER_MAX_CHARS:
        return Finding(
            "warn", "Preheader length", f"{n} characters: inboxes show about the first 100-140"
        )
    return Finding(
        "ok",
        "Preheader length",
        f"{n} characters ({PREHEADER_MIN_CHARS}-{PREHEADER_MAX_CHARS} fit most inboxes)",
    )


class _LinkAndImageScanner(HTMLParser):
    """Collects every ``<a href>`` and every ``<img>`` (with its alt, if any)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.images: list[tuple[str, str | None]] = []  # (src, alt or None when absent)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a" and values.get("href") is not None:
            self.hrefs.append((values["href"] or "").strip())
        elif tag == "img":
            self.images.append(((values.get("src") or "").strip(), values.get("alt")))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)


@functools.lru_cache(maxsize=4)  # the links and the images check read the same HTML
def _scan(html: str) -> _LinkAndImageScanner:
    scanner = _LinkAndImageScanner()
    scanner.feed(html)
    scanner.close()
    return scanner


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


@check("Links", order=40)
def link_checks(subject: Subject) -> list[Finding]:
    hrefs = _scan(subject.html).hrefs
    insecure = _unique(h for h in hrefs if h.lower().startswith("http://"))
    other = _unique(
        h for h in hrefs if not h.lower().startswith(("https://", "http://", "mailto:", "#"))
    )
    findings: list[Finding] = []
    if insecure:
        findings.append(
            Finding("warn", "Links not https", f"{len(insecure)} link(s) use plain http", insecure)
        )
    else:
        findings.append(Finding("ok", "Links", f"{len(hrefs)} link(s), all https or mailto"))
    if other:
        findings.append(
            Finding("error", "Odd link targets", f"{len(other)} link(s) are not web links", other)
        )
    return findings


@check("Images", order=50)
def image_check(subject: Subject) -> Finding:
    images = _scan(subject.html).images
    missing = _unique(src or "(no src)" for src, alt in images if alt is None)
    if missing:
        return Finding(
            "warn",
            "Images without alt",
            f"{len(missing)} of {len(images)} image(s) have no alt text",
            missing,
        )
    return Finding("ok", "Images", f"{len(images)} image(s), each with alt text")


def count_dark_rules(html: str) -> int:
    """How many ``prefers-color-scheme: dark`` media conditions the email's styles hold."""
    return sum(len(_DARK_QUERY.findall(m.group(2))) for m in _STYLE_BLOCK.finditer(html))


@check("Dark mode", order=60)
def dark_mode_check(subject: Subject) -> Finding:
    rules = count_dark_rules(subject.html)
    if rules:
        return Finding(
            "info",
            "Dark mode",
            f"{rules} prefers-color-scheme: dark rule block(s); switch to dark to see them",
        )
    return Finding(
        "info", "Dark mode", "no dark-mode rules: clients that darken emails decide on their own"
    )
