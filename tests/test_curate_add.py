"""`digest add` against a real local web server: Open Graph, Twitter card, <title>, charsets,
errors, a redirect loop, a slow page, a 50 MB body, a PDF, arXiv's Atom API, links featured
before, and the file edited in place without touching any other line."""

from __future__ import annotations

import difflib
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from web_server import Page, WebServer, arxiv_answer

from digest.edition.load import load_edition

EDITION = """\
# The April edition. This comment must survive every edit.
newsletter: Clippings
edition: April 2026
slug: 2026-04
subject: 'Clippings, April 2026: quoted in single quotes'
send_at: 2026-04-30T09:00:00Z

intro: >-
  A folded intro that runs over more than one line so that its folding is visible
  in the file, and must stay exactly as it is.

sections:
  - title: Research Papers
    groups:
      - title: Speech & Audio
        items:
          - title: "Existing paper"   # a trailing comment
            url: https://arxiv.org/abs/2601.00001
            source: arXiv
  # A comment between the sections.
  - title: Tools
    items:
      - title: Existing tool
        url: https://example.org/tool
"""

EARLIER = """\
newsletter: Clippings
edition: March 2026
slug: 2026-03
subject: March
sections:
  - title: Tools
    items:
      - title: A tool featured in March
        url: https://www.featured.example/tool/?utm_source=newsletter
"""


@pytest.fixture
def web() -> Iterator[WebServer]:
    server = WebServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def edition(tmp_path: Path) -> Path:
    folder = tmp_path / "content"
    folder.mkdir()
    (folder / "2026-03.yaml").write_text(EARLIER, encoding="utf-8")
    path = folder / "2026-04.yaml"
    path.write_text(EDITION, encoding="utf-8")
    return path


def only_insertions(before: str, after: str) -> list[str]:
    """The lines ``after`` adds to ``before``; fails when any line of ``before`` changed."""
    old, new = before.splitlines(), after.splitlines()
    added: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        assert tag in ("equal", "insert"), f"line(s) changed: {old[i1:i2]} -> {new[j1:j2]}"
        if tag == "insert":
            added += new[j1:j2]
    return added


def items_of(path: Path, section: int = 1, group: int | None = None) -> list[dict[str, object]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    holder = data["sections"][section]
    if group is not None:
        holder = holder["groups"][group]
    return list(holder["items"])


def test_open_graph_page_becomes_an_item_and_only_its_lines_are_added(web, edition, run_digest):
    description = (
        "Full-stream TTS systems must begin speaking before the whole text is there. "
        "VoXtream2 updates its speaking rate mid-utterance. "
        "It responds to incremental text input &amp; keeps latency low. "
        "This makes it practical for interactive dialogue systems where latency matters. "
        "A fifth sentence that pushes the description past three hundred characters in all. "
        "And a sixth one."
    )
    url = web.html(
        "/og",
        '<meta property="og:title" content="VoXtream2: Full-stream TTS">'
        '<meta property="og:site_name" content="Speech Lab">'
        f'<meta property="og:description" content="{description}">'
        "<title>Ignored title</title>",
    )
    before = edition.read_text(encoding="utf-8")
    result = run_digest("add", str(edition), url)
    assert result.exit_code == 0, result.output
    assert f"added: VoXtream2: Full-stream TTS ({url})" in result.stdout
    assert f"Added 1 item to Tools in {edition}." in result.stdout

    after = edition.read_text(encoding="utf-8")
    added = only_insertions(before, after)
    assert added[0].strip() == "- title: 'VoXtream2: Full-stream TTS'"
    assert after.endswith("\n".join(added) + "\n")  # appended to the last section, at the end
    item = items_of(edition)[-1]
    assert item["url"] == url
    assert item["source"] == "Speech Lab"
    summary = str(item["summary"])
    # Cut at the sentence end nearest 300 characters; the entity decoded.
    assert summary.endswith("where latency matters.")
    assert "input & keeps" in summary
    assert len(summary) <= 300
    assert load_edition(edition).sections[1].items[-1].title == "VoXtream2: Full-stream TTS"


def test_title_only_page_twitter_card_and_meta_description(web, edition, run_digest):
    plain = web.html("/plain", "<title>  Only a\n   title  </title>")
    card = web.html(
        "/card",
        '<title>Page title</title><meta name="twitter:title" content="Card title">'
        '<meta name="description" content="What the meta description says.">',
    )
    result = run_digest("add", str(edition), plain, card)
    assert result.exit_code == 0, result.output
    first, second = items_of(edition)[-2:]
    assert first == {"title": "Only a title", "url": plain, "source": "127.0.0.1"}
    assert second["title"] == "Card title"
    assert second["summary"] == "What the meta description says."


def test_charsets_from_the_header_and_from_meta(web, edition, run_digest):
    header = web.serve(
        "/latin1",
        Page(
            "<title>Café crème à Noël</title>".encode("latin-1"),
            content_type="text/html; charset=ISO-8859-1",
        ),
    )
    meta = web.serve(
        "/meta",
        Page(
            '<meta charset="windows-1252"><title>Ça coûte 5 €</title>'.encode("cp1252"),
            content_type="text/html",
        ),
    )
    result = run_digest("add", str(edition), header, meta)
    assert result.exit_code == 0, result.output
    titles = [item["title"] for item in items_of(edition)[-2:]]
    assert titles == ["Café crème à Noël", "Ça coûte 5 €"]


def test_pages_that_cannot_be_had_are_one_line_each_and_nothing_is_written(
    web, edition, run_digest
):
    missing = web.url("/missing")
    broken = web.serve("/broken", Page(b"oops", status=500))
    loop = web.serve("/loop", Page(status=302, location="/loop"))
    slow = web.serve("/slow", Page(b"<title>Late</title>", delay=2.0))
    pdf = web.serve("/paper.pdf", Page(b"%PDF-1.7", content_type="application/pdf"))
    before = edition.read_bytes()
    result = run_digest("add", str(edition), missing, broken, loop, slow, pdf, "--timeout", "0.5")
    assert result.exit_code == 3
    lines = result.stderr.splitlines()
    assert f"failed: {missing}: 404 NOT FOUND" in lines
    assert f"failed: {broken}: 500 INTERNAL SERVER ERROR" in lines
    assert f"failed: {loop}: too many redirects (more than 5; a redirect loop?)" in lines
    assert f"failed: {slow}: timeout after 0.5 s" in lines
    assert f"failed: {pdf}: is application/pdf, not an HTML page; add it by hand" in lines
    assert "Traceback" not in result.output
    assert f"Added 0 items; {edition} is unchanged, 5 failed." in result.stdout
    assert edition.read_bytes() == before
    assert [p.name for p in edition.parent.iterdir() if p.name.startswith(".")] == []
    # The redirect loop was followed 5 times, then given up.
    assert sum(1 for seen in web.requests if seen.path == "/loop") == 6


def test_a_50_mb_page_is_read_up_to_2_mb_only(web, edition, run_digest):
    huge = web.serve("/huge", Page(streamed_bytes=50 * 1024 * 1024))
    result = run_digest("add", str(edition), huge)
    assert result.exit_code == 0, result.output
    assert items_of(edition)[-1]["title"] == "A very long page"
    assert web.streamed_out < 10 * 1024 * 1024  # the client hung up long before the end


def test_some_fail_others_are_written_exit_3(web, edition, run_digest):
    good = web.html("/good", "<title>Good page</title>")
    result = run_digest("add", str(edition), web.url("/gone"), good)
    assert result.exit_code == 3
    assert [item["title"] for item in items_of(edition)][-1] == "Good page"
    assert "1 failed" in result.stdout


def test_arxiv_ids_abstract_and_pdf_links_in_one_api_request(web, edition, run_digest):
    web.serve(
        "/api/query",
        Page(
            arxiv_answer(
                [
                    (
                        "2601.07372v1",
                        "Conditional Memory via\n  Scalable Lookup",
                        ["Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra"],
                        "We study &lt;memory&gt; in large models. It scales well.",
                    ),
                    ("2601.00002v2", "Second paper", ["Ada Lovelace"], "Short abstract."),
                    ("2601.00003v1", "Third paper", ["A. One", "B. Two"], "Another one."),
                ]
            ),
            content_type="application/atom+xml; charset=utf-8",
        ),
    )
    env = {"DIGEST_ARXIV_API_URL": web.url("/api/query")}
    result = run_digest(
        "add",
        str(edition),
        "2601.07372",
        "https://arxiv.org/abs/2601.00002v2",
        "https://arxiv.org/pdf/2601.00003",
        "2601.99999",
        "--section",
        "research papers",
        env=env,
    )
    assert result.exit_code == 3, result.output
    assert "failed: 2601.99999: arXiv does not know the paper 2601.99999" in result.stderr
    api_calls = [seen for seen in web.requests if seen.path == "/api/query"]
    assert len(api_calls) == 1
    assert "2601.07372%2C2601.00002v2%2C2601.00003%2C2601.99999" in api_calls[0].query
    first, second, third = items_of(edition, section=0, group=0)[-3:]
    assert first["title"] == "Conditional Memory via Scalable Lookup"
    assert first["url"] == "https://arxiv.org/abs/2601.07372"
    assert first["source"] == "arXiv"
    assert (
        first["summary"]
        == "Ada Lovelace et al.: We study \\<memory\\> in large models. It scales well."
    )
    assert second["url"] == "https://arxiv.org/abs/2601.00002v2"
    assert third["summary"] == "A. One and B. Two: Another one."
    assert third["links"] == [{"label": "PDF", "url": "https://arxiv.org/pdf/2601.00003"}]
    rendered = load_edition(edition).sections[0].groups[0].items[1]
    assert rendered.title == "Conditional Memory via Scalable Lookup"


def test_links_featured_before_are_skipped_unless_again(web, edition, run_digest):
    env = {"DIGEST_ARXIV_API_URL": web.url("/api/query")}
    before = edition.read_bytes()
    result = run_digest(
        "add",
        str(edition),
        "http://featured.example/tool?utm_medium=email",  # March, written another way
        "https://arxiv.org/pdf/2601.00001v3",  # this edition, as a PDF link of another version
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert (
        "skipped: http://featured.example/tool?utm_medium=email: already in 2026-03; "
        "add --again to add it anyway" in result.stderr
    )
    assert "skipped: https://arxiv.org/pdf/2601.00001v3: already in 2026-04" in result.stderr
    assert edition.read_bytes() == before
    assert web.requests == []  # nothing was fetched for them

    url = web.html("/tool/", "<title>Again</title>")
    first = run_digest("add", str(edition), url)
    assert first.exit_code == 0
    again = run_digest("add", str(edition), url.rstrip("/") + "?utm_source=x")
    assert "already in 2026-04" in again.stderr
    forced = run_digest("add", str(edition), url, "--again")
    assert forced.exit_code == 0
    assert [item["title"] for item in items_of(edition)].count("Again") == 2


def test_no_other_scheme_and_no_credentials_are_fetched(web, edition, run_digest):
    secret = web.url("/private").replace("http://", "http://user:hunter2@")
    result = run_digest("add", str(edition), "ftp://example.org/file", "file:///etc/passwd", secret)
    assert result.exit_code == 3
    assert (
        "failed: ftp://example.org/file: only http and https addresses are fetched" in result.stderr
    )
    assert "failed: file:///etc/passwd: only http and https" in result.stderr
    assert "holds a user name or password" in result.stderr
    assert web.requests == []


def test_hostile_page_text_is_plain_text_in_the_yaml(web, edition, run_digest):
    url = web.html(
        "/hostile",
        '<meta property="og:title" '
        'content="&lt;script&gt;alert(1)&lt;/script&gt; *Bold* [x](javascript:y)">'
        '<meta property="og:description" content="See &lt;img src=x onerror=alert(1)&gt; and '
        '[click](javascript:alert(1)) or `code` - # not a heading">',
    )
    result = run_digest("add", str(edition), url)
    assert result.exit_code == 0, result.output
    item = items_of(edition)[-1]
    assert item["title"] == "<script>alert(1)</script> *Bold* [x](javascript:y)"  # plain text
    assert item["summary"] == (
        "See \\<img src=x onerror=alert(1)\\> and \\[click\\](javascript:alert(1)) or \\`code\\` "
        "- # not a heading"
    )
    assert run_digest("validate", str(edition)).exit_code == 0


def test_user_agent_names_digest(web, edition, run_digest):
    url = web.html("/ua", "<title>UA</title>")
    run_digest("add", str(edition), url)
    assert web.requests[0].user_agent.startswith("digest/")


def test_unknown_section_or_group_is_refused_before_fetching(web, edition, run_digest):
    url = web.html("/x", "<title>X</title>")
    result = run_digest("add", str(edition), url, "--section", "Nope")
    assert result.exit_code == 1
    assert "no section titled 'Nope' (there are: 'Research Papers', 'Tools')" in result.stderr
    result = run_digest("add", str(edition), url, "--section", "Research Papers", "--group", "X")
    assert "no group of section 'Research Papers' titled 'X' (there are: 'Speech & Audio')" in (
        result.stderr
    )
    assert web.requests == []


def test_a_fresh_edition_fills_up_and_validates(web, tmp_path, run_digest):
    folder = tmp_path / "content"
    folder.mkdir()
    (folder / "2026-03.yaml").write_text(EDITION.replace("2026-04", "2026-03"), encoding="utf-8")
    made = run_digest("new", str(folder))
    assert made.exit_code == 0, made.output
    fresh = folder / "2026-04.yaml"
    assert run_digest("validate", str(fresh)).exit_code == 1
    one = web.html("/one", "<title>One</title>")
    two = web.html("/two", "<title>Two</title>")
    before = fresh.read_text(encoding="utf-8")
    assert run_digest("add", str(fresh), one, "--section", "Research Papers").exit_code == 0
    assert run_digest("add", str(fresh), two, "--section", "Tools").exit_code == 0
    after = fresh.read_text(encoding="utf-8")
    # `items: []` became a list: that line changes, everything else stays.
    assert [line for line in before.splitlines() if line not in after.splitlines()] == [
        "        items: []",
        "    items: []",
    ]
    edition = load_edition(fresh)
    assert [i.title for i in edition.all_items()] == ["One", "Two"]
    assert textwrap.dedent(after).startswith("# Clippings, April 2026: started by `digest new`")
