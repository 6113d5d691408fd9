"""Hostile edition content: every field gets scripts, `javascript:` links, template and Mailgun
placeholder syntax, control characters, very long values, arbitrary Unicode.

Whatever the file, `load_edition_text` either refuses it with an EditionError whose every problem
names the file and a line, or the edition renders; no other exception ever. What renders holds no
script, no event handler and no link other than http(s)/mailto, and template-looking text is shown
as written, never evaluated.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from html.parser import HTMLParser
from typing import Any

import pytest
import yaml
from faults.figures import publish
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.edition.load import load_edition_text
from digest.edition.model import Edition
from digest.errors import EditionError
from digest.render.email import render_edition
from hostile.payloads import hostile_url, maybe_hostile

EXAMPLES = 300
PATH = "content/hostile.yaml"
SAMPLE = {
    "email": "reader@example.org",
    "name": "Sample Reader",
    "unsubscribe_url": "https://example.org/unsubscribe/token",
}
SAFE_SCHEMES = ("http:", "https:", "mailto:")
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "background", "poster", "xlink:href"}


@st.composite
def items(draw: st.DrawFn, n: int, share: float) -> dict[str, Any]:
    return {
        "title": maybe_hostile(draw, f"Item {n}", share),
        "url": maybe_hostile(draw, f"https://example.org/{n}", share, hostile_url),
        "summary": maybe_hostile(draw, "A *short* summary.", share),
        "source": maybe_hostile(draw, "arXiv", share),
        "links": [
            {
                "label": maybe_hostile(draw, "Code", share),
                "url": maybe_hostile(draw, "https://github.com/x", share, hostile_url),
            }
        ],
    }


@st.composite
def editions(draw: st.DrawFn) -> dict[str, Any]:
    share = draw(st.sampled_from([0.04, 0.1, 0.3]))  # how hostile this edition is
    return {
        "newsletter": maybe_hostile(draw, "Clippings", share),
        "edition": maybe_hostile(draw, "March 2026", share),
        "slug": "2026-03",
        "subject": maybe_hostile(draw, "Clippings, March 2026", share),
        "preheader": maybe_hostile(draw, "Three papers and a model", share),
        "intro": maybe_hostile(draw, "Hello **reader**.", share),
        "highlights": [
            {
                "title": maybe_hostile(draw, "A highlight", share),
                "url": maybe_hostile(draw, "https://example.org/h", share, hostile_url),
                "body": maybe_hostile(draw, "Body with [a link](https://example.org).", share),
                "links": [
                    {
                        "label": maybe_hostile(draw, "Model card", share),
                        "url": maybe_hostile(draw, "https://example.org/card", share, hostile_url),
                    }
                ],
            }
        ],
        "sections": [
            {
                "title": maybe_hostile(draw, "Research Papers", share),
                "intro": maybe_hostile(draw, "Read these.", share),
                "items": [draw(items(1, share))],
                "groups": [
                    {
                        "title": maybe_hostile(draw, "Speech", share),
                        "items": [draw(items(2, share))],
                    }
                ],
            }
        ],
        "outro": maybe_hostile(draw, "See you in April.", share),
    }


def raw_yaml(value: Any, indent: str = "") -> str:
    """YAML written by hand with every scalar spliced in unquoted, as a careless curator (or an
    attacker) would: the value may well break the YAML itself."""
    lines: list[str] = []
    if isinstance(value, dict):
        for key, inner in value.items():
            if isinstance(inner, dict | list):
                lines.append(f"{indent}{key}:")
                lines.append(raw_yaml(inner, indent + "  "))
            else:
                lines.append(f"{indent}{key}: {inner}")
    else:
        for entry in value:
            block = raw_yaml(entry, indent + "  ")
            lines.append(f"{indent}- {block.lstrip()}")
    return "\n".join(lines)


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [(name, value or "") for name, value in attrs]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def assert_inert(page: str) -> str:
    """No script, no handler, no unsafe link in ``page``; returns its visible text."""
    assert "<script" not in page.lower()
    parsed = _Collector()
    parsed.feed(page)
    parsed.close()
    assert not {"script", "iframe", "object", "embed", "form", "base"} & set(parsed.tags)
    for name, value in parsed.attributes:
        assert not name.startswith("on"), f"event handler {name}={value!r}"
        # What a browser would follow: entities decoded, blanks and controls dropped.
        target = "".join(ch for ch in html.unescape(value) if ord(ch) > 32).lower()
        if name in URL_ATTRIBUTES and target:
            assert target.startswith(SAFE_SCHEMES) or target.startswith("#"), (name, value)
        assert "javascript:" not in target or name not in URL_ATTRIBUTES | {"style"}
    return "".join(parsed.text)


def plain_fields(edition: Edition) -> list[str]:
    values = [edition.newsletter, edition.edition]
    for highlight in edition.highlights:
        values += [highlight.title, *(link.label for link in highlight.links)]
    for section in edition.sections:
        values.append(section.title)
        values += [group.title for group in section.groups]
        for item in section.all_items():
            values += [item.title, *(link.label for link in item.links)]
            values += [item.source] if item.source else []
    return values


def check_one(text: str, stats: Counter[str]) -> None:
    stats["inputs"] += 1
    try:
        edition = load_edition_text(text, PATH)
    except EditionError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.path == PATH and problem.line is not None and problem.line >= 1, problem
        stats["refused"] += 1
        return
    rendered = render_edition(edition)
    page = rendered.html.fill(SAMPLE)
    plain = rendered.text.fill(SAMPLE)
    visible = assert_inert(page)
    for output in (page, plain):
        # Placeholders are content: never evaluated by Jinja, never left for Mailgun to fill.
        assert ("EVAL" in text) or ("EVAL" not in output)
        assert ("LOOPa" in text) or ("LOOPa" not in output)
        assert "%recipient" not in output.lower()
        assert "%unsubscribe_url%" not in output.lower()
    for value in plain_fields(edition):
        # Plain text is shown exactly as written (Mailgun's % aside, which is an entity).
        assert value in visible.replace("&#37;", "%"), value
    stats["rendered"] += 1


@pytest.mark.parametrize("writer", ["yaml.safe_dump", "raw"])
def test_hostile_editions_are_refused_or_render_inert(
    writer: str, capsys: pytest.CaptureFixture[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    stats: Counter[str] = Counter()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(editions())
    def prop(data: dict[str, Any]) -> None:
        if writer == "raw":
            text = raw_yaml(data) + "\n"
        else:
            text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=1000)
        check_one(text, stats)

    prop()
    assert stats["rendered"] and stats["refused"], stats  # both paths were exercised
    publish(
        f"hostile editions ({writer})",
        {
            "inputs_tried": stats["inputs"],
            "refused": stats["refused"],
            "rendered": stats["rendered"],
        },
        tmp_path_factory=tmp_path_factory,
        capsys=capsys,
    )


def test_every_payload_in_every_field_one_at_a_time() -> None:
    """Deterministic sweep: each payload alone in each field of a valid edition."""
    from hostile.payloads import PAYLOADS, URL_PAYLOADS

    base = {
        "newsletter": "Clippings",
        "edition": "March 2026",
        "slug": "2026-03",
        "subject": "Subject",
        "intro": "Hi.",
        "sections": [
            {
                "title": "Papers",
                "items": [
                    {
                        "title": "T",
                        "url": "https://example.org",
                        "summary": "S",
                        "source": "arXiv",
                        "links": [{"label": "Code", "url": "https://example.org/c"}],
                    }
                ],
            }
        ],
        "outro": "Bye.",
    }
    places: list[tuple[Any, ...]] = [
        ("newsletter",),
        ("edition",),
        ("subject",),
        ("intro",),
        ("outro",),
        ("sections", 0, "title"),
        ("sections", 0, "items", 0, "title"),
        ("sections", 0, "items", 0, "summary"),
        ("sections", 0, "items", 0, "source"),
        ("sections", 0, "items", 0, "links", 0, "label"),
    ]
    url_places = [
        ("sections", 0, "items", 0, "url"),
        ("sections", 0, "items", 0, "links", 0, "url"),
    ]
    stats: Counter[str] = Counter()
    for where, payloads in [(p, PAYLOADS) for p in places] + [
        (p, URL_PAYLOADS) for p in url_places
    ]:
        for payload in payloads:
            data = json.loads(json.dumps(base))
            target = data
            for key in where[:-1]:
                target = target[key]
            target[where[-1]] = payload
            check_one(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), stats)
    assert stats["rendered"] and stats["refused"]
