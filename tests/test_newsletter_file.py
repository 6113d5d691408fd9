"""digest.toml (contract §6) as the curator meets it: `digest validate` reports each mistake at
its line and column, the edition's `newsletter:` is optional and must agree when given, and the
"view in browser" link of every message defaults to the edition's page under site_url."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import SMALL_EDITION, CliResult

Run = Callable[..., CliResult]

GOOD_TOML = """\
# The newsletter's identity.
[newsletter]
name = "Clippings"
description = "A monthly digest."
site_url = "https://clippings.example.org/"
accent = "#0b57d0"
logo = { url = "https://clippings.example.org/logo.png", width = 160, alt = "Clippings" }
"""


def write_publication(root: Path, toml: str, edition: str = SMALL_EDITION) -> None:
    (root / "content").mkdir(exist_ok=True)
    (root / "content" / "2026-03.yaml").write_text(textwrap.dedent(edition), encoding="utf-8")
    (root / "digest.toml").write_text(toml, encoding="utf-8")


@pytest.mark.parametrize(
    ("replace", "by", "where", "message"),
    [
        (
            'accent = "#0b57d0"\n',
            'accent = "#0b57d0"\ncolour = "blue"\n',
            "7:1",
            "unknown key 'colour'",
        ),
        ("width = 160", 'width = "160"', "7:", "logo.width: Input should be a valid integer"),
        (
            'url = "https://clippings.example.org/logo.png"',
            'url = "http://clippings.example.org/logo.png"',
            "7:",
            "logo.url: must be an https URL",
        ),
        ('accent = "#0b57d0"', 'accent = "#ffdd00"', "6:10", "accent: #ffdd00 has a contrast of"),
        (
            'site_url = "https://clippings.example.org/"',
            'site_url = "clippings.example.org"',
            "5:12",
            "site_url: must be an https or http URL",
        ),
    ],
    ids=["unknown-key", "wrong-type", "http-logo", "low-contrast-accent", "bad-site-url"],
)
def test_validate_reports_each_digest_toml_mistake_at_its_line(
    run_digest: Run, tmp_path: Path, replace: str, by: str, where: str, message: str
) -> None:
    assert replace in GOOD_TOML
    write_publication(tmp_path, GOOD_TOML.replace(replace, by))
    result = run_digest("validate", "content/2026-03.yaml")
    assert result.exit_code == 1, result.output
    assert f"digest.toml:{where}" in result.stderr
    line = next(line for line in result.stderr.splitlines() if line.startswith("digest.toml:"))
    assert message in line, result.stderr
    assert "Traceback" not in result.output


def test_a_valid_digest_toml_names_the_newsletter_of_an_edition_that_does_not(
    run_digest: Run, tmp_path: Path
) -> None:
    unnamed = SMALL_EDITION.replace("    newsletter: Clippings\n", "")
    assert "newsletter:" not in unnamed
    write_publication(
        tmp_path, GOOD_TOML.replace('name = "Clippings"', 'name = "Cuttings"'), unnamed
    )
    result = run_digest("validate", "content/2026-03.yaml")
    assert result.exit_code == 0, result.output
    assert "Cuttings, March 2026" in result.stdout


def test_an_edition_naming_another_newsletter_than_digest_toml_is_an_error_at_its_line(
    run_digest: Run, tmp_path: Path
) -> None:
    write_publication(tmp_path, GOOD_TOML.replace('name = "Clippings"', 'name = "Cuttings"'))
    result = run_digest("validate", "content/2026-03.yaml")
    assert result.exit_code == 1
    assert "content/2026-03.yaml:1:13: newsletter: says 'Clippings'" in result.stderr
    assert "'Cuttings'" in result.stderr


def test_view_in_browser_links_to_the_page_under_site_url_unless_the_setting_overrides(
    run_digest: Run, tmp_path: Path
) -> None:
    write_publication(tmp_path, GOOD_TOML)
    assert run_digest("build", "content/2026-03.yaml").exit_code == 0
    html = (tmp_path / "dist" / "2026-03" / "email.html").read_text(encoding="utf-8")
    text = (tmp_path / "dist" / "2026-03" / "email.txt").read_text(encoding="utf-8")
    # The link as the template writes it (premailer adds inline styles to the <a>).
    assert 'href="https://clippings.example.org/2026-03/"' in html
    assert "https://clippings.example.org/2026-03/" in text

    env = {"DIGEST_ARCHIVE_URL": "https://archive.example.net/{slug}.html"}
    assert run_digest("build", "content/2026-03.yaml", env=env).exit_code == 0
    html = (tmp_path / "dist" / "2026-03" / "email.html").read_text(encoding="utf-8")
    assert 'href="https://archive.example.net/2026-03.html"' in html
    assert "clippings.example.org/2026-03/" not in html


def test_without_site_url_there_is_no_view_in_browser_link(run_digest: Run, tmp_path: Path) -> None:
    write_publication(
        tmp_path, GOOD_TOML.replace('site_url = "https://clippings.example.org/"\n', "")
    )
    assert run_digest("build", "content/2026-03.yaml").exit_code == 0
    html = (tmp_path / "dist" / "2026-03" / "email.html").read_text(encoding="utf-8")
    assert "View in browser" not in html
