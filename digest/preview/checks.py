"""The checks panel: what a curator should fix before sending, read off the rendered email.

Each check looks at what subscribers will get (the filled HTML, the subject, the preheader) and
says ``ok``, ``warn`` or ``error`` with a one-line detail and, where useful, the offending items.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from html.parser import HTMLParser
from typing import Any, Literal

from digest.link_results import LinkRun
from digest.render.email import GMAIL_CLIP_WARNING_BYTES, SUBJECT_WARNING_CHARS

# Gmail clips messages whose HTML is larger than about 102 KB behind a "[Message clipped]" link,
# which also hides the unsubscribe link at the bottom.
GMAIL_CLIP_BYTES = 102 * 1024
SIZE_WARN_BYTES = GMAIL_CLIP_WARNING_BYTES  # the same threshold as `digest build`'s warning
# RFC 5322 recommends header lines of at most 78 characters; most inboxes cut subjects near there.
SUBJECT_MAX_CHARS = SUBJECT_WARNING_CHARS
# Inboxes show roughly 40-140 characters of preheader, depending on client and width.
PREHEADER_MIN_CHARS = 40
PREHEADER_MAX_CHARS = 140
# Topics of the renderer's warnings (RenderWarning.topic) that a check below covers already.
_CHECKED_TOPICS = frozenset({"size", "subject", "preheader"})

Level = Literal["ok", "info", "warn", "error"]


@dataclass(frozen=True)
class Check:
    level: Level
    title: str
    detail: str
    items: tuple[str, ...] = field(default_factory=tuple)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["items"] = list(self.items)
        return data


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


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def size_check(html_bytes: int) -> Check:
    kb = html_bytes / 1024
    limit = f"Gmail clips at {GMAIL_CLIP_BYTES // 1024} KB"
    if html_bytes > GMAIL_CLIP_BYTES:
        return Check("error", "HTML size", f"{kb:.1f} KB: over the clip; {limit}")
    if html_bytes > SIZE_WARN_BYTES:
        return Check("warn", "HTML size", f"{kb:.1f} KB: close to the clip; {limit}")
    return Check("ok", "HTML size", f"{kb:.1f} KB of {GMAIL_CLIP_BYTES // 1024} KB ({limit})")


def subject_check(subject: str) -> Check:
    n = len(subject)
    if n > SUBJECT_MAX_CHARS:
        return Check(
            "warn",
            "Subject length",
            f"{n} characters: inboxes cut it near {SUBJECT_MAX_CHARS}",
            (subject[:SUBJECT_MAX_CHARS] + "…",),
        )
    return Check("ok", "Subject length", f"{n} characters (at most {SUBJECT_MAX_CHARS})")


def preheader_check(preheader: str | None) -> Check:
    if not preheader:
        return Check(
            "warn", "Preheader", "none: inboxes will show the first text of the email instead"
        )
    n = len(preheader)
    if n < PREHEADER_MIN_CHARS:
        return Check(
            "warn",
            "Preheader length",
            f"{n} characters: short; inboxes fill the rest with the email's first text",
        )
    if n > PREHEADER_MAX_CHARS:
        return Check(
            "warn", "Preheader length", f"{n} characters: inboxes show about the first 100-140"
        )
    return Check(
        "ok",
        "Preheader length",
        f"{n} characters ({PREHEADER_MIN_CHARS}-{PREHEADER_MAX_CHARS} fit most inboxes)",
    )


def link_checks(hrefs: Iterable[str]) -> list[Check]:
    hrefs = list(hrefs)
    insecure = _unique(h for h in hrefs if h.lower().startswith("http://"))
    other = _unique(
        h for h in hrefs if not h.lower().startswith(("https://", "http://", "mailto:", "#"))
    )
    checks: list[Check] = []
    if insecure:
        checks.append(
            Check("warn", "Links not https", f"{len(insecure)} link(s) use plain http", insecure)
        )
    else:
        checks.append(Check("ok", "Links", f"{len(hrefs)} link(s), all https or mailto"))
    if other:
        checks.append(
            Check("error", "Odd link targets", f"{len(other)} link(s) are not web links", other)
        )
    return checks


def image_check(images: Iterable[tuple[str, str | None]]) -> Check:
    images = list(images)
    missing = _unique(src or "(no src)" for src, alt in images if alt is None)
    if missing:
        return Check(
            "warn",
            "Images without alt",
            f"{len(missing)} of {len(images)} image(s) have no alt text",
            missing,
        )
    return Check("ok", "Images", f"{len(images)} image(s), each with alt text")


def links_check(run: LinkRun | None, now: float) -> Check:
    """The results of the last ``digest links`` of this edition (it is not run on each save:
    asking every address is slow and impolite)."""
    if run is None:
        return Check("info", "Link check", "not run yet: digest links EDITION checks every link")
    minutes = max(0, int(now - run.checked_at) // 60)
    age = f"{minutes} min ago" if minutes < 120 else f"{minutes // 60} h ago"
    if run.broken:
        items = tuple(f"{b['where']}: {b['status']}: {b['url']}" for b in run.broken)
        count = len({b["url"] for b in run.broken})  # one address may sit at several places
        return Check("error", "Broken links", f"{count} broken at the last check ({age})", items)
    notes = tuple(f"{n['where']}: {n['note']}" for n in run.notes)
    return Check(
        "info" if notes else "ok",
        "Link check",
        f"all {run.links} link(s) reachable at the last check ({age})",
        notes,
    )


def dark_mode_check(dark_rules: int) -> Check:
    if dark_rules:
        return Check(
            "info",
            "Dark mode",
            f"{dark_rules} prefers-color-scheme: dark rule block(s); switch to dark to see them",
        )
    return Check(
        "info", "Dark mode", "no dark-mode rules: clients that darken emails decide on their own"
    )


def run_checks(
    *,
    html: str,
    subject: str,
    preheader: str | None,
    warnings: Iterable[str],
    dark_rules: int,
) -> list[Check]:
    """Every check of the panel, in the order it shows them."""
    scanner = _LinkAndImageScanner()
    scanner.feed(html)
    scanner.close()
    checks = [
        size_check(len(html.encode("utf-8"))),
        subject_check(subject),
        preheader_check(preheader),
        *link_checks(scanner.hrefs),
        image_check(scanner.images),
        dark_mode_check(dark_rules),
    ]
    # The size, subject and preheader checks above say what the renderer's warnings on those
    # topics say (with more detail): show the renderer's other warnings only.
    checks.extend(
        Check("warn", "Render warning", warning)
        for warning in warnings
        if getattr(warning, "topic", None) not in _CHECKED_TOPICS
    )
    return checks
