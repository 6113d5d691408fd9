"""Fetching pages for the curator, politely and within limits (contract §8): http and https
only, one overall timeout per page (10 s), at most 5 redirects, at most 2 MB read (streamed:
a bigger body is cut, never held whole), and a User-Agent that says who is asking.

Every failure becomes one short reason (``404 Not Found``, ``timeout after 10 s``, ``DNS error:
no such host``...), never an exception that reaches the curator.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

from digest import __version__

USER_AGENT = f"digest/{__version__} (newsletter curation tool; fetches pages a curator adds)"
HTML_TYPES = ("text/html", "application/xhtml+xml")


@dataclass(frozen=True)
class FetchLimits:
    timeout: float = 10.0  # seconds for the whole page: connect, redirects and body
    max_redirects: int = 5
    max_bytes: int = 2 * 1024 * 1024


@dataclass(frozen=True)
class Fetched:
    """A page read (its first ``max_bytes`` at most)."""

    url: str  # as asked
    final_url: str  # after redirects
    content_type: str | None
    body: bytes
    truncated: bool


@dataclass(frozen=True)
class FetchFailure:
    url: str
    reason: str


def make_client(limits: FetchLimits, *, connections: int) -> httpx.AsyncClient:
    """One client for a batch of fetches: its pool caps how many connections are open."""
    return httpx.AsyncClient(
        follow_redirects=True,
        max_redirects=limits.max_redirects,
        timeout=httpx.Timeout(limits.timeout),
        headers={"User-Agent": USER_AGENT},
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )


async def fetch_html(
    client: httpx.AsyncClient, url: str, limits: FetchLimits
) -> Fetched | FetchFailure:
    """GET ``url``; the page when it is HTML (read up to the limit), else why not."""
    try:
        async with asyncio.timeout(limits.timeout):
            return await _read_html(client, url, limits)
    except TimeoutError:
        return FetchFailure(url, f"timeout after {limits.timeout:g} s")
    except httpx.HTTPError as exc:
        return FetchFailure(url, describe_error(exc, limits))


async def _read_html(
    client: httpx.AsyncClient, url: str, limits: FetchLimits
) -> Fetched | FetchFailure:
    headers = {"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"}
    async with client.stream("GET", url, headers=headers) as response:
        if response.status_code >= 400:
            return FetchFailure(url, status_text(response.status_code, response.reason_phrase))
        content_type = response.headers.get("content-type")
        media_type = (content_type or "").split(";", 1)[0].strip().lower()
        if media_type and media_type not in HTML_TYPES:
            return FetchFailure(url, f"is {media_type}, not an HTML page; add it by hand")
        body = bytearray()
        truncated = False
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) >= limits.max_bytes:
                del body[limits.max_bytes :]
                truncated = True
                break  # leaving the block closes the connection: the rest is never read
        return Fetched(url, str(response.url), content_type, bytes(body), truncated)


def status_text(code: int, phrase: str | None = None) -> str:
    return f"{code} {phrase}".strip() if phrase else str(code)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def describe_error(exc: httpx.HTTPError, limits: FetchLimits) -> str:
    """One short reason for a failed request, of the kinds the contract names."""
    if isinstance(exc, httpx.TooManyRedirects):
        return f"too many redirects (more than {limits.max_redirects}; a redirect loop?)"
    if isinstance(exc, httpx.TimeoutException):
        return f"timeout after {limits.timeout:g} s"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return "redirected to an address that is not http or https"
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS error: {cause.verify_message or 'certificate not trusted'}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS error: {cause.reason or cause}"
        if isinstance(cause, socket.gaierror):
            return "DNS error: no such host"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
    text = str(exc).lower()
    if "ssl" in text or "certificate" in text:
        return f"TLS error: {exc}"
    if "name or service not known" in text or "nodename nor servname" in text:
        return "DNS error: no such host"
    if "connection refused" in text or "connect call failed" in text:
        return "connection refused"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the server broke the connection"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


__all__ = [
    "HTML_TYPES",
    "USER_AGENT",
    "FetchFailure",
    "FetchLimits",
    "Fetched",
    "HostSlots",
    "describe_error",
    "fetch_html",
    "make_client",
    "status_text",
]


class HostSlots:
    """At most ``per_host`` requests at once to any one host (politeness), and ``total`` over
    all hosts."""

    def __init__(self, *, total: int, per_host: int) -> None:
        self._total = asyncio.Semaphore(total)
        self._per_host = per_host
        self._hosts: dict[str, asyncio.Semaphore] = {}

    def host(self, url: str) -> asyncio.Semaphore:
        name = httpx.URL(url).host.lower()
        if name not in self._hosts:
            self._hosts[name] = asyncio.Semaphore(self._per_host)
        return self._hosts[name]

    @property
    def total(self) -> asyncio.Semaphore:
        return self._total
