"""`digest preview`'s server, spoken to over real HTTP on 127.0.0.1 (port chosen by the OS)."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from digest.checks import count_dark_rules
from digest.preview.frame import email_for_frame
from digest.preview.server import serve_in_thread
from digest.preview.snapshot import PreviewOptions
from digest.render.email import default_templates_dir
from digest.settings import Settings

REPO = Path(__file__).resolve().parents[1]
DIGEST = [sys.executable, "-c", "from digest.cli import main; main()"]


def edition_yaml(subject: str = "Testletter: the first subject", item: str = "First item") -> str:
    return textwrap.dedent(
        f"""\
        newsletter: Testletter
        edition: April 2026
        subject: {json.dumps(subject)}
        preheader: "A line the inbox shows beside the subject, long enough to fit."
        sections:
          - title: Reading
            items:
              - title: {json.dumps(item)}
                url: https://example.org/one
                summary: A *short* summary of the first item.
              - title: Plain http item
                url: http://insecure.example.org/two
        """
    )


@pytest.fixture
def edition(tmp_path: Path) -> Path:
    path = tmp_path / "2026-04.yaml"
    path.write_text(edition_yaml(), encoding="utf-8")
    return path


@pytest.fixture
def server(edition: Path) -> Iterator[str]:
    """A server of its own, for tests that change the edition."""
    with serve_in_thread(PreviewOptions(edition_path=edition, settings=Settings())) as url:
        yield url


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server for the tests that only read."""
    path = tmp_path_factory.mktemp("shared") / "2026-04.yaml"
    path.write_text(edition_yaml(), encoding="utf-8")
    with serve_in_thread(PreviewOptions(edition_path=path, settings=Settings())) as url:
        yield url


def raw_get(url: str, target: str, host: str | None = None) -> tuple[int, bytes]:
    """GET with the request target sent byte for byte (no client-side `..` clean-up)."""
    parts = httpx.URL(url)
    connection = http.client.HTTPConnection(parts.host, parts.port, timeout=5)
    connection.putrequest("GET", target, skip_host=True, skip_accept_encoding=True)
    connection.putheader("Host", f"{parts.host}:{parts.port}" if host is None else host)
    connection.endheaders()
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, body


class StateStream:
    """Reads the server-sent `state` events one by one."""

    def __init__(self, client: httpx.Client, url: str) -> None:
        self._context = client.stream("GET", url + "/events")
        self.response = self._context.__enter__()
        self._lines = self.response.iter_lines()

    def next_state(self) -> dict:
        event = None
        for line in self._lines:
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event == "state":
                return json.loads(line.removeprefix("data: "))
        raise AssertionError("the event stream ended")

    def close(self) -> None:
        self._context.__exit__(None, None, None)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as http_client:
        yield http_client


# --- routes and headers ------------------------------------------------------------------------


def test_page_and_assets_are_served_with_strict_headers(
    shared_server: str, client: httpx.Client
) -> None:
    page = client.get(shared_server + "/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert 'src="/static/preview.js"' in page.text and "https://" not in page.text  # no CDN

    script = client.get(shared_server + "/static/preview.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith(
        "text/javascript"
    )
    assert "EventSource" in script.text
    assert (
        client.get(shared_server + "/static/preview.css")
        .headers["content-type"]
        .startswith("text/css")
    )


def test_email_frame_forbids_scripts_and_text_is_served_exactly(
    shared_server: str, client: httpx.Client
) -> None:
    email = client.get(shared_server + "/email.html")
    assert email.status_code == 200
    csp = email.headers["content-security-policy"]
    assert "script-src 'none'" in csp and "default-src 'none'" in csp
    assert email.headers["x-content-type-options"] == "nosniff"
    # filled for the sample subscriber: their unsubscribe link is in place
    assert "First item" in email.text and "example.org/unsubscribe" in email.text

    state = client.get(shared_server + "/api/state").json()
    text = client.get(shared_server + "/email.txt")
    assert text.headers["content-type"].startswith("text/plain")
    assert text.text == state["email"]["text"] and "First item" in text.text
    assert state["email"]["subject"] == "Testletter: the first subject"
    assert state["ok"] is True and state["errors"] == []


def test_checks_report_size_lengths_and_plain_http_links(
    shared_server: str, client: httpx.Client
) -> None:
    checks = {
        c["title"]: c for c in client.get(shared_server + "/api/state").json()["email"]["checks"]
    }
    assert checks["HTML size"]["level"] == "ok" and "KB" in checks["HTML size"]["detail"]
    assert checks["Subject length"]["level"] == "ok"
    assert checks["Links not https"]["level"] == "warn"
    assert checks["Links not https"]["items"] == ["http://insecure.example.org/two"]


@pytest.mark.parametrize(
    "host",
    ["evil.example:{port}", "attacker.test", "127.0.0.1:1", "localhost.evil.example:{port}", ""],
)
def test_foreign_host_header_is_refused(shared_server: str, host: str) -> None:
    port = httpx.URL(shared_server).port
    status, body = raw_get(shared_server, "/api/state", host=host.format(port=port))
    assert status == 400
    assert b"Testletter" not in body


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}"])
def test_own_host_names_are_accepted(shared_server: str, host: str) -> None:
    port = httpx.URL(shared_server).port
    status, _ = raw_get(shared_server, "/", host=host.format(port=port))
    assert status == 200


@pytest.mark.parametrize(
    "target",
    [
        "/static/../../pyproject.toml",
        "/static/%2e%2e/%2e%2e/pyproject.toml",
        "/static/..%2f..%2fpyproject.toml",
        "/static/%2e%2e%2f%2e%2e%2fpyproject.toml",
        "/static/..%5c..%5cpyproject.toml",
        "/static/server.py",
        "/static/../server.py",
        "/static/index.html/../../server.py",
        "/../../../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/pyproject.toml",
        "/email.html/../../pyproject.toml",
    ],
)
def test_nothing_outside_the_fixed_routes_is_served(shared_server: str, target: str) -> None:
    status, body = raw_get(shared_server, target)
    assert status == 404
    assert b"build-system" not in body and b"root:" not in body and b"import" not in body


# --- live reload and broken saves --------------------------------------------------------------


def test_a_save_pushes_a_new_render_over_sse(
    server: str, edition: Path, client: httpx.Client
) -> None:
    stream = StateStream(client, server)
    try:
        first = stream.next_state()
        assert first["email"]["subject"] == "Testletter: the first subject"
        saved = time.perf_counter()
        edition.write_text(edition_yaml(subject="Testletter: a new subject"), encoding="utf-8")
        second = stream.next_state()
        elapsed = time.perf_counter() - saved
    finally:
        stream.close()
    assert second["version"] > first["version"]
    assert second["email"]["subject"] == "Testletter: a new subject"
    assert elapsed < 2.0
    assert "Testletter: a new subject" in client.get(server + "/email.html").text


def test_a_save_by_rename_is_seen_too(server: str, edition: Path, client: httpx.Client) -> None:
    """Many editors save by writing a new file and renaming it over the old one."""
    stream = StateStream(client, server)
    try:
        stream.next_state()
        fresh = edition.with_name(".2026-04.yaml.swp")
        fresh.write_text(edition_yaml(item="Renamed into place"), encoding="utf-8")
        os.replace(fresh, edition)
        state = stream.next_state()
    finally:
        stream.close()
    assert state["ok"] is True and "Renamed into place" in state["email"]["text"]


def test_broken_edition_reports_errors_keeps_last_render_and_recovers(
    server: str, edition: Path, client: httpx.Client
) -> None:
    stream = StateStream(client, server)
    try:
        stream.next_state()
        broken = edition_yaml().replace("    url: https://example.org/one\n", "    ur: x\n")
        edition.write_text(broken, encoding="utf-8")
        failed = stream.next_state()
        assert failed["ok"] is False
        texts = [error["text"] for error in failed["errors"]]
        # file:line:col: field: message, naming the place of the mistake
        assert any(
            text.startswith(f"{edition}:") and "sections[0].items[0]" in text for text in texts
        ), texts
        assert failed["email"]["subject"] == "Testletter: the first subject"  # last good render
        assert "First item" in client.get(server + "/email.html").text

        edition.write_text(edition_yaml(item="Fixed item"), encoding="utf-8")
        recovered = stream.next_state()
    finally:
        stream.close()
    assert recovered["ok"] is True and recovered["errors"] == []
    assert "Fixed item" in client.get(server + "/email.html").text


def test_yaml_syntax_error_and_deleted_file_do_not_stop_the_server(
    server: str, edition: Path, client: httpx.Client
) -> None:
    stream = StateStream(client, server)
    try:
        stream.next_state()
        edition.write_text("subject: [unclosed\n", encoding="utf-8")
        failed = stream.next_state()
        assert failed["ok"] is False and failed["errors"][0]["text"].startswith(str(edition))
        edition.unlink()
        gone = stream.next_state()
        assert gone["ok"] is False
        edition.write_text(edition_yaml(item="Back again"), encoding="utf-8")
        back = stream.next_state()
    finally:
        stream.close()
    assert back["ok"] is True and "Back again" in back["email"]["text"]


def test_template_error_is_shown_and_a_fixed_template_recovers(
    tmp_path: Path, edition: Path, client: httpx.Client
) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(default_templates_dir(), templates)
    html_template = next(templates.glob("*.mjml.j2"))
    good = html_template.read_text(encoding="utf-8")
    options = PreviewOptions(edition_path=edition, settings=Settings(), templates_dir=templates)
    with serve_in_thread(options) as url:
        stream = StateStream(client, url)
        try:
            assert stream.next_state()["ok"] is True
            html_template.write_text(good + "\n{% if %}\n", encoding="utf-8")
            failed = stream.next_state()
            assert failed["ok"] is False
            assert html_template.name in failed["errors"][0]["text"]
            html_template.write_text(good.replace("</mjml>", "</mjml>\n"), encoding="utf-8")
            assert stream.next_state()["ok"] is True
        finally:
            stream.close()


# --- content and secrets -----------------------------------------------------------------------


def test_hostile_content_stays_text_and_secrets_stay_out(
    tmp_path: Path, client: httpx.Client
) -> None:
    secret = "s3cret-never-shown-0123456789"
    path = tmp_path / "hostile.yaml"
    subject = "<script>alert(1)</script> {{ 7*7 }} %recipient.name%"
    path.write_text(edition_yaml(subject=subject, item="<img src=x onerror=alert(1)>"), "utf-8")
    settings = Settings(
        secret=SecretStr(secret),
        unsubscribe_url="https://example.org/u?t={token}",
        raw={"SMTP_PASSWORD": "smtp-pass-also-secret"},
    )
    with serve_in_thread(PreviewOptions(edition_path=path, settings=settings)) as url:
        state = client.get(url + "/api/state")
        email = client.get(url + "/email.html").text
    assert state.json()["email"]["subject"] == subject  # literal, never evaluated
    assert "<script>alert(1)" not in email and "<img src=x" not in email
    assert "&lt;script&gt;" in email and "{{ 7*7 }}" in email
    for body in (state.text, email):
        assert secret not in body and "smtp-pass-also-secret" not in body


def test_first_subscribed_row_personalises_the_preview(
    tmp_path: Path, edition: Path, client: httpx.Client
) -> None:
    subscribers = tmp_path / "subscribers.csv"
    subscribers.write_text(
        textwrap.dedent(
            """\
            email,name,status,city
            gone@example.org,Gone Person,unsubscribed,Nowhere
            ada@example.org,Ada Lovelace,,London
            bob@example.org,Bob,,Paris
            """
        ),
        encoding="utf-8",
    )
    options = PreviewOptions(edition_path=edition, settings=Settings(), subscribers=subscribers)
    with serve_in_thread(options) as url:
        state = client.get(url + "/api/state").json()
    assert state["email"]["to"] == "Ada Lovelace <ada@example.org>"


def test_the_subscribers_list_is_read_again_only_when_it_changes(
    tmp_path: Path, edition: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Finding the first sendable row reads the whole list; a save of the edition must not pay
    # that again (a list of 500,000 rows costs over a second), but a changed list is re-read.
    import digest.audience.subscribers as subscribers_module
    from digest.preview.snapshot import render_snapshot

    reads: list[Path] = []
    real_read = subscribers_module.read_subscribers

    def counting_read(
        path: Path, report: subscribers_module.SubscriberReport
    ) -> Iterator[subscribers_module.Subscriber]:
        reads.append(path)
        return real_read(path, report)

    monkeypatch.setattr(subscribers_module, "read_subscribers", counting_read)
    subscribers = tmp_path / "subscribers.csv"
    subscribers.write_text("email,name\nada@example.org,Ada\n", encoding="utf-8")
    options = PreviewOptions(edition_path=edition, settings=Settings(), subscribers=subscribers)
    first, again = render_snapshot(options), render_snapshot(options)
    assert [getattr(s, "to_line", None) for s in (first, again)] == ["Ada <ada@example.org>"] * 2
    assert len(reads) == 1
    subscribers.write_text("email,name\ngrace@example.org,Grace Hopper\n", encoding="utf-8")
    changed = render_snapshot(options)
    assert getattr(changed, "to_line", None) == "Grace Hopper <grace@example.org>"
    assert len(reads) == 2


# --- dark mode ---------------------------------------------------------------------------------


def test_dark_switch_turns_the_emails_dark_rules_on_and_off() -> None:
    html = textwrap.dedent(
        """\
        <html><head><meta name="color-scheme" content="light dark">
        <style>p { color: black } @media (prefers-color-scheme: dark) { p { color: white } }</style>
        </head><body><p>(prefers-color-scheme: dark) as text</p></body></html>
        """
    )
    assert count_dark_rules(html) == 1
    dark = email_for_frame(html, "dark")
    light = email_for_frame(html, "light")
    assert "@media (min-width: 0px) { p { color: white } }" in dark
    assert "@media (max-width: 0px) { p { color: white } }" in light
    assert "color-scheme:dark !important" in dark and "color-scheme:light !important" in light
    # Content outside <style> is never touched; links open outside the frame.
    assert "<p>(prefers-color-scheme: dark) as text</p>" in dark
    assert '<base target="_blank">' in dark


def test_dark_email_is_served_on_request(shared_server: str, client: httpx.Client) -> None:
    source = client.get(shared_server + "/api/state").json()["email"]["html_source"]
    dark = client.get(shared_server + "/email.html?scheme=dark").text
    light = client.get(shared_server + "/email.html?scheme=light").text
    assert count_dark_rules(source) > 0  # the bundled templates carry dark-mode rules
    assert count_dark_rules(dark) == 0 and count_dark_rules(light) == 0
    assert "(min-width: 0px)" in dark and "(max-width: 0px)" in light


# --- the command ---------------------------------------------------------------------------------


def test_cli_takes_the_next_port_says_so_and_stops_cleanly_on_ctrl_c(edition: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = subprocess.Popen(
            [
                *DIGEST,
                "preview",
                str(edition),
                "--port",
                str(port),
                "--no-open",
            ],
            cwd=edition.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"},
        )
        try:
            lines = []
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line)
                if "http://" in line:
                    break
            said = "".join(lines)
            assert f"Port {port} is in use" in said, said
            url = said.split("at ", 1)[1].split()[0]
            assert url.startswith("http://127.0.0.1:") and not url.endswith(f":{port}/")
            deadline = time.monotonic() + 10
            while True:  # the first render runs before the server answers
                try:
                    response = httpx.get(url + "api/state", timeout=5)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
            assert response.json()["email"]["subject"] == "Testletter: the first subject"
            with httpx.stream("GET", url + "events", timeout=5) as events:  # an open stream
                next(events.iter_lines())
                process.send_signal(signal.SIGINT)
                rest, errors = process.communicate(timeout=8)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0, errors
    assert "Preview stopped." in rest and "Traceback" not in errors


def test_cli_stops_cleanly_on_sigterm_as_on_ctrl_c(edition: Path) -> None:
    # A service manager or `kill` sends SIGTERM: the preview must say it stopped and exit 0.
    process = subprocess.Popen(
        [*DIGEST, "preview", str(edition), "--port", "0", "--no-open"],
        cwd=edition.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"},
    )
    try:
        assert process.stdout is not None
        url = ""
        for line in process.stdout:
            if "http://" in line:
                url = line.split("at ", 1)[1].split()[0]
                break
        deadline = time.monotonic() + 10
        while True:  # serving: uvicorn's own signal handlers are in place
            try:
                httpx.get(url + "api/state", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        rest, errors = process.communicate(timeout=8)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, (process.returncode, errors)
    assert "Preview stopped." in rest and "Traceback" not in errors


def test_cli_missing_edition_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            *DIGEST,
            "preview",
            str(tmp_path / "nope.yaml"),
            "--no-open",
        ],
        capture_output=True,
        text=True,
        timeout=20,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 1
    assert "nope.yaml: no such file" in result.stderr and "Traceback" not in result.stderr


def test_each_warning_shows_once_in_the_checks_panel(tmp_path: Path) -> None:
    # The renderer warns about a long subject and a missing preheader, and so do the panel's
    # own checks: the curator must read each once, not twice.
    from digest.preview.snapshot import Snapshot, render_snapshot

    path = tmp_path / "2026-04.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            newsletter: Testletter
            edition: April 2026
            subject: "{"A subject far too long for any inbox " * 3}"
            sections:
              - title: Reading
                items:
                  - {{title: One, url: "https://example.org/one"}}
            """
        ),
        encoding="utf-8",
    )
    snapshot = render_snapshot(PreviewOptions(edition_path=path, settings=Settings()))
    assert isinstance(snapshot, Snapshot)
    assert len(snapshot.warnings) == 2  # the same two `digest build` prints
    warned = [check.title for check in snapshot.checks if check.level == "warn"]
    assert sorted(warned) == ["Preheader", "Subject length"]
