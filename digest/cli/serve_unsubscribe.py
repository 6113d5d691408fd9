"""``digest serve-unsubscribe [--host H] [--port P]``: the one-click endpoint under uvicorn."""

from __future__ import annotations

import socket

import click

from digest.cli import cli
from digest.cli.output import out
from digest.errors import DigestError
from digest.settings import load_settings
from digest.unsubscribe_app import create_app, route_for


@cli.command("serve-unsubscribe")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8080,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free one).",
)
def serve_unsubscribe(host: str, port: int) -> int:
    """Serve the one-click unsubscribe endpoint (RFC 8058) at the path of DIGEST_UNSUBSCRIBE_URL.

    Needs DIGEST_SECRET and DIGEST_UNSUBSCRIBE_URL. Put it behind a reverse proxy that holds the
    TLS certificate of the host in DIGEST_UNSUBSCRIBE_URL (see docs/lifecycle.md). Ctrl-C stops it.
    """
    import uvicorn

    settings = load_settings()
    app = create_app(settings)
    assert settings.unsubscribe_url is not None
    listener = _listen(host, port)
    bound_port = listener.getsockname()[1]
    path, query_param = route_for(settings.unsubscribe_url)
    shown_host = f"[{host}]" if ":" in host else host
    local = f"http://{shown_host}:{bound_port}{path}"
    if query_param is not None:
        local += f"?{query_param}={{token}}"
    out.print(f"Unsubscribe endpoint: {local}", markup=False)
    out.print(f"Public links: {settings.unsubscribe_url}", markup=False)
    out.print("Press Ctrl-C to stop.", markup=False)
    # No access log: request lines carry tokens, and tokens carry subscribers' addresses.
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, proxy_headers=True, server_header=False
    )
    try:
        uvicorn.Server(config).run(sockets=[listener])
    except KeyboardInterrupt:
        # uvicorn shuts down cleanly on Ctrl-C, then re-raises it: for a server, it is the way
        # to stop, not an error.
        pass
    finally:
        listener.close()
    out.print("Stopped.", markup=False)
    return 0


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket bound before uvicorn starts, so the real port (even 0) is printed."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        listener = socket.socket(family, kind, proto)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(128)
    except OSError as exc:
        raise DigestError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="choose another --port, or stop what is using it",
        ) from exc
    return listener
