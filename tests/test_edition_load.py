"""The edition loader: every class of mistake is reported at its line, column and field."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.edition.load import MAX_FILE_BYTES, load_edition, load_edition_text
from digest.errors import EditionError

# A valid edition; most broken cases below are this with one mistake.
HEAD = """\
newsletter: Clippings
edition: March 2026
subject: Hello
"""


def edition_with(items: str, head: str = HEAD) -> str:
    """HEAD plus one section holding ``items`` (a dedented YAML list, indented 6 here)."""
    body = textwrap.indent(textwrap.dedent(items).strip("\n"), " " * 6)
    return head + "sections:\n  - title: News\n    items:\n" + body + "\n"


VALID = edition_with(
    """
    - title: One
      url: https://example.org/one
    """
)


def problems_of(tmp_path: Path, content: str | bytes, name: str = "edition.yaml") -> list[str]:
    file = tmp_path / name
    if isinstance(content, bytes):
        file.write_bytes(content)
    else:
        file.write_text(content, encoding="utf-8")
    with pytest.raises(EditionError) as caught:
        load_edition(str(file))
    return [str(problem) for problem in caught.value.problems]


# (case id, file content, the start of the first problem after "PATH:")
BROKEN: list[tuple[str, str | bytes, str]] = [
    (
        "unknown key with suggestion",
        edition_with(
            """
            - titel: One
              url: https://example.org/one
            """
        ),
        "7:9: sections[0].items[0].titel: unknown key 'titel'; did you mean 'title'?",
    ),
    (
        "unknown top-level key",
        VALID + "subjet: typo\n",
        "9:1: subjet: unknown key 'subjet'; did you mean 'subject'?",
    ),
    (
        "duplicate key",
        edition_with(
            """
            - title: One
              url: https://example.org/one
              url: https://example.org/two
            """
        ),
        "9:9: sections[0].items[0].url: duplicate key 'url' (first given on line 8)",
    ),
    (
        "missing required key at the mapping's line",
        edition_with(
            """
            - title: One
              summary: no address
            """
        ),
        "7:9: sections[0].items[0]: missing required key 'url'",
    ),
    (
        "missing top-level key",
        VALID.replace("subject: Hello\n", ""),
        "1:1: missing required key 'subject'",
    ),
    (
        "bad URL scheme",
        edition_with(
            """
            - title: One
              url: ftp://example.org/file
            """
        ),
        "8:14: sections[0].items[0].url: must be an https or http URL",
    ),
    (
        "javascript: in a Markdown link",
        edition_with(
            """
            - title: One
              url: https://example.org/one
              summary: "[click](javascript:alert(1))"
            """
        ),
        "9:18: sections[0].items[0].summary: link target 'javascript:alert(1)' uses the scheme "
        "'javascript'",
    ),
    (
        "raw HTML in a summary",
        edition_with(
            """
            - title: One
              url: https://example.org/one
              summary: A <b>bold</b> claim
            """
        ),
        "9:18: sections[0].items[0].summary: raw HTML is not allowed ('<b>')",
    ),
    (
        "raw HTML on the third line of a literal block",
        VALID
        + textwrap.dedent(
            """\
            outro: |
              Thanks for reading.

              <script>alert(1)</script>
            """
        ),
        "12:3: outro: raw HTML is not allowed ('<script>alert(1)</script>')",
    ),
    (
        "image in Markdown",
        edition_with(
            """
            - title: One
              url: https://example.org/one
              summary: "![chart](https://example.org/chart.png)"
            """
        ),
        "9:18: sections[0].items[0].summary: images are not supported in Markdown fields",
    ),
    (
        "relative Markdown link",
        VALID + "intro: See [the archive](/archive).\n",
        "9:8: intro: link target '/archive' must be an absolute http, https or mailto address",
    ),
    (
        "CR control character in a title",
        edition_with(
            """
            - title: "One\\rBcc: victim@example.org"
              url: https://example.org/one
            """
        ),
        "7:16: sections[0].items[0].title: holds a control character ('\\r')",
    ),
    (
        "NUL in the subject",
        VALID.replace("subject: Hello", 'subject: "Hel\\0lo"'),
        "3:10: subject: holds a control character ('\\x00')",
    ),
    (
        "empty sections list",
        HEAD + "sections: []\n",
        "4:11: sections: needs at least one section",
    ),
    (
        "section without items",
        HEAD + "sections:\n  - title: News\n",
        "5:5: sections[0]: a section needs at least one item (under `items` or `groups`)",
    ),
    (
        "group without items",
        HEAD + "sections:\n  - title: News\n    groups:\n      - title: Audio\n        items: []\n",
        "8:16: sections[0].groups[0].items: needs at least one item",
    ),
    (
        "int where text is expected",
        edition_with(
            """
            - title: 2026
              url: https://example.org/one
            """
        ),
        "7:16: sections[0].items[0].title: must be text; put it in quotes (2026 reads as a number)",
    ),
    (
        "YAML boolean where text is expected",
        VALID + "lang: no\n",
        "9:7: lang: must be text; put it in quotes (False reads as true/false)",
    ),
    (
        "empty title",
        edition_with(
            """
            - title:
              url: https://example.org/one
            """
        ),
        "7:15: sections[0].items[0].title: is empty; write some text",
    ),
    (
        "naive send_at",
        VALID + "send_at: 2026-03-31 09:00:00\n",
        "9:10: send_at: needs a timezone, e.g. 2026-03-31T09:00:00Z",
    ),
    (
        "bad slug",
        VALID + "slug: March_2026\n",
        "9:7: slug: must be lower-case letters, digits and hyphens",
    ),
    (
        "bad lang",
        VALID + "lang: en_GB\n",
        "9:7: lang: must be a language tag such as en, de or pt-BR, not 'en_GB'",
    ),
    (
        "items that are a mapping, not a list",
        HEAD + "sections:\n  - title: News\n    items: {title: One, url: https://example.org}\n",
        "6:12: sections[0].items: must be a list",
    ),
    (
        "highlight without body",
        VALID + "highlights:\n  - title: Big news\n",
        "10:5: highlights[0]: missing required key 'body'",
    ),
    (
        "unsupported YAML tag",
        VALID + "intro: !include other.md\n",
        "9:8: intro: the tag '!include' is not supported; remove it",
    ),
    (
        "YAML syntax error",
        VALID + "intro: [unclosed\n",
        "10:1: invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence that "
        "starts at line 9, column 8)",
    ),
    (
        "tab indentation",
        HEAD + "sections:\n\t- title: News\n",
        "5:1: a tab character; YAML indents with spaces, never tabs",
    ),
    (
        "two YAML documents",
        VALID + "---\n" + VALID,
        "9:1: holds more than one YAML document",
    ),
    (
        "alias bomb",
        VALID
        + textwrap.dedent(
            """\
            a: &a [x, x, x, x, x, x, x, x, x, x]
            b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
            c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
            d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
            e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
            """
        ),
        "12:1: expands to more than 10,000 values",
    ),
    ("recursive alias", "a: &a [*a]\n", "1:1: nests deeper than 64 levels"),
    (
        "file over 1 MB",
        VALID + "# " + "x" * MAX_FILE_BYTES + "\n",
        f" is {len(VALID) + MAX_FILE_BYTES + 3:,} bytes; an edition file may hold at most "
        f"{MAX_FILE_BYTES:,} bytes",
    ),
    (
        "non-UTF-8 bytes",
        VALID.replace("title: One", "title: Caf\xe9").encode("latin-1"),
        "7:19: is not UTF-8 (byte 0xe9); save the file as UTF-8",
    ),
    (
        "control character YAML refuses",
        VALID.replace("subject: Hello", "subject: Hel\x07lo"),
        "3:13: holds a control character (U+0007) that YAML does not allow",
    ),
    (
        "top-level list",
        "- newsletter: Clippings\n",
        "1:1: the top level must be a mapping of keys (newsletter:, edition:, sections: ...), "
        "not a list",
    ),
    ("empty file", "", "1:1: the file is empty"),
    ("only comments", "# draft\n", "1:1: the file is empty"),
    # The usual hand-made YAML slips, each said with the fix to type.
    (
        "unquoted colon in a title",
        edition_with(
            """
            - title: VoXtream2: Full-stream TTS
              url: https://example.org/one
            """
        ),
        "7:25: invalid YAML: the value of 'title' holds ': '; put the whole value in quotes: "
        'title: "VoXtream2: Full-stream TTS"',
    ),
    (
        "a key indented deeper than its neighbours",
        edition_with(
            """
            - title: One
              url: https://example.org/one
               source: arXiv
            """
        ),
        "9:16: invalid YAML: a ':' where none fits: this line is indented deeper than the key "
        "above it",
    ),
    (
        "a key without its colon",
        HEAD + "sections:\n  - title: News\n    items\n      - title: One\n",
        "6:5: invalid YAML: this line is neither `key: value` nor a list entry",
    ),
    (
        "an entry's key not lined up under the first",
        edition_with(
            """
            - title: One
            url: https://example.org/one
            """
        ),
        "8:7: invalid YAML: this line does not line up with the list that starts at line 7",
    ),
    (
        "a quote never closed is shown where it opens",
        VALID.replace("subject: Hello", 'subject: "Hello'),
        "3:10: invalid YAML: found unexpected end of stream (while scanning a quoted scalar): "
        "the quote that opens here is never closed",
    ),
    (
        "a value starting with @",
        edition_with(
            """
            - title: One
              url: https://example.org/one
              source: @openai
            """
        ),
        "9:17: invalid YAML: a value cannot start with @ unquoted; put it in quotes: "
        'source: "@openai"',
    ),
    (
        "a quoted start with more text after it",
        edition_with(
            """
            - title: "VoXtream2" is out
              url: https://example.org/one
            """
        ),
        "7:28: invalid YAML: the value of 'title' starts with \" but goes on after its end; "
        "put the whole value in quotes: title: '\"VoXtream2\" is out'",
    ),
    (
        "an address without https://",
        edition_with(
            """
            - title: One
              url: www.example.org/one
            """
        ),
        "8:14: sections[0].items[0].url: must be an https or http URL; "
        "did you mean 'https://www.example.org/one'?",
    ),
    (
        "send_at as a date only",
        VALID + "send_at: 2026-04-30\n",
        "9:10: send_at: is a date without a time and timezone; write e.g. 2026-04-30T09:00:00Z "
        "(UTC) or 2026-04-30T09:00:00+02:00",
    ),
    (
        "send_at without a timezone suggests its own date and time",
        VALID + "send_at: 2026-04-30 09:30\n",
        "9:10: send_at: needs a timezone, e.g. 2026-04-30T09:30:00Z (UTC) or "
        "2026-04-30T09:30:00+02:00",
    ),
]


@pytest.mark.parametrize(
    ("content", "expected"),
    [pytest.param(content, expected, id=case) for case, content, expected in BROKEN],
)
def test_broken_edition_is_reported_at_its_place(
    tmp_path: Path, content: str | bytes, expected: str
) -> None:
    problems = problems_of(tmp_path, content)
    path = str(tmp_path / "edition.yaml")
    assert problems[0].startswith(f"{path}:{expected}"), problems


def test_table_is_large_enough() -> None:
    assert len(BROKEN) >= 25


def test_every_problem_of_a_file_is_reported_together_sorted_by_line(tmp_path: Path) -> None:
    content = textwrap.dedent(
        """\
        newsletter: Clippings
        edition: 2026
        subject: Hello
        sections:
          - title: Papers
            items:
              - title: One
                url: javascript:alert(1)
              - titel: Two
                url: https://example.org/two
          - title: Links
            groups:
              - title: Tools
                items: []
        lang: "en US"
        """
    )
    problems = problems_of(tmp_path, content, name="2026-03.yaml")
    path = str(tmp_path / "2026-03.yaml")
    assert [p.removeprefix(path) for p in problems] == [
        ":2:10: edition: must be text; put it in quotes (2026 reads as a number)",
        ":8:14: sections[0].items[0].url: must be an https or http URL",
        # Reported once, as the misspelt key; not again as a missing `title`.
        ":9:9: sections[0].items[1].titel: unknown key 'titel'; did you mean 'title'?",
        ":14:16: sections[1].groups[0].items: needs at least one item",
        ":15:7: lang: must be a language tag such as en, de or pt-BR, not 'en US'",
    ]


def test_problems_name_the_path_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "content").mkdir()
    (tmp_path / "content" / "2026-03.yaml").write_text(VALID + "titel: x\n", encoding="utf-8")
    with pytest.raises(EditionError) as caught:
        load_edition("./content/2026-03.yaml")
    assert str(caught.value.problems[0]).startswith("./content/2026-03.yaml:9:1: titel:")


def test_missing_file_is_a_problem_not_a_traceback(tmp_path: Path) -> None:
    with pytest.raises(EditionError) as caught:
        load_edition(tmp_path / "nope.yaml")
    assert str(caught.value.problems[0]) == f"{tmp_path / 'nope.yaml'}: no such file"


def test_template_looking_text_is_content_kept_literally(tmp_path: Path) -> None:
    content = edition_with(
        """
        - title: "{{ subscriber.name }} and {% if x %}"
          url: https://example.org/one
          summary: "Hi %recipient.name%, {{ 7 * 7 }} is {% raw %}"
        """
    ).replace("subject: Hello", "subject: 'Hello {{ name }} %recipient.first%'")
    file = tmp_path / "e.yaml"
    file.write_text(content, encoding="utf-8")
    edition = load_edition(file)
    item = edition.sections[0].items[0]
    assert edition.subject == "Hello {{ name }} %recipient.first%"
    assert item.title == "{{ subscriber.name }} and {% if x %}"
    assert item.summary == "Hi %recipient.name%, {{ 7 * 7 }} is {% raw %}"


def test_html_inside_backticks_is_text(tmp_path: Path) -> None:
    content = edition_with(
        """
        - title: One
          url: https://example.org/one
          summary: "Use `<picture>` and `<source>` for art direction; [mail us](mailto:a@b.org)."
        """
    )
    edition = load_edition_text(content, "e.yaml")
    assert "`<picture>`" in (edition.sections[0].items[0].summary or "")


def test_yaml_types_slug_default_bom_and_aliases(tmp_path: Path) -> None:
    content = "\ufeff" + edition_with(
        """
        - title: One
          url: https://example.org/one
          links: &links [{label: Code, url: "https://example.org/code"}]
        - title: Two
          url: https://example.org/two
          links: *links
        """
    ).replace("subject: Hello", "subject: Hello\nsend_at: 2026-03-31T09:00:00Z")
    file = tmp_path / "2026-04.yaml"
    file.write_text(content, encoding="utf-8")
    edition = load_edition(file)
    assert edition.slug == "2026-04"  # from the file's stem
    assert edition.newsletter == "Clippings"  # the BOM did not stick to the first key
    assert edition.send_at == datetime(2026, 3, 31, 9, tzinfo=UTC)
    assert [item.links[0].label for item in edition.sections[0].items] == ["Code", "Code"]


def test_a_slug_from_a_bad_file_name_says_where_it_came_from(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, VALID, name="March Edition.yaml")
    assert "slug: must be lower-case" in problems[0]
    assert "it comes from the file's name" in problems[0]


def test_merge_keys_merge_and_own_keys_win() -> None:
    content = edition_with(
        """
        - &base {title: One, url: "https://example.org/one", source: arXiv}
        - <<: *base
          title: Two
        """
    )
    items = load_edition_text(content, "e.yaml").sections[0].items
    assert [(i.title, i.url, i.source) for i in items] == [
        ("One", "https://example.org/one", "arXiv"),
        ("Two", "https://example.org/one", "arXiv"),
    ]


def test_load_edition_text_uses_the_stem_given() -> None:
    assert load_edition_text(VALID, "<stdin>", stem="2026-05").slug == "2026-05"


@pytest.mark.parametrize(
    ("line", "value"),
    [
        ("subject", "Clippings, April 2026: Whisper 4 and friends"),
        ("subject", '"Whisper 4" ships: a review'),
        ("subject", "Back\\slash: and \"quotes\" and 'single' ones"),
    ],
)
def test_the_quoting_a_message_suggests_loads_as_the_text_meant(
    tmp_path: Path, line: str, value: str
) -> None:
    broken = VALID.replace("subject: Hello", f"{line}: {value}")
    (message,) = problems_of(tmp_path, broken)
    suggested = message.split("put the whole value in quotes: ", 1)[1]
    fixed = VALID.replace("subject: Hello", suggested)
    assert load_edition_text(fixed, "fixed.yaml", stem="2026-04").subject == value


def test_a_link_written_as_label_colon_url_is_one_problem_with_the_fix(tmp_path: Path) -> None:
    content = edition_with(
        """
        - title: One
          url: https://example.org/one
          links:
            - Code: https://github.com/example/one
        """
    )
    assert [
        p.removeprefix(str(tmp_path / "edition.yaml")) for p in problems_of(tmp_path, content)
    ] == [
        ":10:13: sections[0].items[0].links[0].Code: unknown key 'Code'; a link is written as "
        "{label: Code, url: https://github.com/example/one}",
    ]


def test_a_misspelt_key_is_not_also_reported_missing_but_another_missing_key_is(
    tmp_path: Path,
) -> None:
    content = edition_with(
        """
        - titel: One
          summary: no url here
        """
    )
    path = str(tmp_path / "edition.yaml")
    assert [p.removeprefix(path) for p in problems_of(tmp_path, content)] == [
        ":7:9: sections[0].items[0].titel: unknown key 'titel'; did you mean 'title'?",
        ":7:9: sections[0].items[0]: missing required key 'url'",
    ]


def test_a_missing_file_or_a_folder_hints_at_the_edition_meant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "content").mkdir()
    for slug in ("2026-03", "2026-04"):
        (tmp_path / "content" / f"{slug}.yaml").write_text(VALID, encoding="utf-8")
    expected = {
        "content/2026-04.yml": ("no such file", "did you mean content/2026-04.yaml?"),
        "content/summer.yaml": (
            "no such file",
            "the editions there: content/2026-04.yaml, content/2026-03.yaml",
        ),
        "content": (
            "is a folder, not an edition file",
            "name one edition file, e.g. content/2026-04.yaml",
        ),
        "elsewhere/2026-04.yaml": ("no such file", None),
    }
    for typed, (message, hint) in expected.items():
        with pytest.raises(EditionError) as caught:
            load_edition(typed)
        assert str(caught.value.problems[0]) == f"{typed}: {message}"
        assert caught.value.hint == hint
