"""The bundled edition's email in real headless Chromium: no sideways scrolling on a phone or a
desktop, dark mode applied, nothing fetched from the network."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.edition.load import load_edition
from digest.render.email import render_edition
from digest.render.sample import sample_values
from digest.settings import Settings

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def email_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    edition = load_edition(REPO / "content" / "2026-03.yaml")
    rendered = render_edition(edition, archive_url="https://example.org/archive/{slug}")
    path = tmp_path_factory.mktemp("built") / "email.html"
    path.write_text(rendered.html.fill(sample_values(Settings(), edition.slug)), "utf-8")
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's /usr/bin/chromium is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.mark.parametrize("width", [390, 1280])
def test_no_horizontal_overflow(browser, email_file: Path, tmp_path: Path, width: int) -> None:
    page = browser.new_page(viewport={"width": width, "height": 900})
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(email_file.as_uri())
    scroll_width, inner_width = page.evaluate(
        "[document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert scroll_width <= inner_width, f"{scroll_width}px of content in a {width}px window"
    column = page.evaluate(
        "Math.max(...[...document.querySelectorAll('h2')]"
        ".map(e => e.getBoundingClientRect().right))"
    )
    assert column <= min(width, 600 + (width - 600) / 2 + 1)  # one column, at most 600 px
    shot = tmp_path / f"email-{width}.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert [url for url in requested if not url.startswith("file:")] == []
    page.close()


def test_dark_mode_rules_apply(browser, email_file: Path) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 900}, color_scheme="dark")
    page.goto(email_file.as_uri())
    background, text = page.evaluate(
        """() => {
            const card = document.querySelector('.card');
            const summary = document.querySelector('.md p');
            return [getComputedStyle(card).backgroundColor, getComputedStyle(summary).color];
        }"""
    )
    # The inlined light colours are overridden by the !important dark rules.
    assert background == "rgb(22, 27, 34)"
    assert text == "rgb(230, 237, 243)"
    page.close()
