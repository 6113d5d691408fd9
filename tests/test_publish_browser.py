"""The published site of the bundled edition in real headless Chromium: no sideways scrolling on
a phone or a desktop, light and dark, and every link of every page either absolute https or a
relative link to a file that the site holds."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
PAGES = ["index.html", "2026-03/index.html", "latest/index.html", "2026-04/index.html"]
SECOND = """\
edition: April 2026
slug: 2026-04
subject: "Clippings, April 2026: a draft with a very-long-unbreakable-word-{word}"
preheader: Soon
sections:
  - title: Tools
    items:
      - title: https://example.org/a/very/long/address/that/might/push/the/page/sideways/{word}
        url: https://example.org/{word}
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`digest publish --drafts` of the bundled edition and digest.toml, plus a draft whose
    subject and title are long unbreakable words."""
    from digest.site.publish import publish_site

    root = tmp_path_factory.mktemp("publication")
    (root / "content").mkdir()
    shutil.copy(REPO / "content" / "2026-03.yaml", root / "content")
    shutil.copy(REPO / "digest.toml", root)
    (root / "content" / "2026-04.yaml").write_text(SECOND.format(word="x" * 80), "utf-8")
    out = root / "site"
    now = datetime(2026, 4, 15, tzinfo=UTC)  # March is out, April is a draft
    publish_site(root / "content", out, now=now, state_dir=root / ".digest", drafts=True)
    return out


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [360, 1280])
@pytest.mark.parametrize("name", PAGES)
def test_no_horizontal_overflow(browser, site: Path, name: str, width: int, scheme: str) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": width, "height": 800}, color_scheme=scheme)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto((site / name).as_uri())
    scroll_width, inner_width = page.evaluate(
        "[document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert scroll_width <= inner_width, f"{name}: {scroll_width}px of content in {width}px"
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    dark = background in ("rgb(13, 17, 23)",)
    assert dark == (scheme == "dark"), f"{name} in {scheme}: body background {background}"
    assert [url for url in requested if not url.startswith("file:")] == []
    page.close()


def test_every_link_is_https_or_a_file_of_the_site(browser, site: Path) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page()
    checked = 0
    for name in PAGES:
        page.goto((site / name).as_uri())
        hrefs: list[str] = page.evaluate(
            "[...document.querySelectorAll('a[href], link[href]')].map(e => e.getAttribute('href'))"
        )
        assert hrefs, name
        for href in hrefs:
            parts = urlsplit(href)
            if parts.scheme:
                assert parts.scheme == "https" and parts.netloc, f"{name}: {href}"
                continue
            target = urlsplit(urljoin(f"file:///site/{name}", href)).path
            assert target.startswith("/site/"), f"{name}: {href} leaves the site"
            resolved = site / target.removeprefix("/site/")
            if href.endswith("/") or resolved.is_dir():
                resolved = resolved / "index.html"
            assert resolved.is_file(), f"{name}: {href} -> {resolved} is not a file of the site"
            checked += 1
    assert checked >= len(PAGES) * 2  # at least the archive link and the feed of every page
    page.close()


def test_the_draft_marker_is_visible(browser, site: Path) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": 360, "height": 800})
    page.goto((site / "2026-04" / "index.html").as_uri())
    assert page.is_visible("text=Draft: not published yet")
    page.goto((site / "2026-03" / "index.html").as_uri())
    assert not page.is_visible("text=Draft: not published yet")
    page.close()
