"""`digest publish` (contract §7) as a curator runs it: which editions are published, the Atom
feed as a feed reader parses it, byte-identical rebuilds, no personal data anywhere, and a failed
publish that leaves the last good site in place. The "finished in the ledger" edition is really
sent, to a real SMTP server, by `digest send`."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import feedparser
import pytest
from conftest import CliResult, subscriber_addresses, write_subscribers
from lxml import html as lxml_html
from smtp_server import SMTPTestServer

Run = Callable[..., CliResult]

TOML = """\
[newsletter]
name = "Clippings"
description = "A monthly digest of speech and AI research."
site_url = "https://clippings.example.org/"
subscribe_url = "https://clippings.example.org/subscribe"
postal_address = "Clippings, 1 Example Street, 12345 Example City"
"""

EDITION = """\
edition: {label}
slug: {slug}
subject: "Clippings, {label}: {topic}"
preheader: "All about {topic}"
{send_at}
intro: Hello, this is **{label}**.
sections:
  - title: Research Papers
    items:
      - title: A paper about {topic}
        url: https://arxiv.org/abs/2601.0000{n}
        summary: Short and *useful*.
        source: arXiv
"""


def edition_text(n: int, slug: str, label: str, topic: str, send_at: str | None) -> str:
    line = f"send_at: {send_at}" if send_at else ""
    return EDITION.format(n=n, slug=slug, label=label, topic=topic, send_at=line)


PAST = ("2026-01", "January 2026", "speech", "2026-01-31T09:00:00Z")
SENT = ("2026-02", "February 2026", "memory", None)  # no send_at: sent by hand
FUTURE = ("2099-01", "January 2099", "the future", "2099-01-31T09:00:00Z")


@pytest.fixture
def publication(
    tmp_path: Path, run_digest: Run, smtp_server: SMTPTestServer, send_env: dict[str, str]
) -> dict[str, str]:
    """content/ with three editions: one past, one sent for real (ledger), one in the future.
    Returns the settings to publish with (the same state folder as the send)."""
    (tmp_path / "digest.toml").write_text(TOML, encoding="utf-8")
    content = tmp_path / "content"
    content.mkdir()
    for n, (slug, label, topic, send_at) in enumerate((PAST, SENT, FUTURE), start=1):
        (content / f"{slug}.yaml").write_text(
            edition_text(n, slug, label, topic, send_at), encoding="utf-8"
        )
    write_subscribers(tmp_path / "subscribers.csv", 3)
    env = {**send_env, **smtp_server.env()}
    sent = run_digest(
        "send", "content/2026-02.yaml", "--subscribers", "subscribers.csv", "--yes", env=env
    )
    assert sent.exit_code == 0, sent.output
    assert len(smtp_server.messages) == 3
    return send_env


def site_hashes(site: Path) -> dict[str, str]:
    return {
        str(path.relative_to(site)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(site.rglob("*"))
        if path.is_file()
    }


def test_past_and_sent_editions_are_published_and_drafts_adds_the_future_one_with_noindex(
    run_digest: Run, publication: dict[str, str], tmp_path: Path
) -> None:
    result = run_digest("publish", env=publication)
    assert result.exit_code == 0, result.output
    assert "2 editions published" in result.stdout
    assert "site/index.html" in result.stdout
    site = tmp_path / "site"
    assert (site / "2026-01" / "index.html").is_file()
    assert (site / "2026-02" / "index.html").is_file()
    assert not (site / "2099-01").exists()
    index = lxml_html.fromstring((site / "index.html").read_bytes())
    links = [a.get("href") for a in index.cssselect("a.edition-link")]
    assert links == ["2026-02/", "2026-01/"]  # newest first: the one sent now, then January
    assert index.cssselect("title")[0].text == "Clippings"
    text = index.text_content()
    assert "A monthly digest of speech and AI research." in text
    assert "31 January 2026" in text and "All about speech" in text
    assert index.cssselect('a[href="https://clippings.example.org/subscribe"]')
    # latest/ is the newest published edition.
    assert (site / "latest" / "index.html").read_bytes() == (
        site / "2026-02" / "index.html"
    ).read_bytes()
    for slug in ("2026-01", "2026-02"):
        page = (site / slug / "index.html").read_text(encoding="utf-8")
        assert 'name="robots"' not in page and "Draft" not in page

    drafts = run_digest("publish", "--drafts", env=publication)
    assert drafts.exit_code == 0, drafts.output
    assert "2 editions published, 1 draft" in drafts.stdout
    page = lxml_html.fromstring((site / "2099-01" / "index.html").read_bytes())
    assert page.cssselect('meta[name="robots"]')[0].get("content") == "noindex"
    assert "Draft: not published yet" in page.text_content()
    index = lxml_html.fromstring((site / "index.html").read_bytes())
    assert index.cssselect("a.edition-link")[0].get("href") == "2099-01/"
    # Not in the feed, nor the sitemap, nor latest/.
    assert "2099-01" not in (site / "feed.xml").read_text(encoding="utf-8")
    assert "2099-01" not in (site / "sitemap.xml").read_text(encoding="utf-8")
    assert "2099" not in (site / "latest" / "index.html").read_text(encoding="utf-8")


def test_the_web_edition_is_a_real_page_with_no_personal_data(
    run_digest: Run, publication: dict[str, str], tmp_path: Path
) -> None:
    assert run_digest("publish", "--drafts", env=publication).exit_code == 0
    site = tmp_path / "site"
    page = lxml_html.fromstring((site / "2026-01" / "index.html").read_bytes())
    head = {
        (m.get("name") or m.get("property")): m.get("content")
        for m in page.cssselect("meta[name], meta[property]")
    }
    assert page.cssselect("title")[0].text == "Clippings, January 2026: speech"
    assert head["description"] == "All about speech"
    assert head["og:title"] == "Clippings, January 2026: speech"
    assert head["og:url"] == "https://clippings.example.org/2026-01/"
    assert head["twitter:card"] == "summary"
    assert page.cssselect('link[rel="canonical"]')[0].get("href") == (
        "https://clippings.example.org/2026-01/"
    )
    feed = page.cssselect('link[rel="alternate"][type="application/atom+xml"]')[0]
    assert feed.get("href") == "https://clippings.example.org/feed.xml"
    assert page.cssselect('a[href="../"]')  # back to the archive
    assert page.cssselect('a[href="https://clippings.example.org/subscribe"]')
    # The hidden preheader of the email is not on the page.
    assert not page.cssselect('body > div[style*="display:none"]')

    everything = "\n".join(p.read_text(encoding="utf-8") for p in site.rglob("*") if p.is_file())
    for address in subscriber_addresses(3):
        assert address not in everything
    assert "reader@example.org" not in everything  # the sample reader of build and preview
    assert "/unsubscribe/" not in everything and "nsubscribe" not in everything
    assert publication["DIGEST_SECRET"] not in everything


def test_the_feed_parses_cleanly_with_complete_entries_and_ids_that_never_change(
    run_digest: Run, publication: dict[str, str], tmp_path: Path
) -> None:
    assert run_digest("publish", env=publication).exit_code == 0
    feed_path = tmp_path / "site" / "feed.xml"
    first = feedparser.parse(feed_path.read_bytes())
    assert not first.bozo, first.get("bozo_exception")
    assert first.version == "atom10"
    assert first.feed.title == "Clippings"
    assert [e.link for e in first.entries] == [
        "https://clippings.example.org/2026-02/",
        "https://clippings.example.org/2026-01/",
    ]
    for entry in first.entries:
        assert entry.id and entry.title and entry.link and entry.published and entry.updated
        assert entry.content[0].type == "text/html"
        assert "A paper about" in entry.content[0].value  # the full edition, not a summary
    january = first.entries[1]
    assert january.published == "2026-01-31T09:00:00Z" == january.updated

    # Corrected content, republished: the ids stay; the text follows.
    edition = tmp_path / "content" / "2026-01.yaml"
    edition.write_text(edition.read_text().replace("A paper about", "One paper on"))
    assert run_digest("publish", env=publication).exit_code == 0
    second = feedparser.parse(feed_path.read_bytes())
    assert [e.id for e in second.entries] == [e.id for e in first.entries]
    assert len({e.id for e in second.entries}) == 2
    assert "One paper on" in second.entries[1].content[0].value


def test_publishing_twice_gives_byte_identical_files(
    run_digest: Run, publication: dict[str, str], tmp_path: Path
) -> None:
    assert run_digest("publish", "--drafts", env=publication).exit_code == 0
    first = site_hashes(tmp_path / "site")
    assert run_digest("publish", "--drafts", env=publication).exit_code == 0
    assert site_hashes(tmp_path / "site") == first
    assert {"index.html", "feed.xml", "sitemap.xml", "latest/index.html"} <= set(first)


def test_an_invalid_edition_stops_the_publication_and_the_old_site_stays(
    run_digest: Run, publication: dict[str, str], tmp_path: Path
) -> None:
    assert run_digest("publish", env=publication).exit_code == 0
    before = site_hashes(tmp_path / "site")
    broken = tmp_path / "content" / "2026-03.yaml"
    broken.write_text(
        edition_text(4, "2026-03", "March 2026", "x", "2026-03-31T09:00:00Z").replace(
            "https://arxiv.org/abs/2601.00004", "not a link"
        )
    )
    result = run_digest("publish", env=publication)
    assert result.exit_code == 1
    assert re.search(
        r"content/2026-03\.yaml:\d+:\d+: sections\[0\]\.items\[0\]\.url:", result.stderr
    )
    assert "Traceback" not in result.output
    assert site_hashes(tmp_path / "site") == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".site")) == []


def test_site_url_is_required_with_the_line_to_add(run_digest: Run, tmp_path: Path) -> None:
    (tmp_path / "content").mkdir()
    (tmp_path / "content" / "2026-01.yaml").write_text(edition_text(1, *PAST))
    (tmp_path / "digest.toml").write_text('[newsletter]\nname = "Clippings"\n')
    result = run_digest("publish")
    assert result.exit_code == 1
    assert "site_url is not set" in result.stderr
    assert 'hint: add this line under [newsletter] in digest.toml:  site_url = "https://' in (
        result.stderr
    )
    assert not (tmp_path / "site").exists()

    (tmp_path / "digest.toml").unlink()
    result = run_digest("publish")
    assert result.exit_code == 1 and "no digest.toml" in result.stderr


def test_a_folder_publish_did_not_write_is_never_replaced(
    run_digest: Run, publication: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    result = run_digest("publish", "--out", "mine", env=publication)
    assert result.exit_code == 1 and "did not write" in result.stderr
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    assert run_digest("publish", "--out", ".", env=publication).exit_code == 1
    assert (tmp_path / "content" / "2026-01.yaml").is_file()


def test_the_pages_workflow_publishes_site_on_content_pushes_and_is_off_by_default() -> None:
    import yaml

    workflow = Path(__file__).resolve().parents[1] / ".github" / "workflows" / "publish.yml"
    data = yaml.safe_load(workflow.read_text(encoding="utf-8"))
    triggers = data[True]  # YAML 1.1 reads the key `on` as true
    assert "content/**" in triggers["push"]["paths"]
    job = data["jobs"]["publish"]
    assert job["if"] == "${{ vars.DIGEST_PUBLISH_ENABLED == 'true' }}"
    runs = [step.get("run", "") for step in job["steps"]]
    assert "digest publish content --out site" in runs
    uploads = [s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-pages")]
    assert uploads and uploads[0]["with"]["path"] == "site"
    assert data["permissions"]["pages"] == "write"
