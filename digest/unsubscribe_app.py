"""The one-click unsubscribe endpoint (RFC 8058), a small Starlette ASGI app.

It answers on the path of ``DIGEST_UNSUBSCRIBE_URL``, the token taken from where the template puts
``{token}`` (a path segment, or a query parameter):

* ``POST`` with the form field ``List-Unsubscribe=One-Click`` (what Gmail, Yahoo and Apple Mail
  send, url-encoded or multipart, and what the confirmation page's button sends): the token is
  verified with ``DIGEST_SECRET`` and the address is suppressed (reason ``unsubscribed``, source
  ``one-click``). The answer is 200 with a short page, never a redirect.
* ``GET``: a confirmation page with a button. A GET alone never unsubscribes, so the link scanners
  of mail filters that open every link cannot unsubscribe anyone.
* A forged, malformed or foreign token (signed with another secret): 400, nothing changes.
* The token of a ``digest send --test`` proof: a page saying it was a test; nobody unsubscribes.
* Any other path or method: 404 or 405 with the same kind of page. Never a redirect (Starlette
  would answer ``/u/<token>/`` with a 307 to the ``Host`` the client named), and every answer,
  errors included, carries ``Cache-Control: no-store`` and the other headers below.

Each new unsubscribe writes one line to stderr (logger ``digest.unsubscribe``) with the edition
and a keyed fingerprint of the address (:func:`~digest.tokens.address_fingerprint`), never the
address itself: logs are kept and shipped where the suppression list is not.

``create_app(settings)`` builds the app; the module's ``app`` builds itself from the environment on
first use, for any ASGI server: ``uvicorn digest.unsubscribe_app:app``.
"""

from __future__ import annotations

import html
import logging
import re
import sys
import threading
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from digest.audience.suppressions import SuppressionError, SuppressionStore
from digest.errors import ConfigError, DigestError
from digest.settings import Settings, load_settings
from digest.tokens import InvalidToken, TokenClaims, address_fingerprint, verify_token

log = logging.getLogger("digest.unsubscribe")

MAX_BODY_BYTES = 8 * 1024  # the one-click form is a few dozen bytes; refuse anything big
SOURCE = "one-click"
_ONE_CLICK_FIELD = "List-Unsubscribe"
_ONE_CLICK_VALUE = "One-Click"
_TOKEN_PATH_PARAM = "token"

# Pages are self-contained: no script, no external resource, nothing to load or track.
_SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    ),
}

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>{title}</title>
<style>
body{{font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;background:#f6f6f6;
margin:0;padding:2rem 1rem}}
main{{max-width:32rem;margin:0 auto;background:#fff;border-radius:8px;padding:1.5rem 2rem}}
h1{{font-size:1.4rem;margin-top:0}}
button{{font:inherit;padding:.6rem 1.2rem;border:0;border-radius:6px;background:#b3261e;
color:#fff;cursor:pointer}}
</style></head>
<body><main><h1>{title}</h1>{body}</main></body></html>
"""


def route_for(unsubscribe_url: str) -> tuple[str, str | None]:
    """``(route path, query parameter name)`` for a DIGEST_UNSUBSCRIBE_URL template.

    ``https://x.org/u/{token}`` -> ``("/u/{token}", None)``;
    ``https://x.org/unsubscribe?t={token}`` -> ``("/unsubscribe", "t")``.
    """
    parts = urlsplit(unsubscribe_url)
    path = unquote(parts.path.replace("%7Btoken%7D", "{token}").replace("%7btoken%7d", "{token}"))
    path = path or "/"
    if "{token}" in path:
        if path.count("{token}") > 1 or re.search(r"\{(?!token\})", path):
            raise ConfigError(
                "DIGEST_UNSUBSCRIBE_URL: its path may hold {token} once and no other braces"
            )
        return path, None
    for name, values in parse_qs(parts.query, keep_blank_values=True).items():
        if "{token}" in values:
            return path, name
    raise ConfigError(
        "DIGEST_UNSUBSCRIBE_URL must hold {token} as a whole path segment or query value",
        hint="e.g. https://example.org/unsubscribe/{token}",
    )


def create_app(settings: Settings, state_dir: Path | None = None) -> Starlette:
    """The endpoint for ``settings`` (DIGEST_SECRET and DIGEST_UNSUBSCRIBE_URL required);
    suppressions go to ``state_dir`` (default DIGEST_STATE_DIR)."""
    settings.require("DIGEST_SECRET", "DIGEST_UNSUBSCRIBE_URL")
    assert settings.secret is not None and settings.unsubscribe_url is not None
    secret = settings.secret.get_secret_value()
    path, query_param = route_for(settings.unsubscribe_url)
    store_dir = Path(state_dir) if state_dir is not None else settings.state_dir
    # Fail at start-up, not at the first click, when the state folder cannot be used.
    SuppressionStore(store_dir).close()

    def token_of(request: Request) -> str:
        if query_param is None:
            return str(request.path_params.get(_TOKEN_PATH_PARAM, ""))
        return request.query_params.get(query_param, "")

    def claims_of(request: Request) -> TokenClaims | None:
        try:
            return verify_token(secret, token_of(request))
        except InvalidToken:
            return None

    async def confirm_page(request: Request) -> HTMLResponse:
        claims = claims_of(request)
        if claims is None:
            return _invalid_link()
        if claims.proof:
            return _proof_page()
        suppressed = await run_in_threadpool(_is_suppressed, store_dir, claims.address)
        address = html.escape(claims.address)
        if suppressed:
            return _page(
                "You are unsubscribed", f"<p><b>{address}</b> gets no more mail from us.</p>"
            )
        # A form without action posts back to this very URL, token (path or query) included.
        form = (
            f"<p>Stop sending this newsletter to <b>{address}</b>?</p>"
            '<form method="post">'
            f'<input type="hidden" name="{_ONE_CLICK_FIELD}" value="{_ONE_CLICK_VALUE}">'
            "<button type=submit>Unsubscribe</button></form>"
        )
        return _page("Unsubscribe", form)

    async def one_click(request: Request) -> HTMLResponse:
        claims = claims_of(request)
        if claims is None:
            return _invalid_link()
        if claims.proof:
            return _proof_page()
        body = await _read_capped(request)
        if body is None:
            return _page("Request too large", "<p>The request is too large.</p>", status=413)
        if not _is_one_click(request.headers.get("content-type", ""), body):
            return _page(
                "Not an unsubscribe request",
                "<p>The request does not carry <code>List-Unsubscribe=One-Click</code>.</p>",
                status=400,
            )
        try:
            new = await run_in_threadpool(_suppress, store_dir, claims)
        except SuppressionError:
            log.exception("could not record the unsubscribe of %s", claims.address)
            return _page("Try again later", "<p>Your request could not be saved.</p>", status=503)
        if new:
            fingerprint = address_fingerprint(secret, claims.address)
            log.info("unsubscribed %s (edition %s, one-click)", fingerprint, claims.slug)
        address = html.escape(claims.address)
        return _page("You are unsubscribed", f"<p><b>{address}</b> gets no more mail from us.</p>")

    _log_to_stderr()
    app = Starlette(
        routes=[
            Route(path, confirm_page, methods=["GET"]),
            Route(path, one_click, methods=["POST"]),
        ],
        exception_handlers={
            HTTPException: _http_error,
            Exception: _server_error,  # the 500 page, still with no-store
        },
    )
    # No "/u/<token>/" -> 307 to whatever Host the client sent: every path answers itself.
    app.router.redirect_slashes = False
    return app


def _log_to_stderr() -> None:
    """One line per new unsubscribe reaches stderr under any ASGI server: uvicorn configures
    only its own loggers, and Python's last-resort handler drops INFO lines."""
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


async def _http_error(request: Request, exc: Exception) -> HTMLResponse:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 405:
        response = _page("Method not allowed", "<p>This address takes GET and POST.</p>", 405)
        response.headers["Allow"] = "GET, HEAD, POST"
        return response
    return _page("Not found", "<p>There is nothing at this address.</p>", status=status)


async def _server_error(request: Request, exc: Exception) -> HTMLResponse:
    return _page("Try again later", "<p>Something went wrong on our side.</p>", status=500)


def _is_suppressed(store_dir: Path, address: str) -> bool:
    with SuppressionStore(store_dir) as store:
        return store.contains(address)


def _suppress(store_dir: Path, claims: TokenClaims) -> bool:
    with SuppressionStore(store_dir) as store:
        return store.add(claims.address, "unsubscribed", SOURCE, slug=claims.slug)


async def _read_capped(request: Request) -> bytes | None:
    """The request body, or None once it passes MAX_BODY_BYTES (read no further)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return None
    return bytes(body)


def _is_one_click(content_type: str, body: bytes) -> bool:
    """True when the form carries ``List-Unsubscribe=One-Click`` (url-encoded or multipart)."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "multipart/form-data":
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace") + body
        )
        if not message.is_multipart():
            return False
        for part in message.iter_parts():
            if part.get_param("name", header="content-disposition") == _ONE_CLICK_FIELD:
                value = part.get_payload(decode=True)
                if isinstance(value, bytes) and value.strip() == _ONE_CLICK_VALUE.encode():
                    return True
        return False
    # application/x-www-form-urlencoded, and clients that send the same body with another type.
    try:
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        return False
    return _ONE_CLICK_VALUE in form.get(_ONE_CLICK_FIELD, [])


def _page(title: str, body_html: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        _PAGE.format(title=html.escape(title), body=body_html),
        status_code=status,
        headers=_SECURITY_HEADERS,
    )


def _proof_page() -> HTMLResponse:
    return _page(
        "This was a test copy",
        "<p>This link comes from a test copy of the newsletter (a proof sent before the real "
        "send). Nobody was unsubscribed.</p>",
    )


def _invalid_link() -> HTMLResponse:
    return _page(
        "This unsubscribe link is not valid",
        "<p>The link may have been cut or changed. Use the unsubscribe link of a recent email, "
        "or reply to it and ask to be removed.</p>",
        status=400,
    )


class _LazyApp:
    """An ASGI app that builds the real one from the environment (and ./.env) on first use, so
    ``uvicorn digest.unsubscribe_app:app`` works without any code of the curator's."""

    def __init__(self) -> None:
        self._app: Starlette | None = None
        self._lock = threading.Lock()

    def get(self) -> Starlette:
        with self._lock:
            if self._app is None:
                self._app = create_app(load_settings())
            return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            # Build at start-up so a missing setting stops the server with a clear message.
            await receive()  # lifespan.startup
            try:
                self.get()
            except DigestError as exc:
                await send({"type": "lifespan.startup.failed", "message": f"digest: {exc}"})
                return
            await send({"type": "lifespan.startup.complete"})
            await receive()  # lifespan.shutdown
            await send({"type": "lifespan.shutdown.complete"})
            return
        await self.get()(scope, receive, send)


app = _LazyApp()
