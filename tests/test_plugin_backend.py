"""A backend from another package, found through the ``digest.backends`` entry-point group.

The backend is the example of docs/sending.md, taken from the docs as they are, so the example a
curator copies is known to work. It is installed the way pip would leave it: a module and a
``.dist-info`` folder with ``entry_points.txt`` on the Python path.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from email import message_from_bytes
from pathlib import Path

from conftest import write_subscribers
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

DOCS = Path(__file__).resolve().parents[1] / "docs" / "sending.md"
TOKEN = "whk-7c1e9a4b2d8f3e6a5b0c"  # the plug-in's declared secret: distinctive, easy to find


def example_backend_source() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.S)
    (source,) = [block for block in blocks if "class WebhookBackend" in block]
    return source


def install_plugin(site: Path) -> None:
    (site / "my_digest_backend.py").write_text(example_backend_source(), encoding="utf-8")
    dist_info = site / "my_digest_backend-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: my-digest-backend\nVersion: 0.1\n", encoding="utf-8"
    )
    (dist_info / "entry_points.txt").write_text(
        "[digest.backends]\nwebhook = my_digest_backend:WebhookBackend\n", encoding="utf-8"
    )


def test_a_plugin_backend_sends_through_the_entry_point(
    tmp_path: Path, httpserver: HTTPServer, send_env: dict[str, str], edition_file: Path
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    install_plugin(site)
    write_subscribers(tmp_path / "subscribers.csv", 3)
    received: list[bytes] = []

    authorizations: list[str | None] = []

    def accept(request: Request) -> Response:
        received.append(request.get_data())
        authorizations.append(request.headers.get("Authorization"))
        return Response("ok", status=200, headers={"x-id": f"hook-{len(received)}"})

    httpserver.expect_request("/hook", method="POST").respond_with_handler(accept)
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DIGEST_", "SMTP_", "MAILGUN_"))
    }
    env |= send_env | {
        "WEBHOOK_URL": httpserver.url_for("/hook"),
        "WEBHOOK_TOKEN": TOKEN,
        "PYTHONPATH": str(site),
        "NO_COLOR": "1",
    }
    digest = Path(sys.executable).parent / "digest"
    command = [str(digest), "send", str(edition_file), "--subscribers", "subscribers.csv"]

    sent = subprocess.run(
        [*command, "--backend", "webhook", "--yes"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert sent.returncode == 0, sent.stdout + sent.stderr
    recipients = sorted(message_from_bytes(body)["To"] for body in received)
    assert recipients == [f"Reader {n} <reader{n:04d}@example.org>" for n in range(3)]
    assert authorizations == [f"Bearer {TOKEN}"] * 3

    # Its own setting is checked before anything is sent, with the plug-in's message.
    del env["WEBHOOK_URL"]
    refused = subprocess.run(
        [*command, "--backend", "webhook", "--yes"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1
    assert "WEBHOOK_URL" in refused.stderr and "Traceback" not in refused.stderr
    assert len(received) == 3


def test_a_plugins_declared_secret_never_leaks_from_a_failing_send(
    tmp_path: Path, httpserver: HTTPServer, send_env: dict[str, str], edition_file: Path
) -> None:
    """The webhook refuses every message and quotes the token back (as a careless server
    might): the token must show nowhere, in any output form, file or the state database."""
    site = tmp_path / "site"
    site.mkdir()
    install_plugin(site)
    write_subscribers(tmp_path / "subscribers.csv", 3)
    # For the dry run: a name holding the token puts it into a message, which the outbox
    # must then refuse to write (the ledger is not used by a dry run).
    write_subscribers(tmp_path / "dry.csv", 3)
    with (tmp_path / "dry.csv").open("a", encoding="utf-8") as csv:
        csv.write(f"leak@example.org,Name {TOKEN}\n")

    def refuse(request: Request) -> Response:
        token = (request.headers.get("Authorization") or "").removeprefix("Bearer ")
        return Response(f"bad request from token {token}", status=400)

    httpserver.expect_request("/hook", method="POST").respond_with_handler(refuse)
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DIGEST_", "SMTP_", "MAILGUN_"))
    }
    env |= send_env | {
        "WEBHOOK_URL": httpserver.url_for("/hook"),
        "WEBHOOK_TOKEN": TOKEN,
        "PYTHONPATH": str(site),
        "NO_COLOR": "1",
    }
    digest = str(Path(sys.executable).parent / "digest")
    common = [digest, "send", str(edition_file), "--yes", "--backend", "webhook"]

    runs = [
        subprocess.run(
            [*common, *extra],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        for extra in (
            ["--subscribers", "subscribers.csv"],
            ["--subscribers", "subscribers.csv", "--log-format", "json", "--retry-failed"],
            ["--subscribers", "dry.csv", "--dry-run"],
        )
    ]

    assert [run.returncode for run in runs[:2]] == [3, 3], runs[0].stderr + runs[1].stderr
    assert "bad request from token ***" in runs[0].stdout + runs[0].stderr
    assert '"event"' in runs[1].stdout + runs[1].stderr  # the JSON log did run
    for run in runs:
        assert TOKEN not in run.stdout + run.stderr
    written = [p for p in tmp_path.rglob("*") if p.is_file() and site not in p.parents]
    state_files = [p for p in written if ".digest" in p.parts]
    assert state_files, "the failing send left a ledger"
    assert [p for p in written if p.suffix == ".eml"], "the dry run wrote an outbox"
    assert "the message holds a secret setting; not written" in runs[2].stdout + runs[2].stderr
    for path in written:
        if path.name != "dry.csv":
            assert TOKEN.encode() not in path.read_bytes(), path
