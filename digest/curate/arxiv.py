"""arXiv papers through arXiv's Atom API: the exact title, authors and abstract, for many ids in
one request (``id_list=a,b,c``), as arXiv asks of tools. ``DIGEST_ARXIV_API_URL`` points it
elsewhere (a mirror, a test server).

The answer is untrusted XML: it is read with a size cap and parsed by the standard library's
expat-based ElementTree, which resolves no external entities.
"""

from __future__ import annotations

import asyncio
import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import httpx

from digest.curate.fetching import FetchLimits, describe_error, status_text
from digest.curate.text import plain_text
from digest.curate.urls import arxiv_id, without_version

DEFAULT_API_URL = "https://export.arxiv.org/api/query"
API_URL_VARIABLE = "DIGEST_ARXIV_API_URL"
_MAX_ANSWER_BYTES = 8 * 1024 * 1024  # 50 abstracts are ~150 KB
_ATOM = "{http://www.w3.org/2005/Atom}"


@dataclass(frozen=True)
class Paper:
    paper_id: str  # as asked (with its version when one was given)
    title: str
    authors: tuple[str, ...]
    abstract: str


def api_url(environ: Mapping[str, str] | None = None) -> str:
    value = (os.environ if environ is None else environ).get(API_URL_VARIABLE, "").strip()
    return value or DEFAULT_API_URL


async def look_up(
    client: httpx.AsyncClient, paper_ids: Sequence[str], limits: FetchLimits, url: str
) -> dict[str, Paper | str]:
    """Each id -> its :class:`Paper`, or the reason it could not be had (one line)."""
    if not paper_ids:
        return {}
    params = {"id_list": ",".join(paper_ids), "max_results": str(len(paper_ids))}
    try:
        async with asyncio.timeout(limits.timeout):
            answer = await _read(client, url, params)
    except TimeoutError:
        return dict.fromkeys(paper_ids, f"arXiv API: timeout after {limits.timeout:g} s")
    except httpx.HTTPError as exc:
        return dict.fromkeys(paper_ids, f"arXiv API: {describe_error(exc, limits)}")
    if isinstance(answer, str):
        return dict.fromkeys(paper_ids, f"arXiv API: {answer}")
    try:
        papers, errors = _parse(answer)
    except ET.ParseError as exc:
        return dict.fromkeys(paper_ids, f"arXiv API: the answer is not valid Atom XML ({exc})")
    found: dict[str, Paper | str] = {}
    for wanted in paper_ids:
        paper = papers.get(without_version(wanted)) or papers.get(wanted)
        if paper is not None:
            found[wanted] = Paper(wanted, paper.title, paper.authors, paper.abstract)
        else:
            error = errors.get(wanted)
            found[wanted] = f"arXiv does not know the paper {wanted}" + (
                f" ({error})" if error else ""
            )
    return found


async def _read(client: httpx.AsyncClient, url: str, params: dict[str, str]) -> bytes | str:
    async with client.stream("GET", url, params=params) as response:
        if response.status_code >= 400:
            return status_text(response.status_code, response.reason_phrase)
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > _MAX_ANSWER_BYTES:
                return f"the answer is larger than {_MAX_ANSWER_BYTES // 1024 // 1024} MB"
        return bytes(body)


def _parse(answer: bytes) -> tuple[dict[str, Paper], dict[str, str]]:
    """The entries of an Atom answer by version-less id, and arXiv's error entries by the id
    they name (arXiv answers a malformed id with an entry titled "Error")."""
    root = ET.fromstring(answer)
    papers: dict[str, Paper] = {}
    errors: dict[str, str] = {}
    for entry in root.iter(f"{_ATOM}entry"):
        entry_id = (entry.findtext(f"{_ATOM}id") or "").strip()
        title = plain_text(entry.findtext(f"{_ATOM}title") or "")
        abstract = plain_text(entry.findtext(f"{_ATOM}summary") or "")
        if "/api/errors" in entry_id:
            named = entry_id.rsplit("_", 1)[-1] if "_for_" in entry_id else ""
            errors[named] = abstract or title
            continue
        paper = arxiv_id(entry_id)
        if paper is None or not title:
            continue
        authors = tuple(
            name
            for author in entry.iter(f"{_ATOM}author")
            if (name := plain_text(author.findtext(f"{_ATOM}name") or ""))
        )
        papers[without_version(paper)] = Paper(paper, title, authors, abstract)
    return papers, errors


def byline(authors: Sequence[str]) -> str:
    """``A``, ``A and B``, ``A, B and C``, ``A et al.`` beyond three."""
    if len(authors) > 3:
        return f"{authors[0]} et al."
    if len(authors) > 1:
        return f"{', '.join(authors[:-1])} and {authors[-1]}"
    return authors[0] if authors else ""


__all__ = ["API_URL_VARIABLE", "DEFAULT_API_URL", "Paper", "api_url", "byline", "look_up"]
