"""The live preview server: a small Starlette app that shows the rendered edition and pushes a
fresh render to the page (server-sent events) each time the edition or a template is saved.

Routes (a fixed set; nothing else on disk is reachable):

``/``                the page (static/index.html)
``/static/<name>``   the page's own CSS and JS, from a whitelist
``/email.html``      the email filled for a sample subscriber (``?scheme=dark`` forces dark rules)
``/email.txt``       the plain-text twin, exactly as sent
``/web.html``        the web edition as ``digest publish`` writes it (``?scheme=dark`` as above)
``/api/state``       the latest state as JSON (subject, preheader, text, source, checks, errors)
``/events``          server-sent events: one ``state`` event per render, carrying that JSON

Safety (issue 6): binds 127.0.0.1 unless told otherwise, answers 400 to a Host header that is not
its own (DNS rebinding), sends a strict CSP on the page and ``script-src 'none'`` on the email.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from watchfiles import Change, awatch

from digest.errors import DigestError
from digest.preview.frame import Scheme, email_for_frame
from digest.preview.snapshot import PreviewOptions, RenderFailure, Snapshot, render_snapshot
from digest.render.email import default_templates_dir

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
# The email frame: no script at all; inline styles and remote images as a mail client allows.
EMAIL_CSP = (
    "default-src 'none'; script-src 'none'; style-src 'unsafe-inline' https: http:; "
    "img-src https: http: data: cid:; font-src https: http: data:; media-src https: http:; "
    "object-src 'none'; form-action 'none'; frame-ancestors 'self'; "
    "sandbox allow-same-origin allow-popups allow-popups-to-escape-sandbox"
)
STATIC_FILES = {
    "preview.css": "text/css; charset=utf-8",
    "preview.js": "text/javascript; charset=utf-8",
}
LOCAL_HOSTNAMES = frozenset({"127.0.0.1", "localhost", "[::1]"})
SSE_KEEPALIVE_SECONDS = 15.0
WATCH_DEBOUNCE_MS = 50
WATCH_STEP_MS = 20

RenderCallback = Callable[[Snapshot | RenderFailure], None]


class RenderHub:
    """The latest render and its waiters. Lives on the server's event loop; renders in a thread."""

    def __init__(self, options: PreviewOptions, on_render: RenderCallback | None = None) -> None:
        self.options = options
        self.on_render = on_render
        self.version = 0  # bumps on every render attempt, good or not
        self.good: Snapshot | None = None
        self.good_version = 0
        self.failure: RenderFailure | None = None
        self.closed = False
        self.instance = secrets.token_hex(8)  # lets a page notice that the server restarted
        self._changed = asyncio.Event()
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        """Render now (in a worker thread, so the server keeps answering) and wake the pages."""
        async with self._lock:
            outcome = await asyncio.to_thread(render_snapshot, self.options)
            self.version += 1
            if isinstance(outcome, Snapshot):
                self.good, self.good_version, self.failure = outcome, self.version, None
            else:
                self.failure = outcome
            self._wake()
        if self.on_render is not None:
            self.on_render(outcome)

    def close(self) -> None:
        """Let every open event stream end, so the server can stop at once."""
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for_change(self, seen_version: int, timeout: float) -> None:
        if self.version != seen_version or self.closed:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    def state(self) -> dict[str, Any]:
        return {
            "instance": self.instance,
            "version": self.version,
            "email_version": self.good_version,
            "ok": self.failure is None,
            "errors": self.failure.as_json() if self.failure else [],
            "email": self.good.as_json() if self.good else None,
            "edition": str(self.options.edition_path),
        }


def _read_static(name: str) -> bytes:
    return resources.files("digest.preview").joinpath("static", name).read_bytes()


def _split_host(host: str) -> tuple[str, str | None]:
    """``"[::1]:8000"`` -> ``("[::1]", "8000")``; a malformed value gives a port of None."""
    if host.startswith("["):
        name, bracket, rest = host.partition("]")
        if not bracket:
            return host, None
        if not rest:
            return name + "]", ""
        return name + "]", rest[1:] if rest.startswith(":") else None
    name, _, port = host.partition(":")
    return name, port


class SecurityMiddleware:
    """Host check against DNS rebinding, and the headers every answer carries."""

    def __init__(self, app: ASGIApp, extra_hosts: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.extra_hosts = extra_hosts

    def _host_allowed(self, scope: Scope) -> bool:
        host = ""
        for key, value in scope.get("headers", []):
            if key == b"host":
                host = value.decode("latin-1").strip().lower()
                break
        name, host_port = _split_host(host)
        server = scope.get("server") or ("", 0)
        port = str(server[1])
        # Browsers leave out the port only when it is the scheme's default.
        if host_port != port and not (host_port == "" and port == "80"):
            return False
        local_ip = str(server[0]).lower()
        allowed = LOCAL_HOSTNAMES | self.extra_hosts | {local_ip, f"[{local_ip}]"}
        return name in allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {key.lower() for key, _ in headers}
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", PAGE_CSP.encode()))
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"referrer-policy", b"no-referrer"))
                headers.append((b"cross-origin-resource-policy", b"same-origin"))
                message = {**message, "headers": headers}
            await send(message)

        if not self._host_allowed(scope):
            response = PlainTextResponse("Bad Host header: this preview answers only its own.", 400)
            await response(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)


def _no_store(response: Response) -> Response:
    response.headers["cache-control"] = "no-store"
    return response


def create_app(
    options: PreviewOptions,
    *,
    host: str = "127.0.0.1",
    on_render: RenderCallback | None = None,
    watch: bool = True,
) -> Starlette:
    """The preview app. ``app.state.hub`` holds the renders; ``host`` is the --host value."""
    hub = RenderHub(options, on_render)

    async def page(request: Request) -> Response:
        return _no_store(Response(_read_static("index.html"), media_type="text/html"))

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC_FILES:
            return PlainTextResponse("Not Found", 404)
        return _no_store(Response(_read_static(name), headers={"content-type": STATIC_FILES[name]}))

    async def email_html(request: Request) -> Response:
        if hub.good is None:
            return _no_store(
                Response(
                    "<!doctype html><title>no render yet</title>",
                    media_type="text/html",
                    headers={"content-security-policy": EMAIL_CSP},
                )
            )
        scheme: Scheme = "dark" if request.query_params.get("scheme") == "dark" else "light"
        body = email_for_frame(hub.good.html, scheme)
        return _no_store(
            Response(body, media_type="text/html", headers={"content-security-policy": EMAIL_CSP})
        )

    async def web_html(request: Request) -> Response:
        body = "<!doctype html><title>no render yet</title>"
        if hub.good is not None:
            scheme: Scheme = "dark" if request.query_params.get("scheme") == "dark" else "light"
            body = email_for_frame(hub.good.web_html, scheme)
        return _no_store(
            Response(body, media_type="text/html", headers={"content-security-policy": EMAIL_CSP})
        )

    async def email_text(request: Request) -> Response:
        text = hub.good.text if hub.good else ""
        return _no_store(PlainTextResponse(text))

    async def api_state(request: Request) -> Response:
        return _no_store(JSONResponse(hub.state()))

    async def events(request: Request) -> Response:
        async def stream() -> AsyncIterator[str]:
            yield "retry: 500\n\n"
            seen = -1
            while not hub.closed:
                if hub.version != seen:
                    seen = hub.version
                    # json.dumps escapes newlines, so the payload is one SSE data line.
                    yield f"event: state\ndata: {json.dumps(hub.state())}\n\n"
                    continue
                await hub.wait_for_change(seen, SSE_KEEPALIVE_SECONDS)
                if hub.version == seen and not hub.closed:
                    yield ": keep-alive\n\n"

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await hub.refresh()
        stop = asyncio.Event()
        tasks = [asyncio.create_task(_watch(hub, options, stop))] if watch else []
        try:
            yield
        finally:
            hub.close()
            stop.set()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(task, 2)

    app = Starlette(
        routes=[
            Route("/", page),
            Route("/static/{name}", static),
            Route("/email.html", email_html),
            Route("/email.txt", email_text),
            Route("/web.html", web_html),
            Route("/api/state", api_state),
            Route("/events", events),
        ],
        lifespan=lifespan,
    )
    app.state.hub = hub
    extra = frozenset({host.lower(), f"[{host.lower()}]"})
    app.add_middleware(SecurityMiddleware, extra_hosts=extra)
    return app


async def _watch(hub: RenderHub, options: PreviewOptions, stop: asyncio.Event) -> None:
    """Re-render on every save of the edition file or of any template.

    The edition's folder is watched (not the file) because editors often save by writing a new
    file and renaming it over the old one; only events for the edition's own path count.
    """
    edition = options.edition_path.resolve()
    templates = (options.templates_dir or default_templates_dir()).resolve()

    def relevant(change: Change, path: str) -> bool:
        changed = Path(path).resolve()
        if changed == edition:
            return True
        return changed.is_relative_to(templates)

    async def watch(paths: list[Path], recursive: bool) -> None:
        polling = False
        while not stop.is_set():
            try:
                async for _changes in awatch(
                    *paths,
                    watch_filter=relevant,
                    debounce=WATCH_DEBOUNCE_MS,
                    step=WATCH_STEP_MS,
                    recursive=recursive,
                    stop_event=stop,
                    force_polling=polling or None,
                    poll_delay_ms=100,
                ):
                    await hub.refresh()
                return
            except OSError:
                if polling:
                    raise
                # Out of inotify watches, or a file system without events: poll instead.
                polling = True

    watchers = [watch([edition.parent], recursive=False)]
    if templates.is_dir():
        watchers.append(watch([templates], recursive=True))
    await asyncio.gather(*watchers)


class PreviewServer(uvicorn.Server):
    """uvicorn, but open event streams are ended first so Ctrl-C stops at once."""

    def __init__(self, config: uvicorn.Config, hub: RenderHub) -> None:
        super().__init__(config)
        self.hub = hub

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.hub.close()
        await super().shutdown(sockets=sockets)


def build_server(app: Starlette) -> PreviewServer:
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=2,
        server_header=False,
    )
    return PreviewServer(config, app.state.hub)


def bind_socket(host: str, port: int, *, tries: int = 1) -> socket.socket:
    """A listening socket on ``host`` at ``port`` or, when taken, one of the next ``tries - 1``
    ports. Port 0 lets the system choose. Raises DigestError when none is free."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise DigestError(f"cannot listen on host {host!r}: {exc.strerror}") from None
    family, _, _, _, address = infos[0]
    last_error: OSError | None = None
    for candidate in [port] if port == 0 else range(port, min(port + tries, 65536)):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address[0], candidate, *address[2:]))
            sock.listen(128)
        except OSError as exc:
            sock.close()
            last_error = exc
            continue
        sock.setblocking(False)
        return sock
    tried = f"port {port}" if tries == 1 else f"ports {port}-{port + tries - 1}"
    reason = last_error.strerror if last_error else "no port to try"
    raise DigestError(
        f"cannot listen on {host} {tried}: {reason}", hint="choose another with --port"
    )


def url_for(sock: socket.socket, host: str) -> str:
    """The address to open: a wildcard bind is opened through the loopback address."""
    port = sock.getsockname()[1]
    if host in ("0.0.0.0", "", "::"):
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}/"


@contextlib.contextmanager
def serve_in_thread(
    options: PreviewOptions,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    on_render: RenderCallback | None = None,
) -> Iterator[str]:
    """Run the preview in a background thread (tests, the bench); yields its base URL."""
    sock = bind_socket(host, port)
    app = create_app(options, host=host, on_render=on_render)
    server = build_server(app)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="digest-preview", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise DigestError("the preview server did not start")
        time.sleep(0.01)
    try:
        yield url_for(sock, host).rstrip("/")
    finally:
        server.should_exit = True
        thread.join(10)
