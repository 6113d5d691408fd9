"""The RFC 8058 endpoint, served by uvicorn on 127.0.0.1 and called by a real HTTP client."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from test_tokens import v1_token

from digest.audience.suppressions import SuppressionStore
from digest.errors import ConfigError
from digest.settings import Settings, load_settings
from digest.tokens import make_token
from digest.unsubscribe_app import MAX_BODY_BYTES, _LazyApp, create_app, route_for

SECRET = "test-secret-for-unsubscribe"
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@contextmanager
def serving(app: object) -> Iterator[str]:
    """Run ``app`` under uvicorn in a thread on a port the OS picks; yield its base URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        assert thread.is_alive(), "uvicorn stopped at start-up"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()


def settings_for(tmp_path: Path, url: str = "https://news.example.org/u/{token}") -> Settings:
    return load_settings(
        {
            "DIGEST_SECRET": SECRET,
            "DIGEST_UNSUBSCRIBE_URL": url,
            "DIGEST_STATE_DIR": str(tmp_path / "state"),
        },
        env_file=None,
    )


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[tuple[httpx.Client, Path]]:
    settings = settings_for(tmp_path)
    with serving(create_app(settings)) as base, httpx.Client(base_url=base) as client:
        yield client, settings.state_dir


def suppressed(state_dir: Path) -> list[tuple[str, str, str, str | None]]:
    with SuppressionStore(state_dir) as store:
        return [(s.address, s.reason, s.source, s.slug) for s in store.iter()]


def test_one_click_post_suppresses_exactly_that_address(endpoint) -> None:
    client, state_dir = endpoint
    token = make_token(SECRET, "ada@example.org", "2026-03")
    response = client.post(f"/u/{token}", data=ONE_CLICK)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "location" not in response.headers
    assert "ada@example.org" in response.text
    assert suppressed(state_dir) == [("ada@example.org", "unsubscribed", "one-click", "2026-03")]
    # Clicking twice is harmless.
    assert client.post(f"/u/{token}", data=ONE_CLICK).status_code == 200
    assert len(suppressed(state_dir)) == 1


def test_one_click_accepts_multipart_form_data(endpoint) -> None:
    client, state_dir = endpoint
    token = make_token(SECRET, "bob@example.org", "2026-03")
    response = client.post(f"/u/{token}", files={"List-Unsubscribe": (None, "One-Click")})
    assert response.status_code == 200
    assert [s[0] for s in suppressed(state_dir)] == ["bob@example.org"]


def test_get_shows_a_confirmation_form_and_never_unsubscribes(endpoint) -> None:
    client, state_dir = endpoint
    token = make_token(SECRET, "ada+<b>@example.org", "2026-03")
    for _ in range(3):
        response = client.get(f"/u/{token}")
        assert response.status_code == 200
    assert client.head(f"/u/{token}").status_code == 200
    page = response.text
    assert "ada+&lt;b&gt;@example.org" in page and "<b>@" not in page
    assert '<form method="post">' in page
    assert 'name="List-Unsubscribe" value="One-Click"' in page
    assert suppressed(state_dir) == []


def test_the_confirmation_button_posts_what_a_browser_sends(endpoint) -> None:
    client, state_dir = endpoint
    token = make_token(SECRET, "cy@example.org", "2026-02")
    # What a browser submits for the page's form: the same URL, url-encoded hidden field.
    response = client.post(
        f"/u/{token}",
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": "null"},
    )
    assert response.status_code == 200
    assert suppressed(state_dir) == [("cy@example.org", "unsubscribed", "one-click", "2026-02")]
    assert "gets no more mail" in client.get(f"/u/{token}").text


@pytest.mark.parametrize(
    "token",
    [
        make_token("another-lists-secret", "ada@example.org", "2026-03"),  # cross-secret
        make_token(SECRET, "ada@example.org", "2026-03")[:-2] + "AA",  # forged MAC
        "not-a-token",
        "a.b.c",
        "%00.%0A",
        "x" * 3000 + ".y",
    ],
)
def test_bad_tokens_get_400_and_change_nothing(endpoint, token: str) -> None:
    client, state_dir = endpoint
    for method in ("GET", "POST"):
        response = client.request(method, f"/u/{token}", data=ONE_CLICK)
        assert response.status_code == 400, (method, token)
        assert SECRET not in response.text
    assert suppressed(state_dir) == []


def test_a_token_moved_to_another_address_is_refused(endpoint) -> None:
    client, state_dir = endpoint
    good = v1_token(SECRET, "ada@example.org", "2026-03")
    other_payload = v1_token(SECRET, "eve@example.org", "2026-03").split(".")[0]
    response = client.post(f"/u/{other_payload}.{good.split('.')[1]}", data=ONE_CLICK)
    assert response.status_code == 400
    assert suppressed(state_dir) == []


def test_post_without_the_one_click_field_changes_nothing(endpoint) -> None:
    client, state_dir = endpoint
    token = make_token(SECRET, "ada@example.org", "2026-03")
    assert client.post(f"/u/{token}", data={"List-Unsubscribe": "Yes"}).status_code == 400
    assert client.post(f"/u/{token}").status_code == 400
    assert suppressed(state_dir) == []


def test_an_oversized_body_is_refused(endpoint) -> None:
    client, state_dir = endpoint
    token = make_token(SECRET, "ada@example.org", "2026-03")
    body = b"List-Unsubscribe=One-Click&pad=" + b"x" * MAX_BODY_BYTES

    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap must hold while streaming
        yield body[:100]
        yield body[100:]

    for content in (body, chunks()):
        response = client.post(
            f"/u/{token}",
            content=content,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 413
    assert suppressed(state_dir) == []


def test_other_paths_are_not_found(endpoint) -> None:
    client, _ = endpoint
    assert client.post("/", data=ONE_CLICK).status_code == 404
    assert client.post("/other/x.y", data=ONE_CLICK).status_code == 404


def test_token_in_the_query_string(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, "https://news.example.org/unsubscribe?list=clip&t={token}")
    token = make_token(SECRET, "ada@example.org", "2026-03")
    with serving(create_app(settings)) as base, httpx.Client(base_url=base) as client:
        assert client.get("/unsubscribe", params={"t": token}).status_code == 200
        assert client.post("/unsubscribe", params={"t": "bad"}, data=ONE_CLICK).status_code == 400
        response = client.post("/unsubscribe", params={"list": "clip", "t": token}, data=ONE_CLICK)
        assert response.status_code == 200
    assert [s[0] for s in suppressed(settings.state_dir)] == ["ada@example.org"]


def test_route_for_reads_the_template() -> None:
    assert route_for("https://x.org/u/{token}") == ("/u/{token}", None)
    assert route_for("https://x.org/a/%7Btoken%7D/ok") == ("/a/{token}/ok", None)
    assert route_for("https://x.org/unsub?t={token}") == ("/unsub", "t")
    with pytest.raises(ConfigError):
        route_for("https://x.org/u/{token}/{other}")


def test_missing_settings_are_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DIGEST_SECRET"):
        create_app(load_settings({"DIGEST_STATE_DIR": str(tmp_path)}, env_file=None))


def test_the_module_app_builds_itself_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the repo's
    monkeypatch.setenv("DIGEST_SECRET", SECRET)
    monkeypatch.setenv("DIGEST_UNSUBSCRIBE_URL", "https://news.example.org/bye/{token}")
    monkeypatch.setenv("DIGEST_STATE_DIR", str(tmp_path / "state"))
    token = make_token(SECRET, "ada@example.org", "2026-03")
    with serving(_LazyApp()) as base, httpx.Client(base_url=base) as client:
        assert client.post(f"/bye/{token}", data=ONE_CLICK).status_code == 200
    assert [s[0] for s in suppressed(tmp_path / "state")] == ["ada@example.org"]


@pytest.mark.browser
def test_a_browser_confirms_with_the_button(tmp_path: Path, browser) -> None:  # type: ignore[no-untyped-def]
    """Headless Chromium opens the link (nothing changes), then clicks the button."""
    settings = settings_for(tmp_path, "https://news.example.org/unsubscribe?t={token}")
    token = make_token(SECRET, "ada@example.org", "2026-03")
    with serving(create_app(settings)) as base:
        page = browser.new_page()
        try:
            page.goto(f"{base}/unsubscribe?t={token}")
            assert "ada@example.org" in page.inner_text("main")
            assert suppressed(settings.state_dir) == []
            with page.expect_navigation():
                page.click("button")
            assert "You are unsubscribed" in page.inner_text("h1")
        finally:
            page.close()
    assert suppressed(settings.state_dir) == [
        ("ada@example.org", "unsubscribed", "one-click", "2026-03")
    ]
