"""The bundled edition's email in real headless Chromium: no sideways scrolling on a phone or a
desktop, dark mode applied, nothing fetched from the network."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.edition.load import load_edition
from digest.newsletter import load_newsletter
from digest.render.email import render_edition
from digest.render.sample import sample_values
from digest.settings import Settings

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def email_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    edition = load_edition(REPO / "content" / "2026-03.yaml")
    rendered = render_edition(
        edition,
        newsletter=load_newsletter(REPO / "digest.toml"),
        archive_url="https://example.org/archive/{slug}",
    )
    path = tmp_path_factory.mktemp("built") / "email.html"
    path.write_text(rendered.html.fill(sample_values(Settings(), edition.slug)), "utf-8")
    return path


@pytest.mark.parametrize("width", [360, 390, 1280])
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
        """(SUMMARY) => {
            const card = document.querySelector('.card');
            const summary = document.querySelector(SUMMARY);
            return [getComputedStyle(card).backgroundColor, getComputedStyle(summary).color];
        }""",
        SUMMARY,
    )
    # The inlined light colours are overridden by the !important dark rules.
    assert background == "rgb(22, 27, 34)"
    assert text == "rgb(230, 237, 243)"
    page.close()


# -- contrast, tap targets and the clients that change the email --------------------------------

# The first item summary: the paragraph after an item's title.
SUMMARY = "p.t + p"

# For every visible text node: its colour, the first opaque background behind it, and the WCAG
# contrast ratio of the two (from getComputedStyle, as the reader sees it).
CONTRASTS = """() => {
    const channels = (css) => css.match(/[\\d.]+/g).map(Number);
    const luminance = ([r, g, b]) => {
        const linear = [r, g, b].map((v) => {
            v /= 255;
            return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
        });
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2];
    };
    const background = (element) => {
        for (let e = element; e; e = e.parentElement) {
            const c = channels(getComputedStyle(e).backgroundColor);
            if (c.length < 4 || c[3] > 0) return c;
        }
        return [255, 255, 255];
    };
    const found = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const element = node.parentElement;
        const box = element.getBoundingClientRect();
        if (!node.textContent.trim() || box.width === 0 || box.height === 0) continue;
        if (getComputedStyle(element).opacity === "0") continue;
        const [a, b] = [luminance(channels(getComputedStyle(element).color)),
                        luminance(background(element))];
        const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
        // Body text ("P") is a paragraph of a Markdown field: a <p> without a class of its own;
        // kickers and labels (<p class="k">) are small on purpose.
        const kind = element.tagName === "P" && element.className ? "P." + element.className
                                                                  : element.tagName;
        found.push([node.textContent.trim().slice(0, 40), ratio,
                    parseFloat(getComputedStyle(element).fontSize), kind]);
    }
    return found;
}"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_text_has_contrast_in_both_modes(browser, email_file: Path, scheme: str) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 900}, color_scheme=scheme)
    page.goto(email_file.as_uri())
    texts = page.evaluate(CONTRASTS)
    assert len(texts) > 100
    low = [(text, round(ratio, 2)) for text, ratio, _, _ in texts if ratio < 4.5]
    assert low == [], f"text under 4.5:1 in {scheme} mode"
    paragraphs = [size for _, _, size, tag in texts if tag == "P"]
    assert paragraphs and min(paragraphs) >= 16  # body text stays readable on a phone
    page.close()


def test_light_design_holds_where_style_blocks_are_dropped(browser, email_file: Path) -> None:
    """Gmail's apps for non-Google accounts and several webmails drop <style>: the inlined
    styles alone must carry the light design, the contrast and the phone layout."""
    page = browser.new_page(viewport={"width": 390, "height": 900})
    page.goto(email_file.as_uri())
    page.evaluate("document.querySelectorAll('style').forEach((s) => s.remove())")
    assert page.evaluate("document.querySelectorAll('style').length") == 0
    card, paragraph, link, size = page.evaluate(
        """(SUMMARY) => [
            getComputedStyle(document.querySelector('.card')).backgroundColor,
            getComputedStyle(document.querySelector(SUMMARY)).color,
            getComputedStyle(document.querySelector('p.t a')).color,
            getComputedStyle(document.querySelector(SUMMARY)).fontSize,
        ]""",
        SUMMARY,
    )
    assert (card, paragraph, link, size) == (
        "rgb(255, 255, 255)",
        "rgb(31, 35, 40)",
        "rgb(11, 87, 208)",
        "16px",
    )
    assert [text for text, ratio, _, _ in page.evaluate(CONTRASTS) if ratio < 4.5] == []
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    # The hierarchy survives on inline styles alone: section > group > item title > body text >
    # kicker, and the small text keeps its grey.
    sizes = page.evaluate(
        """(SUMMARY) => Object.fromEntries(Object.entries({
            section: 'h2', group: 'h3', title: 'p.t', body: SUMMARY, kicker: '.k',
            compact_note: '.c .s',
        }).map(([part, selector]) => [part, parseFloat(getComputedStyle(
            document.querySelector(selector)).fontSize)]))""",
        SUMMARY,
    )
    order = ["section", "group", "title", "body", "compact_note", "kicker"]
    assert [sizes[part] for part in order] == sorted(sizes.values(), reverse=True), sizes
    assert len(set(sizes[part] for part in ("section", "group", "title", "body"))) == 4
    grey = page.evaluate("getComputedStyle(document.querySelector('.k')).color")
    assert grey == "rgb(87, 96, 106)"
    page.close()


# What a reader sees of the main parts: backgrounds, text and link colours.
PALETTE = """() => {
    const style = (selector) => getComputedStyle(document.querySelector(selector));
    return {
        page: style('body > div[role=article]').backgroundColor,
        card: style('.card').backgroundColor,
        card_cell: style('.card td').backgroundColor,
        heading: style('h1').color,
        section: style('h2').color,
        group: style('h3').color,
        label: style('.label').color,
        tagline: style('.tagline').color,
        kicker: style('.k').color,
        compact_source: style('.c .s').color,
        contents_link: style('.toc a').color,
        paragraph: style('p.t + p').color,
        item_link: style('p.t a').color,
        compact_link: style('.c a').color,
        highlight: style('.highlight').backgroundColor,
        highlight_border: style('.highlight').borderLeftColor,
        highlight_text: style('.highlight p:not([class])').color,
        section_bar: style('.bar p').borderTopColor,
        small_print: style('.fine-print div').color,
        small_print_link: style('.fine-print a').color,
    };
}"""

# Outlook.com's dark mode as documented: every element with a text or background colour of its
# own is recoloured inline, its original kept in data-ogsc (text) or data-ogsb (background). The
# colours it picks here are deliberately not ours, so only the email's own rules can restore them.
OUTLOOK_COM_DARK = """() => {
    for (const element of document.body.querySelectorAll('*')) {
        const style = element.style;
        if (style.color) {
            element.setAttribute('data-ogsc', style.color);
            style.color = 'rgb(200, 200, 200)';
        }
        const background = style.backgroundColor || element.getAttribute('bgcolor');
        if (background) {
            element.setAttribute('data-ogsb', background);
            style.backgroundColor = 'rgb(51, 51, 51)';
            element.removeAttribute('bgcolor');
        }
    }
}"""


def test_outlook_com_dark_mode_gets_the_same_palette_as_apple_mail(
    browser, email_file: Path
) -> None:
    apple = browser.new_page(viewport={"width": 390, "height": 900}, color_scheme="dark")
    apple.goto(email_file.as_uri())
    expected = apple.evaluate(PALETTE)
    apple.close()
    assert expected["card"] == "rgb(22, 27, 34)" and expected["paragraph"] == "rgb(230, 237, 243)"

    outlook = browser.new_page(viewport={"width": 390, "height": 900}, color_scheme="light")
    outlook.goto(email_file.as_uri())
    light = outlook.evaluate(PALETTE)
    outlook.evaluate(OUTLOOK_COM_DARK)
    assert outlook.evaluate(PALETTE) == expected
    assert light != expected  # without the recolouring, the light design is shown
    assert [text for text, ratio, _, _ in outlook.evaluate(CONTRASTS) if ratio < 4.5] == []
    outlook.close()


@pytest.mark.parametrize("width", [390, 1280])
def test_small_print_links_are_tap_sized(browser, email_file: Path, width: int) -> None:
    page = browser.new_page(viewport={"width": width, "height": 900}, has_touch=True)
    page.goto(email_file.as_uri())
    boxes = page.evaluate(
        """() => [...document.querySelectorAll('.fine-print a')].map((a) => {
            const box = a.getBoundingClientRect();
            return [a.textContent.trim(), box.width, box.height];
        })"""
    )
    names = [name for name, _, _ in boxes]
    assert names == ["View in browser", "Unsubscribe", "View in browser", "Subscribe to Clippings"]
    # Apple's guideline: 44 x 44 points for anything a finger must hit.
    assert [box for box in boxes if box[1] < 44 or box[2] < 44] == []
    page.close()


# -- accessibility: axe-core, the engine behind Lighthouse and most a11y checkers -------------

# Vendored (minified, with its MPL-2.0 header) so the suite needs no network and no npm on CI,
# and a new axe release cannot change the verdict without a commit: see tests/vendor/README.md.
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [390, 1280])
def test_axe_finds_no_serious_or_critical_violation(
    browser, email_file: Path, width: int, scheme: str
) -> None:
    page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)
    page.goto(email_file.as_uri())
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
            .map((v) => [v.id, v.impact, v.nodes.slice(0, 3).map((n) => n.html.slice(0, 120))])"""
    )
    # The checks ran: axe reports what it passed too (contrast, names, lang, list structure...).
    passed = page.evaluate("async () => (await axe.run(document)).passes.map((p) => p.id)")
    assert {"color-contrast", "link-name", "html-has-lang", "list", "document-title"} <= set(passed)
    serious = [v for v in violations if v[1] in ("serious", "critical")]
    assert serious == [], f"{scheme} mode at {width} px"
    page.close()


def test_first_phone_screen_shows_the_masthead_and_the_start_of_the_content(
    browser, email_file: Path
) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844})  # an iPhone 14's screen
    page.goto(email_file.as_uri())
    tops = page.evaluate(
        """() => Object.fromEntries(Object.entries({
            name: 'h1', tagline: '.tagline', label: '.label', intro: '.card p:not([class])',
            contents: '.toc li',
        }).map(([part, selector]) => [part, document.querySelector(selector)
                                              .getBoundingClientRect().bottom]))"""
    )
    assert all(bottom < 844 for bottom in tops.values()), tops
    page.close()
