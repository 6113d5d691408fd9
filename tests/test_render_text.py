"""The plain-text twin: from the model, wrapped at 78 columns, links as numbered references."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from digest.edition.load import load_edition
from digest.edition.model import Edition
from digest.newsletter import Newsletter
from digest.render.email import render_edition
from digest.render.sample import sample_values
from digest.render.text import TextComposer

BUNDLED = Path(__file__).resolve().parents[1] / "content" / "2026-03.yaml"

EDITION = textwrap.dedent(
    """\
    newsletter: Clippings
    edition: March 2026
    slug: 2026-03
    subject: Clippings, March 2026
    preheader: Speech and audio
    intro: |
      A month of *speech* and **audio**; see [our site](https://example.org/about) & more.
    highlights:
      - title: Gemini Live
        url: https://example.org/gemini
        body: |
          First paragraph of the highlight, long enough to need wrapping because it goes on
          and on about low-latency streaming audio models and natural conversation.

          Second paragraph with `inline code` kept.
        links: [{label: Model card, url: "https://example.org/card"}]
    sections:
      - title: Research Papers
        intro: Papers we read, with a [reading list](https://example.org/list).
        groups:
          - title: Speech & Audio
            items:
              - title: "VoXtream2: Full-stream TTS with Dynamic Speaking Rate Control"
                url: https://arxiv.org/search/?query=VoXtream2&searchtype=title
                source: arXiv
                summary: |
                  Summary with a list:

                  - first point, _stressed_
                  - second point with `code`

                  Then {{ not_a_variable }} and %recipient.name% stay literal.
                links: [{label: Code, url: "https://github.com/example/voxtream2"}]
      - title: Also Worth a Look
        items:
          - title: KittenTTS
            url: https://github.com/KittenML/KittenTTS
            summary: A TTS model under 25MB at https://github.com/KittenML/KittenTTS/blob/main/a/very/long/path/that/cannot/be/wrapped/anywhere.md
    outro: Thanks for reading. Write to [us](mailto:editor@example.org).
    """
)
VALUES = {
    "email": "reader@example.org",
    "name": "Sample Reader",
    "unsubscribe_url": "https://example.org/unsubscribe?token=sample&x=1",
}


@pytest.fixture
def edition(tmp_path: Path) -> Edition:
    path = tmp_path / "2026-03.yaml"
    path.write_text(EDITION, encoding="utf-8")
    return load_edition(path)


@pytest.fixture
def text(edition: Edition) -> str:
    return render_edition(edition, archive_url="https://example.org/archive/{slug}").text.fill(
        VALUES
    )


def long_lines(text: str) -> list[str]:
    """Lines over 78 columns whose overrun is not a bare URL."""
    return [
        line
        for line in text.splitlines()
        if len(line) > 78 and not re.search(r"(https?|mailto):\S+$", line)
    ]


def references(text: str) -> dict[int, str]:
    return {int(n): url for n, url in re.findall(r"^\[(\d+)\] (\S+)$", text, re.M)}


def test_headings_sections_groups_and_items(text: str) -> None:
    lines = text.splitlines()
    assert lines[:2] == ["Clippings - No. 1 - March 2026", "=" * 30]
    for heading in ("HIGHLIGHTS", "RESEARCH PAPERS", "ALSO WORTH A LOOK"):
        assert heading in lines
    assert "Speech & Audio" in lines  # plain text: no HTML escaping
    assert "&amp;" not in text
    assert "- VoXtream2: Full-stream TTS with Dynamic Speaking Rate Control [5] (arXiv)" in text
    assert "<" not in text.replace("<=", "")


def test_markdown_becomes_text(text: str) -> None:
    assert "A month of speech and audio; see our site [1] & more." in text
    assert "*" not in text.replace("* Gemini", "") and "_stressed_" not in text
    assert "  - first point, stressed" in text
    assert "  - second point with `code`" in text
    assert "Second paragraph with `inline code` kept." in text


def test_links_are_numbered_references_listed_per_section(text: str) -> None:
    refs = references(text)
    assert refs[1] == "https://example.org/about"
    assert refs[2] == "https://example.org/gemini"
    assert refs[3] == "https://example.org/card"
    assert sorted(refs) == list(range(1, len(refs) + 1))  # each number listed exactly once
    # Section references come at the end of their section, before the next section starts.
    highlights_list = text.index("[3] https://example.org/card")
    assert text.index("Model card [3]") < highlights_list < text.index("RESEARCH PAPERS")
    assert text.index("[6] https://github.com/example/voxtream2") < text.index("ALSO WORTH")
    # Intro and outro references close the message, just above the footer.
    tail = text[text.index("Thanks for reading") :]
    assert "[1] https://example.org/about" in tail
    assert re.search(r"\[\d+\] mailto:editor@example.org", tail)


def test_every_item_url_appears_in_text(edition: Edition, text: str) -> None:
    listed = set(references(text).values())
    for item in edition.all_items():
        assert item.url in listed
        assert {link.url for link in item.links} <= listed


def test_lines_wrap_at_78_columns(text: str) -> None:
    assert long_lines(text) == []
    assert max(len(line) for line in text.splitlines()) > 78  # the bare URL was left whole


def test_footer_has_view_in_browser_and_unsubscribe(text: str) -> None:
    lines = text.rstrip("\n").splitlines()
    # The standard signature separator, with its blank, then the footer facts.
    footer = lines[lines.index("-- ") + 1 :]
    assert "\n".join(footer) == (
        "Clippings.\n"
        "You receive it at reader@example.org because you subscribed.\n"
        "Reply to this email to write to us: we read every answer.\n"
        "\n"
        "View in browser: https://example.org/archive/2026-03\n"
        "Unsubscribe: https://example.org/unsubscribe?token=sample&x=1"
    )


def test_footer_names_the_sender_address_and_subscribe_link(edition: Edition) -> None:
    newsletter = Newsletter(
        name="Clippings",
        tagline="Speech and AI research, once a month",
        postal_address="Clippings, 1 Example Street, 12345 Example City",
        subscribe_url="https://clippings.example.org/subscribe",
    )
    text = render_edition(edition, newsletter=newsletter).text.fill(VALUES)
    footer = text[text.index("\n-- \n") :]
    assert "Clippings: Speech and AI research, once a month." in footer
    assert "Forwarded this? Subscribe: https://clippings.example.org/subscribe" in footer
    assert footer.rstrip().endswith("Clippings, 1 Example Street, 12345 Example City")
    assert text.startswith("Clippings - No. 1 - March 2026\n" + "=" * 30 + "\n")
    assert "\nSpeech and AI research, once a month\n" in text[:200]  # the tagline, on top


def test_contents_list_the_highlights_and_sections(text: str) -> None:
    contents = text[text.index("In this issue:") : text.index("A month of speech")]
    assert contents.splitlines()[1:4] == [
        "- Gemini Live",
        "- Research Papers (1)",
        "- Also Worth a Look (1)",
    ]


def test_extra_links_are_labels_never_bracketed_words(text: str) -> None:
    assert "Model card [3]" in text and "Code [6]" in text
    assert "[Code]" not in text and "[Model card]" not in text


def test_content_that_looks_like_a_template_stays_literal(text: str) -> None:
    assert "{{ not_a_variable }}" in text
    # A zero-width space keeps Mailgun from substituting %recipient.x% written in content.
    assert "%\u200brecipient.name%" in text
    assert "%recipient." not in text


def test_bundled_edition_text(tmp_path: Path) -> None:
    edition = load_edition(BUNDLED)
    text = render_edition(edition).text.fill(sample_values_for(edition))
    assert long_lines(text) == []
    listed = set(references(text).values())
    for item in edition.all_items():
        assert item.url in listed
    assert "Unsubscribe: https://example.org/unsubscribe?token=sample" in text


def sample_values_for(edition: Edition) -> dict[str, str]:
    from digest.settings import Settings

    return sample_values(Settings(), edition.slug)


def test_composer_wraps_with_hanging_indent() -> None:
    composer = TextComposer()
    words = "alpha beta gamma delta " * 10
    wrapped = composer.wrap(words + composer.ref("the label", "https://example.org"), "  ", "- ")
    lines = wrapped.splitlines()
    assert lines[0].startswith("- alpha") and all(line.startswith("  ") for line in lines[1:])
    assert all(len(line) <= 78 for line in lines)
    assert "label [1]" in wrapped  # a reference never starts a line on its own
    assert composer.flush() == "[1] https://example.org"
    assert composer.flush() == ""


def test_ordered_lists_and_autolinks() -> None:
    composer = TextComposer()
    text = composer.markdown("1. one\n2. two <https://example.org/x>\n")
    assert text.splitlines() == ["1. one", "2. two https://example.org/x"]
    assert composer.flush() == ""  # an address shown as itself needs no reference


def test_long_titles_and_names_wrap_at_78_columns(tmp_path: Path) -> None:
    title = "A very long title of a section that goes on and on " * 3
    path = tmp_path / "long.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            newsletter: The Extraordinarily Long Named Weekly Letter of Speech and Audio Research
            edition: March 2026, the special double issue with extras
            subject: Long names
            sections:
              - title: {title}
                groups:
                  - title: {title}
                    items:
                      - title: An item
                        url: https://example.org/item
            """
        ),
        encoding="utf-8",
    )
    text = render_edition(load_edition(path)).text.fill(VALUES)
    assert long_lines(text) == []
    words = " ".join(text.split())
    assert (
        "The Extraordinarily Long Named Weekly Letter of Speech and Audio Research - No. 1 - March"
        in words
    )
    assert title.strip().upper() in words and title.strip() in words
    assert "at reader@example.org because you subscribed" in words
