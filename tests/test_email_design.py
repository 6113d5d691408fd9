"""The email's design (issue 12): identity in the masthead, contents, the two section layouts,
kickers, links as words, a footer that does its job, Outlook's table-cell spacing, size."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
import yaml
from lxml import html as lxml_html

from digest.edition.load import load_edition
from digest.edition.model import Edition
from digest.newsletter import Logo, Newsletter, contrast_ratio, load_newsletter
from digest.render.email import render_edition
from digest.render.palette import DARK_BOX, DARK_CARD, DARK_PAGE, dark_accent
from digest.render.sample import sample_values
from digest.settings import Settings

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "content" / "2026-03.yaml"
SAMPLE = sample_values(Settings(), "2026-03")
CLIPPINGS = load_newsletter(REPO / "digest.toml")

EDITION = textwrap.dedent(
    """\
    newsletter: Clippings
    edition: April 2026
    slug: 2026-04
    subject: Clippings, April 2026
    preheader: Four things worth reading
    highlights:
      - title: A highlight
        url: https://example.org/highlight
        body: Why it matters.
        links: [{label: Model card, url: "https://example.org/card"}]
    sections:
      - title: Papers
        groups:
          - title: Speech
            items:
              - title: A paper
                url: https://example.org/paper
                source: arXiv
                summary: What it found.
                links:
                  - {label: Code, url: "https://example.org/code"}
                  - {label: Data, url: "https://example.org/data"}
              - title: A paper without a source
                url: https://example.org/other
      - title: Round-up
        layout: compact
        items:
          - title: A tool
            url: https://example.org/tool
            source: GitHub
            summary: |
              One line about it, with *emphasis*.

              And a second paragraph, joined to the first.
          - title: A guide
            url: https://example.org/guide
    """
)


@pytest.fixture
def edition(tmp_path: Path) -> Edition:
    path = tmp_path / "2026-04.yaml"
    path.write_text(EDITION, encoding="utf-8")
    return load_edition(path, newsletter=None)


def tree_of(html: str) -> lxml_html.HtmlElement:
    return lxml_html.fromstring(html)


def email_html(edition: Edition, newsletter: Newsletter = CLIPPINGS, **kwargs: str) -> str:
    return render_edition(edition, newsletter=newsletter, **kwargs).html.fill(SAMPLE)


def inline_style(element: lxml_html.HtmlElement) -> str:
    return (element.get("style") or "").replace(" ", "")


# -- masthead ---------------------------------------------------------------------------------


def test_masthead_shows_the_newsletter_identity(edition: Edition) -> None:
    accent = "#8a1c7c"
    newsletter = Newsletter(
        name="Clippings",
        tagline="Speech and AI research, once a month",
        accent=accent,
        site_url="https://clippings.example.org/",
        logo=Logo(url="https://clippings.example.org/logo.png", width=140, alt="Clippings logo"),
    )
    tree = tree_of(email_html(edition, newsletter))
    assert [h.text_content() for h in tree.xpath("//h1")] == ["Clippings"]
    assert tree.xpath("//p[@class='tagline']")[0].text_content() == newsletter.tagline
    assert tree.xpath("//p[@class='label']")[0].text_content() == "No. 1 · April 2026"
    (logo,) = tree.xpath("//img")
    assert logo.get("src") == "https://clippings.example.org/logo.png"
    assert logo.get("alt") == "Clippings logo" and logo.get("width") == "140"
    assert logo.getparent().get("href") == "https://clippings.example.org/"
    # The accent: every link and the rules (masthead bar, section bars, highlight border).
    links = tree.xpath("//div[contains(@class,'card')]//a")
    assert links and all(f"color:{accent}" in inline_style(a) for a in links)
    html = email_html(edition, newsletter)
    assert f"border-top:4px solid {accent}" in html.replace(", ", ",")
    assert html.count(f"border-top:solid 3px {accent}") >= 3  # one bar per section + highlights
    (highlight,) = tree.xpath("//td[contains(@class,'highlight')]")
    assert f"border-left:4px solid {accent}" in (highlight.get("style") or "")


def test_without_digest_toml_the_name_comes_from_the_edition(edition: Edition) -> None:
    tree = tree_of(render_edition(edition).html.fill(SAMPLE))
    assert not tree.xpath("//img") and not tree.xpath("//p[@class='tagline']")
    assert [h.text_content() for h in tree.xpath("//h1")] == ["Clippings"]
    assert "#0b57d0" in inline_style(tree.xpath("//p[@class='t']/a")[0])  # the default accent


def test_dark_accent_is_legible_on_every_dark_background() -> None:
    for accent in ("#0b57d0", "#b3261e", "#1a7f37", "#000000", "#6f42c1"):
        shade = dark_accent(accent)
        assert shade != accent
        for background in (DARK_PAGE, DARK_CARD, DARK_BOX):
            assert contrast_ratio(shade, background) >= 6.0, (accent, shade, background)


# -- contents, layouts, kickers, links ----------------------------------------------------------


def test_contents_link_to_the_highlights_and_sections(edition: Edition) -> None:
    tree = tree_of(email_html(edition))
    (contents,) = tree.xpath("//ul[@class='toc']")
    entries = [" ".join(li.text_content().split()) for li in contents.xpath("li")]
    assert entries == ["A highlight", "Papers · 2: Speech", "Round-up · 2"]
    for href in contents.xpath(".//a/@href"):
        assert href.startswith("#")
        target = tree.get_element_by_id(href[1:])
        assert target is not None
    assert tree.get_element_by_id("s2").text_content() == "Round-up"
    assert tree.get_element_by_id("h1").xpath(".//a")[0].text_content() == "A highlight"


def test_full_layout_has_kicker_title_summary_and_links(edition: Edition) -> None:
    tree = tree_of(email_html(edition))
    (kicker,) = tree.xpath("//p[@class='k']")
    assert kicker.text_content() == "arXiv"
    title = kicker.getnext()
    assert title.get("class") == "t" and title.text_content() == "A paper"
    assert title.getnext().text_content() == "What it found."
    extra = title.getnext().getnext()
    assert extra.get("class") == "x"
    assert [a.text_content() for a in extra.xpath("a")] == ["Code", "Data"]
    assert " · " in extra.text_content()
    # Without a source there is no empty kicker: the title opens the item itself.
    (untitled,) = [p for p in tree.xpath("//p") if p.text_content() == "A paper without a source"]
    assert untitled.get("class") == "ti" and untitled.getprevious().get("class") != "k"


def test_compact_layout_is_a_dense_list(edition: Edition) -> None:
    tree = tree_of(email_html(edition))
    (compact,) = tree.xpath("//ul[@class='c']")
    entries = compact.xpath("li")
    assert len(entries) == 2
    first = entries[0]
    assert first.xpath("a")[0].text_content() == "A tool"
    assert first.xpath("a")[0].get("href") == "https://example.org/tool"
    spans = [" ".join(s.text_content().split()) for s in first.xpath("span[@class='s']")]
    assert spans == [
        "· GitHub",
        "One line about it, with emphasis. And a second paragraph, joined to the first.",
    ]
    assert not first.xpath(".//p")  # one entry, no paragraphs
    assert first.xpath(".//em")[0].text_content() == "emphasis"
    assert " ".join(entries[1].text_content().split()) == "A guide"
    # No kicker paragraphs in the compact section: they belong to the full layout.
    assert not compact.xpath(".//p[@class='k']")


def test_group_headings_outrank_item_titles(edition: Edition) -> None:
    tree = tree_of(email_html(edition))

    def size(element: lxml_html.HtmlElement) -> int:
        return int(re.search(r"font-size:(\d+)px", inline_style(element)).group(1))  # type: ignore[union-attr]

    (group,) = tree.xpath("//h3")
    titles = tree.xpath("//p[@class='t' or @class='ti']")
    assert titles and all(size(group) > size(title) for title in titles)
    assert size(tree.xpath("//h2")[0]) > size(group)
    # Headings sit on space, not on a rule: no border on a heading or on what precedes it.
    assert "border" not in inline_style(group)
    assert "border" not in inline_style(group.getprevious())


def links_in(html: str) -> list[tuple[str, str]]:
    return [(" ".join(a.text_content().split()), a.get("href")) for a in tree_of(html).iter("a")]


def test_every_link_has_real_words_never_brackets(edition: Edition) -> None:
    for html in (
        email_html(edition, archive_url="https://example.org/{slug}/"),
        email_html(load_edition(BUNDLED), archive_url="https://example.org/{slug}/"),
    ):
        links = links_in(html)
        assert len(links) > 5
        for text, href in links:
            assert text and re.search(r"\w", text), href
            assert not re.fullmatch(r"\[.*\]", text), text
        assert "[Code]" not in html and "[Model card]" not in html


# -- the footer ---------------------------------------------------------------------------------


def footer_of(html: str) -> lxml_html.HtmlElement:
    return tree_of(html).xpath("//*[contains(@class,'fine-print')]")[-1]


def test_footer_holds_sender_address_reason_and_links(edition: Edition) -> None:
    html = email_html(edition, archive_url="https://example.org/{slug}/")
    footer = footer_of(html)
    text = " ".join(footer.text_content().split())
    assert text.startswith("Clippings: Speech and AI research, once a month.")
    assert "You receive it at reader@example.org because you subscribed." in text
    assert "Reply to this email" in text
    assert CLIPPINGS.postal_address and text.endswith(CLIPPINGS.postal_address)
    links = {" ".join(a.text_content().split()): a.get("href") for a in footer.iter("a")}
    assert links == {
        "Unsubscribe": SAMPLE["unsubscribe_url"],
        "View in browser": "https://example.org/2026-04/",
        "Subscribe to Clippings": CLIPPINGS.subscribe_url,
    }
    assert "Forwarded this? Subscribe to Clippings" in text


def test_footer_without_address_or_subscribe_link_omits_them(edition: Edition) -> None:
    footer = footer_of(email_html(edition, Newsletter(name="Clippings")))
    text = " ".join(footer.text_content().split())
    assert "Forwarded" not in text and "Street" not in text
    assert [a.text_content() for a in footer.iter("a")] == ["Unsubscribe"]


# -- Outlook, preheader, size -------------------------------------------------------------------


def test_outlook_gets_exact_line_heights_and_cell_spacing(edition: Edition) -> None:
    html = email_html(edition)
    block = re.search(r"<!--\[if mso\]><style>(.*?)</style><!\[endif\]-->", html, re.S)
    assert block is not None and "mso-line-height-rule: exactly" in block.group(1)
    assert re.search(r"p, li \{ line-height: \d+px; \}", block.group(1))
    # Text blocks carry pixel line heights too (Word scales unitless ones its own way).
    texts = tree_of(html).xpath("//td/div[contains(@style,'font-size:16px')]")
    assert texts and all(re.search(r"line-height:\d+px", inline_style(div)) for div in texts)
    # The highlight box is a table cell: Word keeps a cell's padding and border, not a div's.
    (highlight,) = tree_of(html).xpath("//td[contains(@class,'highlight')]")
    assert "padding:18px20px8px" in inline_style(highlight)
    assert not [d for d in tree_of(html).xpath("//div[@class]") if "border" in inline_style(d)]


def test_hidden_preheader_has_no_white_text(edition: Edition) -> None:
    preview = tree_of(email_html(edition)).xpath("//body/div")[0]
    style = inline_style(preview)
    assert "display:none" in style and "mso-hide:all" in style
    # White text on a light page and 1 px text are what SpamAssassin scores as hidden text.
    assert "color:" not in style and "font-size" not in style


def hundred_items(tmp_path: Path) -> Edition:
    """The bundled edition's items, cycled into 4 full-layout sections of 25 (the worst case:
    no compact section)."""
    data = yaml.safe_load(BUNDLED.read_text(encoding="utf-8"))
    items = []
    for section in data["sections"]:
        items += section.get("items", [])
        for group in section.get("groups", []):
            items += group["items"]
    data["slug"] = "hundred"
    cycled = [items[n % len(items)] for n in range(100)]
    data["sections"] = [
        {"title": f"Section {n + 1}", "items": cycled[n * 25 : (n + 1) * 25]} for n in range(4)
    ]
    path = tmp_path / "hundred.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_edition(path, newsletter=None)


def test_a_hundred_item_edition_stays_under_80_kb(tmp_path: Path) -> None:
    edition = hundred_items(tmp_path)
    assert len(edition.all_items()) == 100
    html = email_html(edition, archive_url="https://example.org/{slug}/")
    size = len(html.encode("utf-8"))
    assert size < 80 * 1024, f"{size / 1024:.1f} KB"
    # Every item is there (nothing was dropped to make the figure).
    assert len(tree_of(html).xpath("//p[@class='t' or @class='ti']")) == 100


def test_web_mode_shows_no_personal_part_and_a_subscribe_link(edition: Edition) -> None:
    """The published page comes from the same template in web mode (no recipient at all):
    rendering must not reach for one, and the footer offers a subscribe link instead."""
    from digest.render import email as module

    environment = module._environment(module.packaged_templates_dir())
    context = module._context(edition, CLIPPINGS, None, None, markdown=module.markdown_html)
    page = module._render_template(environment, module.HTML_TEMPLATE, context)
    assert "Unsubscribe" not in page and "You receive" not in page and "View in browser" not in page
    assert f'<a href="{CLIPPINGS.subscribe_url}">Subscribe to Clippings</a>' in page
    assert CLIPPINGS.postal_address and CLIPPINGS.postal_address in page
