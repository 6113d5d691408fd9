"""The preview's "Web page" tab in real headless Chromium: it shows the web edition as
`digest publish` writes it (no personal data), live like the email tab."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from digest.preview.server import serve_in_thread
from digest.preview.snapshot import PreviewOptions
from digest.settings import Settings

pytestmark = pytest.mark.browser

TIMEOUT_MS = 5000
TOML = """\
[newsletter]
name = "Weblet"
site_url = "https://weblet.example.org/"
subscribe_url = "https://weblet.example.org/subscribe"
"""


def edition_yaml(title: str) -> str:
    return textwrap.dedent(
        f"""\
        edition: June 2026
        slug: 2026-06
        subject: "Weblet, June 2026"
        preheader: The month in one line
        sections:
          - title: Reading
            items:
              - title: {title}
                url: https://example.org/one
        """
    )


@pytest.fixture
def preview(browser, tmp_path: Path) -> Iterator[tuple[object, str, Path]]:  # type: ignore[no-untyped-def]
    (tmp_path / "digest.toml").write_text(TOML, encoding="utf-8")
    edition = tmp_path / "content" / "2026-06.yaml"
    edition.parent.mkdir()
    edition.write_text(edition_yaml("First title"), encoding="utf-8")
    with serve_in_thread(PreviewOptions(edition_path=edition, settings=Settings())) as url:
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url + "/")
        page.wait_for_function(
            "() => document.getElementById('email-frame')?.contentDocument?.body"
            "?.innerText.includes('First title')"
        )
        yield page, url, edition
        context.close()


FRAME_TEXT = "() => document.getElementById('email-frame').contentDocument.body.innerText"


def test_web_tab_shows_the_web_edition_and_follows_saves(preview) -> None:  # type: ignore[no-untyped-def]
    page, url, edition = preview
    assert "Unsubscribe" in page.evaluate(FRAME_TEXT)  # the email tab: a reader's copy

    page.click("[data-tab=web]")
    page.wait_for_function("() => document.getElementById('email-frame').src.includes('/web.html')")
    page.wait_for_function("() => !document.getElementById('email-frame-next')")
    text = page.evaluate(FRAME_TEXT)
    assert "All editions of Weblet" in text and "Subscribe" in text
    assert "Unsubscribe" not in text and "reader@example.org" not in text
    assert page.get_attribute("[data-tab=web]", "aria-selected") == "true"

    edition.write_text(edition_yaml("Second title"), encoding="utf-8")
    page.wait_for_function(
        "() => document.getElementById('email-frame')?.contentDocument?.body"
        "?.innerText.includes('Second title')"
    )
    assert "/web.html" in page.get_attribute("#email-frame", "src")

    page.keyboard.press("1")  # back to the email
    page.wait_for_function(
        "() => document.getElementById('email-frame').src.includes('/email.html')"
    )

    served = httpx.get(url + "/web.html")
    assert "script-src 'none'" in served.headers["content-security-policy"]
    assert '<link rel="canonical" href="https://weblet.example.org/2026-06/">' in served.text
