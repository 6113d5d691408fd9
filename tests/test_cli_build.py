"""`digest build EDITION [--out DIR]`: files as a sample subscriber gets them, sizes, warnings."""

from __future__ import annotations

import re
import shutil
import sys
import textwrap
from pathlib import Path

import pytest
from lxml import html as lxml_html

from digest.cli import cli
from digest.cli.output import run_guarded
from digest.tokens import verify_token

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "content" / "2026-03.yaml"

SMALL = textwrap.dedent(
    """\
    newsletter: Clippings
    edition: Test Issue
    slug: test-issue
    subject: A test issue
    preheader: Just a test edition, with a preheader long enough for inboxes
    sections:
      - title: Links
        items:
          - {title: "One & two", url: "https://example.org/one?a=1&b=2", summary: "Hello *world*."}
    """
)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder (no .env, no email_templates) and no digest settings."""
    monkeypatch.chdir(tmp_path)
    for name in (
        "DIGEST_UNSUBSCRIBE_URL",
        "DIGEST_UNSUBSCRIBE_MAILTO",
        "DIGEST_SECRET",
        "DIGEST_ARCHIVE_URL",
        "NO_COLOR",
    ):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "small.yaml").write_text(SMALL, encoding="utf-8")
    return tmp_path


def run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["digest", *args])
    code = run_guarded(cli)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_build_writes_both_files_for_the_sample_subscriber(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(monkeypatch, capsys, "build", "small.yaml")
    assert (code, err) == (0, "")
    html_path = Path("dist/test-issue/email.html")
    text_path = Path("dist/test-issue/email.txt")
    html, text = html_path.read_text("utf-8"), text_path.read_text("utf-8")
    lines = out.splitlines()
    assert len(lines) == 2
    for line, path in zip(lines, (html_path, text_path), strict=True):
        assert re.fullmatch(rf"{re.escape(str(path))}\s+\d+\.\d KB", line)
        assert f"{path.stat().st_size / 1024:.1f} KB" in line
    assert "zzslot" not in html + text  # every slot was filled
    assert "reader@example.org" in html and "reader@example.org" in text
    assert 'href="https://example.org/unsubscribe?token=sample"' in html
    assert "Unsubscribe: https://example.org/unsubscribe?token=sample" in text
    tree = lxml_html.fromstring(html)
    hrefs = tree.xpath("//a/@href")
    assert "https://example.org/one?a=1&b=2" in hrefs
    # Real links, or the contents' jumps to a part of this email that exists.
    ids = set(tree.xpath("//@id"))
    assert all(h.startswith(("https://", "mailto:")) or h[1:] in ids for h in hrefs)
    assert not list(html_path.parent.glob(".*.tmp"))  # no temporary file left behind


def test_build_uses_signed_token_and_archive_url_from_settings(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "build-test-secret-7f3a9"
    (workdir / ".env").write_text(
        textwrap.dedent(
            f"""\
            DIGEST_SECRET={secret}
            DIGEST_UNSUBSCRIBE_URL=https://news.example.org/unsubscribe/{{token}}
            DIGEST_ARCHIVE_URL=https://news.example.org/archive/{{slug}}.html
            """
        )
    )
    code, out, err = run(monkeypatch, capsys, "build", "small.yaml", "--out", "site")
    assert code == 0
    html = Path("site/test-issue/email.html").read_text("utf-8")
    text = Path("site/test-issue/email.txt").read_text("utf-8")
    links = {a.text_content(): a.get("href") for a in lxml_html.fromstring(html).iter("a")}
    assert links["View in browser"] == "https://news.example.org/archive/test-issue.html"
    token = links["Unsubscribe"].removeprefix("https://news.example.org/unsubscribe/")
    claims = verify_token(secret, token)
    assert (claims.address, claims.slug) == ("reader@example.org", "test-issue")
    assert f"Unsubscribe: https://news.example.org/unsubscribe/{token}" in text
    assert "View in browser: https://news.example.org/archive/test-issue.html" in text
    for output in (out, err, html, text):
        assert secret not in output


def test_build_falls_back_to_the_mailto(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DIGEST_UNSUBSCRIBE_MAILTO", "unsubscribe@example.org")
    code, _, _ = run(monkeypatch, capsys, "build", "small.yaml")
    assert code == 0
    html = Path("dist/test-issue/email.html").read_text("utf-8")
    assert 'href="mailto:unsubscribe@example.org"' in html


def test_build_of_the_bundled_edition_is_quiet_and_lean(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(monkeypatch, capsys, "build", str(BUNDLED), "--out", "out")
    assert (code, err) == (0, "")
    assert len(out.splitlines()) == 2  # the two paths and sizes, nothing else
    html = Path("out/2026-03/email.html")
    assert html.stat().st_size < 60 * 1024
    assert Path("out/2026-03/email.txt").stat().st_size > 5 * 1024


def test_build_warns_above_90_kb(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = "lorem ipsum " * 900
    items = "".join(
        f'      - {{title: "Item {n}", url: "https://example.org/{n}", summary: "{summary}"}}\n'
        for n in range(10)
    )
    Path("big.yaml").write_text(
        "newsletter: N\nedition: E\nsubject: S\npreheader: P\n"
        "sections:\n  - title: S\n    items:\n" + items
    )
    code, out, err = run(monkeypatch, capsys, "build", "big.yaml")
    assert code == 0
    size_kb = Path("dist/big/email.html").stat().st_size / 1024
    assert size_kb > 90
    assert re.search(
        r"^warning: HTML size: \d+ KB: (over|close to) the clip; Gmail clips", err, re.M
    )
    assert f"{size_kb:.1f} KB" in out


def test_bad_edition_exits_1_with_file_line_col(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("bad.yaml").write_text(SMALL.replace('url: "https://example.org/one', 'url: "ftp://x'))
    code, out, err = run(monkeypatch, capsys, "build", "bad.yaml")
    assert code == 1 and out == ""
    assert re.search(r"^bad\.yaml:9:\d+: sections\[0\]\.items\[0\]\.url: ", err, re.M)
    assert "Traceback" not in err
    assert not Path("dist").exists()


def test_broken_template_in_working_folder_exits_1(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(REPO / "digest" / "render" / "templates", workdir / "email_templates")
    text_template = workdir / "email_templates" / "email.txt.j2"
    text_template.write_text(text_template.read_text() + "{{ edition.no_such_field }}\n")
    line = len(text_template.read_text().splitlines())
    code, _, err = run(monkeypatch, capsys, "build", "small.yaml")
    assert code == 1
    assert re.search(rf"email_templates/email\.txt\.j2:{line}: .*no_such_field", err)
    assert "Traceback" not in err


def test_usage_error_exits_2(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(monkeypatch, capsys, "build")
    assert code == 2 and "Missing argument 'EDITION'" in err
