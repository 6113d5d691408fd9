"""``digest new``: the next edition, started from the latest one's structure.

The new file keeps the latest edition's sections and groups (titles and layouts) with empty
``items: []``, takes the month after the latest's slug (``2026-03`` -> ``2026-04``) and its
``send_at`` one month on. An edition needs an item in every section and group, so the new file
says at its top what to fill in, and ``digest validate`` points at every list still empty until
``digest add`` (or the curator's editor) fills it. An existing file is never overwritten.
"""

from __future__ import annotations

import calendar
import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from digest.curate.featured import edition_files, read_leniently, slug_of
from digest.curate.files import create_file
from digest.edition.model import SLUG_PATTERN
from digest.errors import DigestError
from digest.newsletter import find_newsletter

# English month names (calendar.month_name follows the locale).
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_MONTH_SLUG = re.compile(r"^(\d{4})-(\d{2})$")
_PLAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 .,&'()/+-]*$")  # safe as an unquoted YAML value


class NewEditionError(DigestError):
    """No edition to start from, no slug to give, or the file exists already."""


@dataclass(frozen=True)
class NewEdition:
    path: Path
    based_on: Path
    slug: str
    label: str
    send_at: datetime | None
    to_fill: tuple[str, ...]  # "Research Papers / Speech & Audio", ...: the lists to fill


def start_next_edition(
    content_dir: Path, *, slug: str | None = None, send_at: datetime | None = None
) -> NewEdition:
    latest, data = _latest(content_dir)
    latest_slug = slug_of(latest, data)
    latest_send_at = _as_datetime(data.get("send_at"))
    if send_at is None and latest_send_at is not None:
        send_at = one_month_later(latest_send_at)
    if slug is None:
        slug = _next_slug(latest_slug, send_at, latest)
    if not re.match(SLUG_PATTERN, slug):
        raise NewEditionError(
            f"--slug must be lower-case letters, digits and hyphens (like 2026-04), not {slug!r}"
        )
    path = content_dir / f"{slug}{latest.suffix}"
    if path.exists():
        raise NewEditionError(
            f"{path} exists already; it is never overwritten",
            hint=f"edit it, or choose another slug: digest new {content_dir} --slug {slug}-b",
        )
    label = _label(slug)
    name = data.get("newsletter") if isinstance(data.get("newsletter"), str) else None
    newsletter = find_newsletter(str(latest))
    shown_name = name or (newsletter.name if newsletter is not None else None)
    text, to_fill = _skeleton(data, latest, path, slug, label, send_at, name, shown_name)
    try:
        create_file(path, text)
    except FileExistsError:
        raise NewEditionError(f"{path} exists already; it is never overwritten") from None
    return NewEdition(path, latest, slug, label, send_at, tuple(to_fill))


def one_month_later(moment: datetime) -> datetime:
    """The same day and time a month on; the last day of a month stays the last day."""
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    last_now = calendar.monthrange(moment.year, moment.month)[1]
    last_next = calendar.monthrange(year, month)[1]
    day = last_next if moment.day == last_now else min(moment.day, last_next)
    return moment.replace(year=year, month=month, day=day)


def _latest(content_dir: Path) -> tuple[Path, dict[str, Any]]:
    if not content_dir.is_dir():
        raise NewEditionError(f"{content_dir} is not a folder of editions")
    for path in reversed(edition_files(content_dir)):
        data = read_leniently(path)
        if data is not None and isinstance(data.get("sections"), list):
            return path, data
    raise NewEditionError(
        f"no edition in {content_dir} to start from (a .yaml file with sections)",
        hint="write the first edition by hand, e.g. from the bundled content/2026-03.yaml",
    )


def _as_datetime(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
        return parsed if parsed.tzinfo is not None else None
    return None


def _next_slug(latest_slug: str, send_at: datetime | None, latest: Path) -> str:
    month = _MONTH_SLUG.match(latest_slug)
    if month:
        year, number = int(month.group(1)), int(month.group(2))
        if 1 <= number <= 12:
            following = date(year + number // 12, number % 12 + 1, 1)
            return f"{following.year:04d}-{following.month:02d}"
    if send_at is not None:
        return f"{send_at.year:04d}-{send_at.month:02d}"
    raise NewEditionError(
        f"the latest edition ({latest}, slug {latest_slug!r}) is not named by its month "
        "(YYYY-MM), so the next slug cannot be guessed",
        hint=f"name it: digest new {latest.parent} --slug SLUG",
    )


def _label(slug: str) -> str:
    month = _MONTH_SLUG.match(slug)
    if month and 1 <= int(month.group(2)) <= 12:
        return f"{_MONTHS[int(month.group(2)) - 1]} {month.group(1)}"
    return slug


def _scalar(value: str) -> str:
    """``value`` as a YAML scalar: plain when that is safe, else double-quoted (JSON's string
    syntax is YAML's)."""
    if _PLAIN.match(value) and not value.endswith((" ", ":")) and " #" not in value:
        return value
    return json.dumps(value, ensure_ascii=False)


def _skeleton(
    data: dict[str, Any],
    latest: Path,
    path: Path,
    slug: str,
    label: str,
    send_at: datetime | None,
    name: str | None,
    shown_name: str | None,
) -> tuple[str, list[str]]:
    to_fill: list[str] = []
    body: list[str] = []
    for section in data.get("sections") or []:
        if not isinstance(section, dict) or not isinstance(section.get("title"), str):
            continue
        title = section["title"]
        body.append(f"  - title: {_scalar(title)}")
        if section.get("layout") in ("compact",):
            body.append(f"    layout: {section['layout']}")
        groups = [
            g
            for g in section.get("groups") or []
            if isinstance(g, dict) and isinstance(g.get("title"), str)
        ]
        if section.get("items") or not groups:
            body.append("    items: []")
            to_fill.append(title)
        if groups:
            body.append("    groups:")
            for group in groups:
                body.append(f"      - title: {_scalar(group['title'])}")
                body.append("        items: []")
                to_fill.append(f"{title} / {group['title']}")
    subject = f"{shown_name}, {label}" if shown_name else label
    head = [
        f"# {subject}: started by `digest new` from {latest.name}.",
        "#",
        "# To fill in: the subject (and a preheader, the inbox preview line), then the items.",
        "# Every section and group needs at least one item: until each `items: []` below holds",
        "# one, `digest validate` points at it. Add links (title, source and summary are fetched):",
        f"#   digest add {path} URL... --section TITLE [--group TITLE]",
        "",
    ]
    if name:
        head.append(f"newsletter: {_scalar(name)}")
    head.append(f"edition: {_scalar(label)}")
    number = data.get("number")
    if isinstance(number, int) and not isinstance(number, bool):
        # The latest names its issue number (the newsletter is older than its folder): go on.
        head.append(f"number: {number + 1}")
    head.append(f"slug: {_scalar(slug)}")
    head.append(f"subject: {json.dumps(subject, ensure_ascii=False)}")
    if isinstance(data.get("lang"), str):
        head.append(f"lang: {_scalar(data['lang'])}")
    if send_at is not None:
        moment = send_at.isoformat().replace("+00:00", "Z")
        head.append(f"send_at: {moment}")
    return "\n".join([*head, "", "sections:", *body]) + "\n", to_fill


__all__ = ["NewEdition", "NewEditionError", "one_month_later", "start_next_edition"]
