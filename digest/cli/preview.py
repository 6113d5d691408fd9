"""``digest preview EDITION``: the live preview in the browser, re-rendered on every save."""

from __future__ import annotations

import signal
import time
import webbrowser
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from digest.cli import cli
from digest.cli.output import err, out
from digest.edition.load import load_edition
from digest.errors import DigestError
from digest.preview.server import bind_socket, build_server, create_app, url_for
from digest.preview.snapshot import PreviewOptions, RenderFailure, Snapshot
from digest.settings import load_settings

# When --port is taken, the next ports tried before giving up.
PORT_TRIES = 20


def _report(outcome: Snapshot | RenderFailure) -> None:
    stamp = time.strftime("%H:%M:%S")
    if isinstance(outcome, Snapshot):
        out.print(
            f"{stamp} rendered in {outcome.render_ms:.0f} ms, {outcome.html_bytes / 1024:.1f} KB",
            markup=False,
        )
        return
    err.print(f"{stamp} the edition cannot be rendered (the page shows why):", markup=False)
    for line in outcome.lines:
        err.print(f"  {line}", markup=False)


@contextmanager
def _sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM (``kill``, a service manager) stops the preview as Ctrl-C does.

    uvicorn catches both, shuts down, then raises the caught signal again for the handler that
    was there before it: for SIGTERM the default one, which would kill the process before it
    says it stopped. With Python's Ctrl-C handler in its place, it ends as a KeyboardInterrupt.
    """
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@cli.command()
@click.argument("edition_path", metavar="EDITION", type=click.Path(path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on; when taken, the next free one is used (0: any free port).",
)
@click.option("--no-open", is_flag=True, help="Do not open the browser.")
@click.option(
    "--subscribers",
    "subscribers_path",
    metavar="CSV",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Personalise the preview with the first subscribed row of this list.",
)
def preview(
    edition_path: Path, host: str, port: int, no_open: bool, subscribers_path: Path | None
) -> int:
    """Serve a live preview of EDITION and open it in the browser.

    Every save of the edition or of a template in email_templates/ shows at once; a broken save
    shows its problems over the last good render. Ctrl-C (or SIGTERM) stops.

    \b
    Example:
      digest preview content/2026-03.yaml
    """
    if not edition_path.is_file():
        load_edition(edition_path)  # raises the error `validate` gives: no such file, a folder
    if subscribers_path is not None and not subscribers_path.is_file():
        raise DigestError(f"{subscribers_path}: no such file")
    settings = load_settings()
    # The path as typed (not resolved): problems then read as `digest validate` prints them.
    options = PreviewOptions(
        edition_path=edition_path, settings=settings, subscribers=subscribers_path
    )
    sock = bind_socket(host, port, tries=PORT_TRIES)
    bound_port = sock.getsockname()[1]
    if port not in (0, bound_port):
        out.print(f"Port {port} is in use; using port {bound_port} instead.", markup=False)
    if host not in ("127.0.0.1", "localhost", "::1"):
        err.print(f"Listening on {host}: other machines may see this preview.", markup=False)
    url = url_for(sock, host)
    server = build_server(create_app(options, host=host, on_render=_report))
    out.print(f"Previewing {edition_path} at {url}", markup=False)
    out.print("Press Ctrl-C to stop.", markup=False)
    if not no_open:
        # The socket already listens, so the browser's first request waits for the server.
        webbrowser.open(url)
    try:
        with _sigterm_as_ctrl_c():
            server.run(sockets=[sock])
    except KeyboardInterrupt:
        # uvicorn has already shut down cleanly and re-raises the Ctrl-C (or SIGTERM) it caught.
        pass
    finally:
        sock.close()
    out.print("Preview stopped.", markup=False)
    return 0
