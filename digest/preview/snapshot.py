"""One render of the edition for the preview: the email filled for a sample subscriber, or the
problems that stopped it.

:func:`render_snapshot` never raises: a broken edition or template comes back as a
:class:`RenderFailure` whose lines read ``file:line:col: field: message``, so the server can keep
showing the last good render under an overlay.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from email.utils import formataddr
from pathlib import Path
from typing import TYPE_CHECKING, Any

from digest.checks import (
    Finding,
    Subject,
    count_dark_rules,
    last_link_check_finding,
    run_checks,
    warnings_of,
)
from digest.edition.load import load_edition
from digest.errors import DigestError, ProblemsError
from digest.link_results import last_link_check
from digest.newsletter import find_newsletter
from digest.render.email import render_edition
from digest.render.sample import sample_values
from digest.render.web import render_web_page
from digest.settings import Settings

if TYPE_CHECKING:
    from digest.audience.subscribers import Subscriber


@dataclass(frozen=True)
class PreviewOptions:
    """What to preview and how: the CLI and the tests build one of these."""

    edition_path: Path
    settings: Settings
    templates_dir: Path | None = None  # None: the renderer's default email_templates/
    subscribers: Path | None = None  # first subscribed row personalises the preview


@dataclass(frozen=True)
class Snapshot:
    """A good render, as the page shows it."""

    slug: str
    from_line: str
    to_line: str
    subject: str
    preheader: str | None
    html: str  # filled with the sample subscriber's values, exactly as sent
    web_html: str  # the web edition, as `digest publish` writes it (no personal data)
    text: str
    html_bytes: int
    dark_rules: int
    checks: tuple[Finding, ...]
    warnings: tuple[str, ...]
    render_ms: float

    def as_json(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "from": self.from_line,
            "to": self.to_line,
            "subject": self.subject,
            "preheader": self.preheader or "",
            "text": self.text,
            "html_source": self.html,
            "html_bytes": self.html_bytes,
            "dark_rules": self.dark_rules,
            "checks": [check.as_json() for check in self.checks],
            "warnings": list(self.warnings),
            "render_ms": round(self.render_ms, 1),
        }


@dataclass(frozen=True)
class RenderFailure:
    """Why the latest save could not be rendered; each line ``file:line:col: field: message``."""

    lines: tuple[str, ...]
    problems: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    def as_json(self) -> list[dict[str, Any]]:
        if self.problems:
            return list(self.problems)
        return [{"text": line} for line in self.lines]


def _subscriber_values(options: PreviewOptions, slug: str) -> tuple[dict[str, str], list[Finding]]:
    """Sample values, personalised with the first subscribed row of --subscribers if given."""
    values = dict(sample_values(options.settings, slug))
    if options.subscribers is None:
        return values, []
    try:
        first = _first_subscriber(options.subscribers)
    except (DigestError, OSError) as exc:
        return values, [Finding("warn", "Subscribers", f"{exc}; a sample subscriber is shown")]
    if first is None:
        return values, [Finding("warn", "Subscribers", "no subscribed row; a sample is shown")]
    values["email"] = first.email
    values["name"] = first.name
    for column, value in first.fields.items():
        values[f"field:{column}"] = value
    return values, [Finding("info", "Subscribers", f"shown as line {first.line}: {first.email}")]


# The first sendable row of --subscribers, by (path, mtime, size). Finding it reads the whole
# list (a later row may unsubscribe that address): with a large list, every save would pay that.
_first_row_cache: dict[Path, tuple[tuple[int, int], Subscriber | None]] = {}


def _first_subscriber(path: Path) -> Subscriber | None:
    # Imported here: only a preview given --subscribers reads a list.
    from digest.audience.subscribers import SubscriberReport, read_subscribers

    stat = path.stat()
    key = (stat.st_mtime_ns, stat.st_size)
    cached = _first_row_cache.get(path)
    if cached is not None and cached[0] == key:
        return cached[1]
    rows = read_subscribers(path, SubscriberReport(path=str(path)))
    first = next(rows, None)
    close = getattr(rows, "close", None)  # a generator: stop reading the rest of the file
    if close is not None:
        close()
    _first_row_cache.clear()
    _first_row_cache[path] = (key, first)
    return first


def render_snapshot(options: PreviewOptions) -> Snapshot | RenderFailure:
    """Load, render and fill the edition; every failure comes back as a RenderFailure."""
    scrub = options.settings.scrub
    started = time.perf_counter()
    try:
        edition = load_edition(options.edition_path)
        newsletter = find_newsletter(options.edition_path)
        rendered = render_edition(
            edition,
            newsletter=newsletter,
            archive_url=options.settings.archive_url,
            templates_dir=options.templates_dir,
        )
        web_html = render_web_page(edition, newsletter, templates_dir=options.templates_dir)
        values, subscriber_checks = _subscriber_values(options, edition.slug)
        html = rendered.html.fill(values)
        text = rendered.text.fill(values)
    except ProblemsError as exc:
        problems: tuple[dict[str, Any], ...] = tuple(
            {
                "text": scrub(str(p)),
                "path": p.path,
                "line": p.line,
                "col": p.col,
                "field": p.field,
                "message": scrub(p.message),
            }
            for p in exc.problems
        )
        return RenderFailure(tuple(str(p["text"]) for p in problems), problems)
    except DigestError as exc:
        return RenderFailure((scrub(str(exc)),))
    except Exception as exc:  # a bug in a template or renderer must not stop the preview
        return RenderFailure((scrub(f"{type(exc).__name__}: {exc}"),))
    dark_rules = count_dark_rules(html)
    # The one set of checks (digest.checks) that build, validate and send run too.
    checks = run_checks(Subject(edition, html, text))
    sample_to = formataddr((values.get("name", ""), values.get("email", "")))
    return Snapshot(
        slug=edition.slug,
        from_line=options.settings.from_address
        or formataddr((edition.newsletter or "", "newsletter@example.org")),
        to_line=sample_to,
        subject=edition.subject,
        preheader=edition.preheader,
        html=html,
        web_html=web_html,
        text=text,
        html_bytes=len(html.encode("utf-8")),
        dark_rules=dark_rules,
        checks=(
            *checks,
            last_link_check_finding(
                last_link_check(options.settings.state_dir, edition.slug), time.time()
            ),
            *subscriber_checks,
        ),
        warnings=tuple(str(finding) for finding in warnings_of(checks)),
        render_ms=(time.perf_counter() - started) * 1000,
    )
