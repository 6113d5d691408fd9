"""A real web server on 127.0.0.1 for the curator's tools (``digest add``, ``digest links``).

Built on pytest-httpserver (werkzeug), threaded, so a slow page does not hold up the others.
Each route answers with a :class:`Page` (a body, a content type, a status, an optional delay, a
redirect target, or a streamed body of any size that is never held in memory). It records every
request (method, path, query, User-Agent) and the most requests it ever served at once.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response


@dataclass(frozen=True)
class Page:
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    delay: float = 0.0  # seconds before answering
    location: str | None = None  # a redirect target
    streamed_bytes: int = 0  # > 0: a body this long, made on the fly in 64 KB chunks
    head_status: int | None = None  # what HEAD answers, when it differs (e.g. 405)


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: str
    user_agent: str


class _QuickStopHTTPServer(HTTPServer):
    """werkzeug polls for shutdown every 0.5 s by default: each test would wait that long."""

    def thread_target(self) -> None:
        assert self.server is not None
        self.server.serve_forever(poll_interval=0.02)


@dataclass
class WebServer:
    pages: dict[str, Page] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    streamed_out: int = 0  # bytes of streamed bodies actually sent
    most_at_once: int = 0
    _now: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _http: _QuickStopHTTPServer | None = None

    def start(self) -> WebServer:
        self._http = _QuickStopHTTPServer(host="127.0.0.1", port=0, threaded=True)
        self._http.expect_request(re.compile(".*")).respond_with_handler(self._answer)
        self._http.start()
        return self

    def stop(self) -> None:
        if self._http is not None and self._http.is_running():
            self._http.stop()

    def url(self, path: str) -> str:
        assert self._http is not None
        return f"http://127.0.0.1:{self._http.port}{path}"

    def serve(self, path: str, page: Page) -> str:
        self.pages[path] = page
        return self.url(path)

    def html(self, path: str, head: str, *, delay: float = 0.0) -> str:
        body = f"<!doctype html><html><head>{head}</head><body><p>Text</p></body></html>"
        return self.serve(path, Page(body.encode("utf-8"), delay=delay))

    def _answer(self, request: Request) -> Response:
        with self._lock:
            self.requests.append(
                Seen(
                    request.method,
                    request.path,
                    request.query_string.decode("latin-1"),
                    request.headers.get("User-Agent", ""),
                )
            )
            self._now += 1
            self.most_at_once = max(self.most_at_once, self._now)
        try:
            page = self.pages.get(request.path)
            if page is None:
                return Response(b"<title>Not here</title>", status=404, content_type="text/html")
            if page.delay:
                time.sleep(page.delay)
            status = page.status
            if request.method == "HEAD" and page.head_status is not None:
                status = page.head_status
            headers = {}
            if page.location:
                target = page.location
                headers["Location"] = target if "://" in target else self.url(target)
            if page.streamed_bytes:
                return Response(
                    self._stream(page.streamed_bytes),
                    status=status,
                    content_type=page.content_type,
                    headers={"Content-Length": str(page.streamed_bytes)},
                    direct_passthrough=True,
                )
            return Response(
                page.body, status=status, content_type=page.content_type, headers=headers
            )
        finally:
            with self._lock:
                self._now -= 1

    def _stream(self, size: int) -> Iterator[bytes]:
        head = b"<html><head><title>A very long page</title></head><body>"
        chunk = b"<p>" + b"x" * (64 * 1024 - 7) + b"</p>\n"
        sent = 0
        yield head
        sent += len(head)
        while sent < size:
            piece = chunk[: size - sent]
            yield piece
            sent += len(piece)
            with self._lock:
                self.streamed_out = sent


def arxiv_answer(entries: list[tuple[str, str, list[str], str]]) -> bytes:
    """An Atom answer shaped like arXiv's: (id with version, title, authors, abstract)."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<feed xmlns="http://www.w3.org/2005/Atom" '
        'xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">',
        "<title>arXiv Query</title>",
        f"<opensearch:totalResults>{len(entries)}</opensearch:totalResults>",
    ]
    for paper, title, authors, abstract in entries:
        names = "".join(f"<author><name>{name}</name></author>" for name in authors)
        parts.append(
            f"<entry><id>http://arxiv.org/abs/{paper}</id>"
            f"<published>2026-01-12T18:00:00Z</published>"
            f"<title>{title}</title><summary>{abstract}</summary>{names}"
            f'<link href="http://arxiv.org/abs/{paper}" rel="alternate" type="text/html"/>'
            "</entry>"
        )
    parts.append("</feed>")
    return "\n".join(parts).encode("utf-8")
