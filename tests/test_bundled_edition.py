"""The bundled March 2026 edition: valid, complete against the seed text, and quick to load."""

from __future__ import annotations

import re
import statistics
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from digest.edition.load import load_edition
from digest.edition.model import Edition

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "content" / "2026-03.yaml"
SEED = ROOT.parent / "shared" / "seed" / "clippings-2026-03.txt"


@pytest.fixture(scope="module")
def edition() -> Edition:
    return load_edition(BUNDLED)


@pytest.fixture(scope="module")
def seed_entries() -> list[str]:
    """Every bullet of the seed text (one paper or link each), without the leading '- '."""
    if not SEED.is_file():
        pytest.skip(f"the seed text is not here ({SEED})")
    lines = SEED.read_text(encoding="utf-8").splitlines()
    return [line[2:].strip() for line in lines if line.startswith("- ")]


def test_bundled_edition_validates(edition: Edition) -> None:
    assert edition.slug == "2026-03"
    assert edition.newsletter == "Clippings"
    assert edition.edition == "March 2026"
    assert edition.subject == (
        "Clippings, March 2026: Gemini 3.1 Flash Live, VoXtream2 and a 25 MB TTS"
    )
    assert edition.preheader
    assert edition.lang == "en"
    assert (
        edition.send_at is not None and edition.send_at.isoformat() == "2026-03-31T09:00:00+00:00"
    )


def test_every_seed_entry_is_an_item_with_its_title(
    edition: Edition, seed_entries: list[str]
) -> None:
    titles = [item.title for item in edition.all_items()]
    assert len(titles) == len(seed_entries) == len(set(titles))
    for entry in seed_entries:
        # A title is followed in the seed by its summary, after " — ", " : ", " | " or a space.
        matches = [t for t in titles if re.match(re.escape(t) + r"(?: —| :| \||\s)", entry)]
        assert matches, f"no item title starts the seed entry {entry[:70]!r}"


def test_every_summary_keeps_the_seed_wording(edition: Edition, seed_entries: list[str]) -> None:
    seed_text = " ".join(seed_entries)
    for item in edition.all_items():
        assert item.summary, f"{item.title} has no summary"
        assert item.summary in seed_text, f"summary of {item.title!r} differs from the seed"


def test_the_groups_and_sections_of_the_seed(edition: Edition) -> None:
    papers, also = edition.sections
    assert papers.title == "Research Papers"
    assert [g.title for g in papers.groups] == [
        "Speech & Audio",
        "LLM Architecture & Training",
        "Other",
    ]
    assert [len(g.items) for g in papers.groups] == [8, 5, 1]
    assert also.title == "Also Worth a Look"
    assert also.items[-1].title.startswith("NVIDIA PersonaPlex 7B on Apple Silicon")


def test_the_highlight_holds_both_paragraphs_and_the_model_card(edition: Edition) -> None:
    (highlight,) = edition.highlights
    assert highlight.title == "Google's Gemini 3.1 Flash Live"
    paragraphs = [" ".join(p.split()) for p in highlight.body.split("\n\n")]
    assert len(paragraphs) == 2
    assert paragraphs[0].startswith("Google’s Gemini 3.1 Flash Live is described as")
    assert paragraphs[0].endswith("sparse mixture-of-experts (MoE) transformer-based model.")
    assert "Gemini 3 Pro, which" in paragraphs[0]
    assert paragraphs[1].startswith("Sparse MoE models activate a subset of model parameters")
    assert [link.label for link in highlight.links] == ["Model card"]


def test_the_deepseek_paper_keeps_its_code_link(edition: Edition) -> None:
    (item,) = [i for i in edition.all_items() if i.title.startswith("Conditional Memory")]
    assert [(link.label, link.url) for link in item.links] == [
        ("Code", "https://github.com/deepseek-ai/Engram")
    ]


def test_addresses_are_homes_or_searches_on_the_exact_title(edition: Edition) -> None:
    known_homes = {
        "SpeechBrain": "https://speechbrain.github.io/",
        "LLM Visualization": "https://bbycroft.net/llm",
        "KittenTTS": "https://github.com/KittenML/KittenTTS",
        "parameter-golf": "https://github.com/openai/parameter-golf",
    }
    for item in edition.all_items():
        parts = urlsplit(item.url)
        assert parts.scheme == "https"
        if item.title in known_homes:
            assert item.url == known_homes[item.title]
        query = parse_qs(parts.query)
        if parts.netloc == "arxiv.org" and parts.path == "/search/":
            assert query == {"query": [item.title], "searchtype": ["title"]}
        elif parts.netloc == "duckduckgo.com":
            assert query == {"q": [item.title]}


def test_bundled_edition_loads_in_a_few_milliseconds() -> None:
    load_edition(BUNDLED)  # warm caches (parsers, pydantic)
    timings = []
    for _ in range(15):
        start = time.perf_counter()
        load_edition(BUNDLED)
        timings.append(time.perf_counter() - start)
    # Typically ~4 ms; the bound leaves room for a slow CI machine.
    assert statistics.median(timings) < 0.030
