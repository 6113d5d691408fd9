"""``digest add``: fetch pages and arXiv records and append them to an edition as items.

The use case, without printing: :func:`add_links` returns one :class:`Outcome` per address
given (added, skipped as already featured, or failed with the reason) and writes the file once,
through a temporary file that must validate first. Problems the file already had (a fresh
edition's empty sections) are tolerated; an edit that would bring a new one is refused and
nothing is written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx

from digest.curate import arxiv
from digest.curate.featured import featured_before
from digest.curate.fetching import (
    Fetched,
    FetchFailure,
    FetchLimits,
    HostSlots,
    fetch_html,
    make_client,
)
from digest.curate.files import replace_file
from digest.curate.page import read_page
from digest.curate.roundtrip import EditionDocument, NewItem, PlaceError
from digest.curate.text import SOURCE_MAX, TITLE_MAX, cut_summary, markdown_literal, shorten
from digest.curate.urls import arxiv_abs_url, arxiv_id, fetch_problem, normalise
from digest.edition.load import MAX_FILE_BYTES, load_edition_text
from digest.errors import DigestError, EditionError, Problem
from digest.newsletter import find_newsletter

PAGES_AT_ONCE = 20  # pages fetched at the same time ...
PAGES_PER_HOST = 10  # ... of which at most this many from one host (a curator's one-off batch)

Status = Literal["added", "skipped", "failed"]


@dataclass(frozen=True)
class Outcome:
    given: str  # the address or id as the curator typed it
    status: Status
    message: str  # the title added, or why not
    item: NewItem | None = None


@dataclass
class AddReport:
    edition: str
    place: str  # "Research Papers / Speech & Audio"
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)


@dataclass(frozen=True)
class _Wanted:
    given: str
    url: str  # what the item will link to
    paper: str | None  # the arXiv id, for papers


class PlaceNotFound(DigestError):
    """--section / --group names nothing in the edition."""


def add_links(
    edition_path: str,
    given: Sequence[str],
    *,
    section: str | None = None,
    group: str | None = None,
    again: bool = False,
    limits: FetchLimits | None = None,
    arxiv_api_url: str | None = None,
) -> AddReport:
    """Fetch each of ``given`` and append an item for each page that could be read."""
    limits = limits or FetchLimits()
    path = Path(edition_path)
    text = _read(edition_path)
    before = _problems(text, edition_path)
    try:
        document = EditionDocument.parse(text)
    except ValueError as exc:
        raise EditionError(before or [Problem(edition_path, None, None, str(exc))]) from None
    try:
        place = document.place(section, group)
    except PlaceError as exc:
        raise PlaceNotFound(f"{edition_path}: {exc}") from None

    report = AddReport(edition_path, place.label)
    featured = {} if again else featured_before(path)
    wanted: dict[str, _Wanted | Outcome] = {}
    seen: set[str] = set()
    for entry in given:
        entry = entry.strip()
        paper = arxiv_id(entry)
        url = arxiv_abs_url(paper) if paper else entry
        problem = None if paper else fetch_problem(entry)
        key = normalise(url)
        if problem is not None:
            wanted[entry] = Outcome(entry, "failed", problem)
        elif key in seen:
            wanted[entry] = Outcome(entry, "skipped", "given twice")
        elif key in featured:
            hint = "; add --again to add it anyway"
            wanted[entry] = Outcome(entry, "skipped", f"already in {featured[key]}{hint}")
        else:
            wanted[entry] = _Wanted(entry, url, paper)
        seen.add(key)

    to_fetch = [w for w in wanted.values() if isinstance(w, _Wanted)]
    results = asyncio.run(_fetch_all(to_fetch, limits, arxiv_api_url or arxiv.api_url()))
    items: list[NewItem] = []
    for entry in given:
        outcome = wanted.get(entry.strip())
        if isinstance(outcome, _Wanted):
            outcome = _item_outcome(outcome, results[outcome.given])
        if outcome is None:
            continue
        report.outcomes.append(outcome)
        if outcome.item is not None:
            items.append(outcome.item)
    if items:
        document.append(place, items)
        _write_checked(path, edition_path, document.dump(), before)
    return report


async def _fetch_all(
    wanted: list[_Wanted], limits: FetchLimits, api_url: str
) -> dict[str, Fetched | FetchFailure | arxiv.Paper | str]:
    slots = HostSlots(total=PAGES_AT_ONCE, per_host=PAGES_PER_HOST)
    async with make_client(limits, connections=PAGES_AT_ONCE) as client:

        async def page(entry: _Wanted) -> tuple[str, Fetched | FetchFailure]:
            async with slots.host(entry.url), slots.total:
                return entry.given, await fetch_html(client, entry.url, limits)

        papers = [entry for entry in wanted if entry.paper is not None]
        pages = [entry for entry in wanted if entry.paper is None]
        lookup = arxiv.look_up(client, [e.paper for e in papers if e.paper], limits, api_url)
        found, fetched = await asyncio.gather(
            lookup, asyncio.gather(*(page(entry) for entry in pages))
        )
    results: dict[str, Fetched | FetchFailure | arxiv.Paper | str] = dict(fetched)
    for entry in papers:
        results[entry.given] = found[entry.paper or ""]
    return results


def _item_outcome(wanted: _Wanted, result: Fetched | FetchFailure | arxiv.Paper | str) -> Outcome:
    if isinstance(result, FetchFailure | str):
        reason = result.reason if isinstance(result, FetchFailure) else result
        return Outcome(wanted.given, "failed", reason)
    if isinstance(result, arxiv.Paper):
        abstract = result.abstract
        if result.authors:
            abstract = f"{arxiv.byline(result.authors)}: {abstract}"
        links = [("PDF", wanted.given)] if "/pdf/" in wanted.given else []
        item = NewItem(
            title=shorten(result.title, TITLE_MAX),
            url=wanted.url,
            source="arXiv",
            summary=markdown_literal(cut_summary(abstract)) if abstract else None,
            links=links,
        )
        return Outcome(wanted.given, "added", item.title, item)
    info = read_page(result.body, result.content_type)
    if not info.title:
        return Outcome(
            wanted.given,
            "failed",
            "the page has no title (no og:title, twitter:title or <title>); add it by hand",
        )
    source = info.site_name or _site_of(result.final_url)
    item = NewItem(
        title=shorten(info.title, TITLE_MAX),
        url=wanted.url,
        source=shorten(source, SOURCE_MAX) if source else None,
        summary=markdown_literal(cut_summary(info.description)) if info.description else None,
    )
    return Outcome(wanted.given, "added", item.title, item)


def _site_of(url: str) -> str:
    try:
        return httpx.URL(url).host.lower().removeprefix("www.")
    except (httpx.InvalidURL, ValueError):
        return ""


def _read(shown: str) -> str:
    from digest.edition.load import load_edition

    path = Path(shown)
    try:
        if path.stat().st_size <= MAX_FILE_BYTES:
            return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        pass
    # The loader says precisely what is wrong (no such file, a folder, too big, not UTF-8...).
    load_edition(shown)
    raise EditionError([Problem(shown, None, None, "cannot be read")])


def _problems(text: str, shown: str) -> list[Problem]:
    try:
        load_edition_text(text, shown, stem=Path(shown).stem, newsletter=find_newsletter(shown))
    except EditionError as exc:
        return exc.problems
    return []


def _write_checked(path: Path, shown: str, text: str, before: list[Problem]) -> None:
    """Write ``text`` unless it brings a problem ``before`` did not have (compared by field and
    message: lines move when items are added)."""
    known = {(problem.field, problem.message) for problem in before}
    new = [p for p in _problems(text, shown) if (p.field, p.message) not in known]
    if new:
        raise EditionError(new, hint=f"nothing was written; {shown} is unchanged")
    replace_file(path, text)


__all__ = ["AddReport", "Outcome", "PlaceNotFound", "add_links"]
