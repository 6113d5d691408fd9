"""A real HTTP server on 127.0.0.1 (a port the OS picks) that answers as Mailgun's API does.

Built on pytest-httpserver (werkzeug), threaded, so a slow answer does not block the next
request. It serves:

* ``POST /v3/<domain>/messages``: checks Basic auth (``api`` / the key), validates the form as
  Mailgun does (from, to, subject, a body, at most 1,000 recipients, recipient-variables JSON),
  records it and answers ``{"id": "<...>", "message": "Queued. Thank you."}``;
* ``GET /v3/<domain>/unsubscribes|bounces|complaints``: the stored entries in pages of
  ``min(limit, page_size)`` items, with Mailgun's ``paging`` URLs (``page=next&address=<last>``);
  a page past the end holds no items.

Faults are queued with :meth:`MailgunServer.fail_next` and consumed one per request of that
endpoint: :class:`Fault` builds 401, 400 with Mailgun's JSON message, 429 with a "try again
after <date>" message and/or ``Retry-After``, 5xx, slow answers and truncated/invalid JSON.

:meth:`MailgunServer.deliveries` expands every accepted batch into what each recipient would
get, with ``%recipient.x%`` filled once from recipient-variables, as Mailgun does.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from typing import Any
from urllib.parse import urlencode

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

SUPPRESSION_ENDPOINTS = ("unsubscribes", "bounces", "complaints")
_PLACEHOLDER = re.compile(r"%recipient\.([A-Za-z0-9_\-]+)%")


@dataclass(frozen=True)
class Fault:
    """One misbehaving answer."""

    status: int = 500
    body: str = '{"message": "Internal Server Error"}'
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (a slow server, a timeout)

    @classmethod
    def unauthorized(cls) -> Fault:
        return cls(401, "Forbidden")  # Mailgun's 401 is a bare word, not JSON

    @classmethod
    def bad_request(cls, message: str) -> Fault:
        return cls(400, json.dumps({"message": message}))

    @classmethod
    def rate_limited(
        cls, *, try_again_at: datetime | None = None, retry_after: int | None = None
    ) -> Fault:
        message = "Too many requests"
        if try_again_at is not None:
            when = mailgun_date(try_again_at)
            message = f"Domain is not allowed to send: rate limit exceeded, try again after {when}"
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        return cls(429, json.dumps({"message": message}), headers)

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        return cls(status, json.dumps({"message": f"Server error {status}"}))

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Answer normally (the request IS processed), but only after ``seconds``."""
        return cls(200, "", delay=seconds)

    @classmethod
    def truncated_json(cls) -> Fault:
        return cls(200, '{"id": "<20260331090000.1@mg.example.org>", "mess')

    @classmethod
    def invalid_json(cls) -> Fault:
        return cls(200, "<html><body>Bad gateway</body></html>")


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, list[str]]
    username: str | None
    password: str | None
    content_type: str

    def one(self, name: str) -> str:
        values = self.form.get(name, [])
        assert len(values) == 1, f"{name}: expected one value, got {values!r}"
        return values[0]

    def all(self, name: str) -> list[str]:
        return self.form.get(name, [])

    @property
    def recipient_variables(self) -> dict[str, dict[str, Any]]:
        loaded = json.loads(self.one("recipient-variables"))
        assert isinstance(loaded, dict)
        return loaded

    @property
    def headers(self) -> dict[str, str]:
        return {k[2:]: v[0] for k, v in self.form.items() if k.startswith("h:")}


@dataclass(frozen=True)
class Delivery:
    """What one recipient of an accepted batch gets, placeholders filled."""

    to: str
    address: str
    subject: str
    from_: str
    text: str
    html: str
    headers: dict[str, str]
    provider_id: str


class _QuickStopHTTPServer(HTTPServer):
    """werkzeug polls for shutdown every 0.5 s by default: each test would wait that long."""

    def thread_target(self) -> None:
        assert self.server is not None
        self.server.serve_forever(poll_interval=0.02)


class MailgunServer:
    def __init__(self, *, api_key: str, domain: str, page_size: int = 1000) -> None:
        self.api_key = api_key
        self.domain = domain
        self.page_size = page_size  # the most items a suppression page holds, whatever limit asks
        # The API root written into paging URLs; Mailgun writes its public host there, which a
        # test can mimic (e.g. "https://api.mailgun.net/v3") to check the client stays home.
        self.paging_api_url: str | None = None
        self.requests: list[RecordedRequest] = []
        self.suppressions: dict[str, list[dict[str, Any]]] = {k: [] for k in SUPPRESSION_ENDPOINTS}
        self._accepted: list[tuple[RecordedRequest, str]] = []
        self._faults: dict[str, deque[Fault]] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._http = _QuickStopHTTPServer(host="127.0.0.1", port=0, threaded=True)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> MailgunServer:
        self._http.expect_request(re.compile(".*")).respond_with_handler(self._dispatch)
        self._http.start()
        return self

    def stop(self) -> None:
        if self._http.is_running():
            self._http.stop()

    def __enter__(self) -> MailgunServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self._http.port}/v3"

    # -- test controls -----------------------------------------------------------------------

    def fail_next(self, *faults: Fault, endpoint: str = "messages") -> None:
        """Answer the next requests to ``endpoint`` (messages, bounces...) with ``faults``."""
        with self._lock:
            self._faults.setdefault(endpoint, deque()).extend(faults)

    def add_suppressions(self, endpoint: str, items: list[dict[str, Any]]) -> None:
        with self._lock:
            self.suppressions[endpoint].extend(items)

    @property
    def message_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.method == "POST" and r.path.endswith("/messages")]

    def deliveries(self) -> list[Delivery]:
        """Every recipient's message of every accepted batch, as Mailgun would expand it."""
        with self._lock:
            accepted = list(self._accepted)
        out: list[Delivery] = []
        for request, provider_id in accepted:
            variables = request.recipient_variables
            for entry in request.all("to"):
                address = parseaddr(entry)[1]
                values = variables.get(address, {})

                def fill(text: str, values: dict[str, Any] = values) -> str:
                    # One pass: substituted values are never looked at again.
                    return _PLACEHOLDER.sub(
                        lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0),
                        text,
                    )

                out.append(
                    Delivery(
                        to=entry,
                        address=address,
                        subject=fill(request.one("subject")),
                        from_=fill(request.one("from")),
                        text=fill(request.one("text")),
                        html=fill(request.one("html")),
                        headers={k: fill(v) for k, v in request.headers.items()},
                        provider_id=provider_id,
                    )
                )
        return out

    # -- the API -----------------------------------------------------------------------------

    def _dispatch(self, request: Request) -> Response:
        # Mailgun takes up to 25 MB and 1,000 recipients; werkzeug's defaults are far smaller.
        request.max_form_parts = 20_000
        request.max_form_memory_size = 25 * 1024 * 1024
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query={k: request.args.getlist(k) for k in request.args},
            form={k: request.form.getlist(k) for k in request.form},
            username=request.authorization.username if request.authorization else None,
            password=request.authorization.password if request.authorization else None,
            content_type=request.content_type or "",
        )
        with self._lock:
            self.requests.append(record)
        parts = request.path.strip("/").split("/")
        if len(parts) != 3 or parts[0] != "v3":
            return _json(404, {"message": "Not Found"})
        _, domain, endpoint = parts
        with self._lock:
            queue = self._faults.get(endpoint)
            fault = queue.popleft() if queue else None
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is not None and (fault.status != 200 or fault.body):
            return Response(fault.body, status=fault.status, headers=fault.headers)
        if record.username != "api" or record.password != self.api_key:
            return Response("Forbidden", status=401)
        if domain != self.domain:
            return _json(404, {"message": f"Domain not found: {domain}"})
        if endpoint == "messages" and request.method == "POST":
            return self._accept_message(record)
        if endpoint in SUPPRESSION_ENDPOINTS and request.method == "GET":
            return self._suppression_page(request, endpoint)
        return _json(404, {"message": "Not Found"})

    def _accept_message(self, record: RecordedRequest) -> Response:
        for name in ("from", "to", "subject"):
            if not record.all(name):
                return _json(400, {"message": f"{name} parameter is missing"})
        if not record.all("text") and not record.all("html"):
            return _json(
                400, {"message": "Need at least one of 'text', 'html' or 'template' parameters"}
            )
        if len(record.all("to")) > 1000:
            return _json(400, {"message": "Too many recipients: at most 1000 per message"})
        if record.all("recipient-variables"):
            try:
                variables = json.loads(record.one("recipient-variables"))
                assert isinstance(variables, dict)
            except (ValueError, AssertionError):
                return _json(400, {"message": "recipient-variables parameter is not a valid JSON"})
        provider_id = f"<{datetime.now(UTC):%Y%m%d%H%M%S}.{next(self._ids)}@{self.domain}>"
        with self._lock:
            self._accepted.append((record, provider_id))
        return _json(200, {"id": provider_id, "message": "Queued. Thank you."})

    def _suppression_page(self, request: Request, endpoint: str) -> Response:
        with self._lock:
            items = list(self.suppressions[endpoint])
        limit = min(int(request.args.get("limit", 100)), self.page_size)
        start = 0
        if request.args.get("page") == "next" and (after := request.args.get("address")):
            addresses = [item["address"] for item in items]
            start = addresses.index(after) + 1 if after in addresses else len(items)
        page = items[start : start + limit]
        base = f"{self.paging_api_url or self.api_url}/{self.domain}/{endpoint}"
        last = page[-1]["address"] if page else request.args.get("address", "")
        paging = {
            "first": f"{base}?{urlencode({'page': 'first', 'limit': limit})}",
            "last": f"{base}?{urlencode({'page': 'last', 'limit': limit})}",
            "next": f"{base}?{urlencode({'page': 'next', 'address': last, 'limit': limit})}",
            "previous": f"{base}?{urlencode({'page': 'previous', 'limit': limit})}",
        }
        return _json(200, {"items": page, "paging": paging})


def _json(status: int, payload: object) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


def mailgun_date(moment: datetime) -> str:
    """Mailgun's date format: ``Fri, 21 Oct 2011 11:02:55 UTC``."""
    return moment.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S UTC")


def sample_suppressions(endpoint: str, count: int) -> list[dict[str, Any]]:
    """``count`` entries shaped as Mailgun lists them for ``endpoint``."""
    start = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    items: list[dict[str, Any]] = []
    for i in range(count):
        item: dict[str, Any] = {
            "address": f"{endpoint[:-1]}{i}@example.net",
            "created_at": mailgun_date(start + timedelta(hours=i)),
        }
        if endpoint == "bounces":
            item |= {"code": "550", "error": "5.1.1 The email account does not exist"}
        if endpoint == "unsubscribes":
            item |= {"tags": ["*"]}
        items.append(item)
    return items
