"""The preview page in real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright)."""

from __future__ import annotations

import json
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


def edition_yaml(subject: str = "Browserletter: the first subject", title: str = "Item 0") -> str:
    # Enough items for the email to scroll, so keeping the scroll position can be checked.
    items = "".join(
        textwrap.indent(
            textwrap.dedent(
                f"""\
                - title: {json.dumps(title if n == 0 else f"Item {n}")}
                  url: https://example.org/item/{n}
                  summary: A summary long enough to take a few lines in a narrow column, so that
                    the email is tall; item number {n} of the test edition.
                """
            ),
            "      ",
        )
        for n in range(14)
    )
    return (
        textwrap.dedent(
            f"""\
            newsletter: Browserletter
            edition: May 2026
            subject: {json.dumps(subject)}
            preheader: "What this month holds, in one line for the inbox list view."
            sections:
              - title: Reading
                items:
            """
        )
        + items
    )


@pytest.fixture
def edition(tmp_path: Path) -> Path:
    path = tmp_path / "2026-05.yaml"
    path.write_text(edition_yaml(), encoding="utf-8")
    return path


@pytest.fixture
def preview(browser, edition: Path) -> Iterator[tuple[object, str]]:  # type: ignore[no-untyped-def]
    with serve_in_thread(PreviewOptions(edition_path=edition, settings=Settings())) as url:
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url + "/")
        page.wait_for_function(
            "() => document.getElementById('email-frame')?.contentDocument?.body"
            "?.innerText.includes('Item 0')"
        )
        yield page, url
        context.close()


def frame_text(page) -> str:  # type: ignore[no-untyped-def]
    return page.evaluate(
        "() => document.getElementById('email-frame').contentDocument.body.innerText"
    )


def test_page_shows_the_inbox_header_and_the_email(preview) -> None:  # type: ignore[no-untyped-def]
    page, _ = preview
    assert page.inner_text("#hdr-subject") == "Browserletter: the first subject"
    assert page.inner_text("#inbox-subject") == "Browserletter: the first subject"
    assert page.inner_text("#inbox-sender") == "Browserletter"
    assert "one line for the inbox" in page.inner_text("#hdr-preheader")
    assert "Item 13" in frame_text(page)
    assert page.is_hidden("#overlay")
    # The email frame is sandboxed: no script may run in it.
    assert "allow-scripts" not in page.get_attribute("#email-frame", "sandbox")
    checks = page.inner_text("#check-list")
    assert "HTML size" in checks and "Subject length" in checks


def test_mobile_width_leaves_no_horizontal_overflow(preview) -> None:  # type: ignore[no-untyped-def]
    page, _ = preview
    page.click("[data-width=mobile]")
    page.wait_for_function(
        "() => document.getElementById('email-frame').getBoundingClientRect().width === 390"
    )
    sizes = page.evaluate(
        """() => {
            const doc = document.getElementById('email-frame').contentDocument;
            return {client: doc.documentElement.clientWidth,
                    scroll: doc.documentElement.scrollWidth,
                    body: doc.body.scrollWidth};
        }"""
    )
    assert sizes["client"] == 390
    assert sizes["scroll"] <= sizes["client"] and sizes["body"] <= sizes["client"], sizes
    assert page.inner_text("#width-readout") == "390 px"


def test_plain_text_tab_shows_the_text_exactly(preview) -> None:  # type: ignore[no-untyped-def]
    page, url = preview
    page.click("[data-tab=text]")
    assert page.is_visible("#plain-text") and page.is_hidden("#panel-email")
    expected = httpx.get(url + "/email.txt").text
    assert page.eval_on_selector("#plain-text", "pre => pre.textContent") == expected
    assert "Item 13" in expected
    page.keyboard.press("3")  # the HTML source tab, by key
    assert page.is_visible("#html-source")
    assert "<!doctype html>" in page.eval_on_selector("#html-source", "pre => pre.textContent")


def test_dark_switch_applies_the_emails_dark_rules(preview) -> None:  # type: ignore[no-untyped-def]
    page, _ = preview
    colours = """() => {
        const doc = document.getElementById('email-frame').contentDocument;
        return [...doc.querySelectorAll('body, body *')].map(el => {
            const style = doc.defaultView.getComputedStyle(el);
            return style.backgroundColor + '/' + style.color;
        }).join(';');
    }"""
    light = page.evaluate(colours)
    page.click("[data-scheme=dark]")
    page.wait_for_function("() => document.getElementById('email-frame').src.includes('dark')")
    page.wait_for_function("() => !document.getElementById('email-frame-next')")
    dark = page.evaluate(colours)
    assert dark != light
    page.keyboard.press("t")  # back to light, by key
    page.wait_for_function("() => document.getElementById('email-frame').src.includes('light')")
    page.wait_for_function("() => !document.getElementById('email-frame-next')")
    assert page.evaluate(colours) == light


def test_a_save_updates_the_page_without_reload_keeping_scroll_and_width(
    preview, edition: Path
) -> None:  # type: ignore[no-untyped-def]
    page, _ = preview
    page.click("[data-width=mobile]")
    page.evaluate("() => { window.stillTheSamePage = true; }")
    page.evaluate("() => document.getElementById('email-frame').contentWindow.scrollTo(0, 400)")
    edition.write_text(
        edition_yaml(subject="Browserletter: saved again", title="Renamed first item"), "utf-8"
    )
    page.wait_for_function(
        "() => document.getElementById('email-frame').contentDocument.body"
        ".innerText.includes('Renamed first item')"
    )
    assert page.inner_text("#hdr-subject") == "Browserletter: saved again"
    assert page.evaluate("() => window.stillTheSamePage") is True  # no page reload
    scroll = page.evaluate("() => document.getElementById('email-frame').contentWindow.scrollY")
    assert abs(scroll - 400) <= 2
    width = page.evaluate("() => document.getElementById('email-frame').clientWidth")
    assert width == 390


def test_broken_yaml_shows_the_overlay_and_a_fix_recovers(preview, edition: Path) -> None:  # type: ignore[no-untyped-def]
    page, _ = preview
    broken = edition_yaml().replace("url: https://example.org/item/3", "link: https://x.example")
    edition.write_text(broken, encoding="utf-8")
    page.wait_for_selector("#overlay", state="visible")
    overlay = page.inner_text("#overlay-errors")
    assert "sections[0].items[3]" in overlay and f"{edition}:" in overlay
    assert "Item 0" in frame_text(page)  # the last good render stays underneath

    edition.write_text(edition_yaml(title="Fixed and back"), encoding="utf-8")
    page.wait_for_selector("#overlay", state="hidden")
    page.wait_for_function(
        "() => document.getElementById('email-frame').contentDocument.body"
        ".innerText.includes('Fixed and back')"
    )


def test_hostile_subject_is_shown_as_text_never_run(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    subject = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script> {{ 7*7 }}'
    path = tmp_path / "hostile.yaml"
    path.write_text(edition_yaml(subject=subject, title="<b onclick=x>bold?</b>"), "utf-8")
    with serve_in_thread(PreviewOptions(edition_path=path, settings=Settings())) as url:
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url + "/")
        page.wait_for_function("() => document.getElementById('hdr-subject').textContent !== ''")
        page.wait_for_function("() => !document.getElementById('email-frame-next')")
        assert page.inner_text("#hdr-subject") == subject
        assert (
            page.evaluate("() => document.querySelectorAll('header img, .inbox img').length") == 0
        )
        assert page.evaluate("() => window.pwned") is None
        frame_state = page.evaluate(
            """() => {
                const frame = document.getElementById('email-frame');
                return {pwned: frame.contentWindow.pwned ?? null,
                        bold: frame.contentDocument.querySelectorAll('b[onclick]').length,
                        text: frame.contentDocument.body.innerText};
            }"""
        )
        context.close()
    assert frame_state["pwned"] is None and frame_state["bold"] == 0
    assert "<b onclick=x>bold?</b>" in frame_state["text"]
