"""``digest links``: is every link of an edition still there?

Each address is asked once (HEAD, then GET when HEAD is refused), at most N at once and 2 per
host; an answer is kept for an hour in the state folder, so checking again while editing is
quick and polite. A broken link is reported at every place the file holds it (``PATH:LINE:COL``
from the YAML); a redirect to another host is a note. The last run's results per edition stay
in the state folder for the preview's checks panel (:func:`last_run`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from digest.curate.fetching import (
    FetchLimits,
    HostSlots,
    describe_error,
    make_client,
    status_text,
)
from digest.edition.markdown import iter_tokens, rendering_parser
from digest.files import private_folder, write_file_atomically

CACHE_FILE = "links.json"
CACHE_SECONDS = 3600.0
PER_HOST = 2
MARKDOWN_KEYS = frozenset({"intro", "outro", "body", "summary"})
# HEAD answers that mean "ask me with GET" rather than "this page is gone" on many servers.
_RETRY_WITH_GET_FROM = 400


@dataclass(frozen=True)
class LinkPlace:
    """One place of the edition file that holds a link."""

    url: str
    line: int
    col: int
    field: str  # sections[0].items[2].url


@dataclass(frozen=True)
class LinkResult:
    url: str
    broken: bool
    status: str  # "200 OK", "404 Not Found", "timeout after 10 s", "DNS error: no such host"
    note: str | None = None  # "redirects to another host: https://..."
    checked_at: float = 0.0


@dataclass
class LinkReport:
    path: str
    slug: str
    places: list[LinkPlace]
    results: dict[str, LinkResult]
    from_cache: int = 0
    checked_at: float = field(default_factory=time.time)

    def broken(self) -> list[tuple[LinkPlace, LinkResult]]:
        return [(p, self.results[p.url]) for p in self.places if self.results[p.url].broken]

    def notes(self) -> list[tuple[LinkPlace, LinkResult]]:
        return [(p, self.results[p.url]) for p in self.places if self.results[p.url].note]


# --------------------------------------------------------------------------- where the links are


def link_places(text: str) -> list[LinkPlace]:
    """Every http(s) link of an edition's YAML text (``url:`` values and the links of Markdown
    fields), with its line and column. The text is a valid edition (checked before)."""
    # The pure-Python composer: its marks count characters, which positions need.
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    return list(_walk(root, "", text)) if root is not None else []


def _walk(node: yaml.Node, name: str, text: str) -> Iterator[LinkPlace]:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = f"{name}.{key}" if name else key
            if isinstance(value_node, yaml.ScalarNode):
                yield from _scalar_links(key, value_node, child, text)
            else:
                yield from _walk(value_node, child, text)
    elif isinstance(node, yaml.SequenceNode):
        for index, child_node in enumerate(node.value):
            yield from _walk(child_node, f"{name}[{index}]", text)


def _scalar_links(key: str, node: yaml.ScalarNode, name: str, text: str) -> Iterator[LinkPlace]:
    line, col = node.start_mark.line + 1, node.start_mark.column + 1
    value = str(node.value).strip()
    if key == "url" and value.lower().startswith(("http://", "https://")):
        yield LinkPlace(value, line, col, name)
    elif key in MARKDOWN_KEYS:
        start, end = node.start_mark.index, node.end_mark.index
        searched = start
        for token in iter_tokens(rendering_parser().parse(value)):
            href = str(token.attrGet("href") or "") if token.type == "link_open" else ""
            if not href.lower().startswith(("http://", "https://")):
                continue
            found = text.find(href, searched, end)
            if found < 0:  # written otherwise in the source (escaped): the field's own place
                yield LinkPlace(href, line, col, name)
                continue
            searched = found + len(href)
            row = text.count("\n", 0, found) + 1
            yield LinkPlace(href, row, found - text.rfind("\n", 0, found), name)


# --------------------------------------------------------------------------- asking each address


async def _check_one(client: httpx.AsyncClient, url: str, limits: FetchLimits) -> LinkResult:
    try:
        async with asyncio.timeout(limits.timeout):
            response = await client.request("HEAD", url)
            if response.status_code >= _RETRY_WITH_GET_FROM:
                async with client.stream("GET", url) as streamed:
                    response = streamed  # the status and headers are all we need
    except TimeoutError:
        return LinkResult(url, True, f"timeout after {limits.timeout:g} s", checked_at=time.time())
    except httpx.HTTPError as exc:
        return LinkResult(url, True, describe_error(exc, limits), checked_at=time.time())
    code = response.status_code
    status = status_text(code, response.reason_phrase)
    note = None
    if code == 429:
        note = "the server asks to slow down (429): not counted as broken; check it later"
    elif _host(str(response.url)) != _host(url):
        note = f"redirects to another host: {response.url}"
    broken = code >= 400 and code != 429
    return LinkResult(url, broken, status, note, time.time())


def _host(url: str) -> str:
    try:
        return httpx.URL(url).host.lower().removeprefix("www.")
    except (httpx.InvalidURL, ValueError):
        return url


async def _check_all(urls: list[str], limits: FetchLimits, concurrency: int) -> list[LinkResult]:
    slots = HostSlots(total=concurrency, per_host=PER_HOST)
    async with make_client(limits, connections=concurrency) as client:

        async def checked(url: str) -> LinkResult:
            async with slots.host(url), slots.total:
                return await _check_one(client, url, limits)

        return list(await asyncio.gather(*(checked(url) for url in urls)))


def check_links(
    path: str,
    text: str,
    slug: str,
    state_dir: Path,
    *,
    limits: FetchLimits | None = None,
    concurrency: int = 8,
    now: float | None = None,
) -> LinkReport:
    """Check every link of the edition ``text`` (read from ``path``, already validated)."""
    limits = limits or FetchLimits()
    moment = time.time() if now is None else now
    places = link_places(text)
    cache = _Cache.load(state_dir)
    results: dict[str, LinkResult] = {}
    to_ask: list[str] = []
    for url in dict.fromkeys(place.url for place in places):
        cached = cache.fresh(url, moment)
        if cached is not None:
            results[url] = cached
        else:
            to_ask.append(url)
    if to_ask:
        for result in asyncio.run(_check_all(to_ask, limits, concurrency)):
            results[result.url] = result
    report = LinkReport(path, slug, places, results, len(results) - len(to_ask), moment)
    cache.record(report)
    cache.save(state_dir)
    return report


# --------------------------------------------------------------------------- the state folder


@dataclass(frozen=True)
class LinkRun:
    """The last check of one edition, as the preview shows it."""

    slug: str
    path: str
    checked_at: float
    links: int
    broken: list[dict[str, Any]]  # {where, url, status}
    notes: list[dict[str, Any]]  # {where, url, note}


class _Cache:
    def __init__(self, data: dict[str, Any]) -> None:
        urls = data.get("urls")
        self.urls: dict[str, Any] = urls if isinstance(urls, dict) else {}
        runs = data.get("editions")
        self.runs: dict[str, Any] = runs if isinstance(runs, dict) else {}

    @classmethod
    def load(cls, state_dir: Path) -> _Cache:
        try:
            data = json.loads((state_dir / CACHE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}  # no cache yet, or a damaged one: ask again
        return cls(data if isinstance(data, dict) else {})

    def fresh(self, url: str, now: float) -> LinkResult | None:
        entry = self.urls.get(url)
        if not isinstance(entry, dict):
            return None
        try:
            result = LinkResult(**entry)
        except TypeError:
            return None
        return result if 0 <= now - result.checked_at < CACHE_SECONDS else None

    def record(self, report: LinkReport) -> None:
        for url, result in report.results.items():
            self.urls[url] = asdict(result)
        horizon = report.checked_at - CACHE_SECONDS
        self.urls = {
            url: entry
            for url, entry in self.urls.items()
            if isinstance(entry, dict) and entry.get("checked_at", 0) >= horizon
        }

        def where(place: LinkPlace) -> str:
            return f"{report.path}:{place.line}:{place.col}"

        self.runs[report.slug] = asdict(
            LinkRun(
                slug=report.slug,
                path=report.path,
                checked_at=report.checked_at,
                links=len(report.results),
                broken=[
                    {"where": where(p), "url": r.url, "status": r.status}
                    for p, r in report.broken()
                ],
                notes=[
                    {"where": where(p), "url": r.url, "note": r.note} for p, r in report.notes()
                ],
            )
        )

    def save(self, state_dir: Path) -> None:
        private_folder(state_dir)
        text = json.dumps({"urls": self.urls, "editions": self.runs}, indent=1, sort_keys=True)
        write_file_atomically(state_dir / CACHE_FILE, text.encode("utf-8"))


def last_run(state_dir: Path, slug: str) -> LinkRun | None:
    """The results of the last ``digest links`` of edition ``slug``, or None."""
    entry = _Cache.load(state_dir).runs.get(slug)
    if not isinstance(entry, dict):
        return None
    try:
        return LinkRun(**entry)
    except TypeError:
        return None


__all__ = [
    "CACHE_FILE",
    "LinkPlace",
    "LinkReport",
    "LinkResult",
    "LinkRun",
    "check_links",
    "last_run",
    "link_places",
]
