"""`digest new`: the next edition from the latest one's structure, never over an existing file."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from digest.curate.new import one_month_later

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def content(tmp_path: Path) -> Path:
    folder = tmp_path / "content"
    folder.mkdir()
    shutil.copy(REPO / "content" / "2026-03.yaml", folder / "2026-03.yaml")
    shutil.copy(REPO / "digest.toml", tmp_path / "digest.toml")
    return folder


def test_next_month_from_the_bundled_edition(content, run_digest):
    result = run_digest("new")
    assert result.exit_code == 0, result.output
    path = content / "2026-04.yaml"
    assert result.stdout.splitlines()[0] == (
        "Wrote content/2026-04.yaml: April 2026, to be sent 2026-04-30 09:00 UTC "
        "(from content/2026-03.yaml)."
    )
    assert "Next: digest add content/2026-04.yaml URL..." in result.stdout
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert data["edition"] == "April 2026"
    assert data["slug"] == "2026-04"
    assert data["subject"] == "Clippings, April 2026"
    assert data["send_at"] == datetime(2026, 4, 30, 9, tzinfo=UTC)  # March 31 -> April 30
    assert "highlights" not in data and "intro" not in data
    assert [s["title"] for s in data["sections"]] == ["Research Papers", "Also Worth a Look"]
    assert [g["title"] for g in data["sections"][0]["groups"]] == [
        "Speech & Audio",
        "LLM Architecture & Training",
        "Other",
    ]
    assert all(g["items"] == [] for g in data["sections"][0]["groups"])
    assert data["sections"][1]["items"] == []
    # Not yet an edition to send: validate points at each list to fill.
    checked = run_digest("validate", str(path))
    assert checked.exit_code == 1
    assert "sections[0].groups[0].items: needs at least one item" in checked.stderr
    assert "sections[1]: a section needs at least one item" in checked.stderr


def test_never_overwrites(content, run_digest):
    existing = content / "2026-04.yaml"
    existing.write_text("mine\n", encoding="utf-8")
    result = run_digest("new", str(content))
    assert result.exit_code == 1
    assert f"{existing} exists already; it is never overwritten" in result.stderr
    assert existing.read_text(encoding="utf-8") == "mine\n"
    assert sorted(p.name for p in content.iterdir()) == ["2026-03.yaml", "2026-04.yaml"]


def test_slug_and_send_at_given(content, run_digest):
    result = run_digest(
        "new", str(content), "--slug", "2026-04-special", "--send-at", "2026-04-15T08:00:00+02:00"
    )
    assert result.exit_code == 0, result.output
    data = yaml.safe_load((content / "2026-04-special.yaml").read_text(encoding="utf-8"))
    assert data["slug"] == "2026-04-special"
    assert data["edition"] == "2026-04-special"
    assert data["send_at"].isoformat() == "2026-04-15T08:00:00+02:00"
    naive = run_digest("new", str(content), "--send-at", "2026-04-15T08:00:00")
    assert naive.exit_code == 2
    assert "must be a date and time with a timezone" in naive.stderr
    bad = run_digest("new", str(content), "--slug", "April!")
    assert bad.exit_code == 1
    assert "--slug must be lower-case letters" in bad.stderr


def test_a_folder_without_editions(tmp_path, run_digest):
    (tmp_path / "content").mkdir()
    result = run_digest("new")
    assert result.exit_code == 1
    assert "no edition in content to start from" in result.stderr
    assert "hint:" in result.stderr


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (datetime(2026, 1, 31, 9, tzinfo=UTC), datetime(2026, 2, 28, 9, tzinfo=UTC)),
        (datetime(2026, 2, 28, 9, tzinfo=UTC), datetime(2026, 3, 31, 9, tzinfo=UTC)),
        (datetime(2026, 1, 15, 9, tzinfo=UTC), datetime(2026, 2, 15, 9, tzinfo=UTC)),
        (datetime(2026, 12, 31, 9, tzinfo=UTC), datetime(2027, 1, 31, 9, tzinfo=UTC)),
    ],
)
def test_one_month_later(given, expected):
    assert one_month_later(given) == expected


def test_december_to_january(tmp_path, run_digest):
    folder = tmp_path / "content"
    folder.mkdir()
    (folder / "2026-12.yaml").write_text(
        "newsletter: C\nedition: December 2026\nsubject: S\n"
        "sections:\n  - title: T\n    layout: compact\n    items:\n"
        "      - title: X\n        url: https://example.org/\n",
        encoding="utf-8",
    )
    assert run_digest("new", str(folder)).exit_code == 0
    data = yaml.safe_load((folder / "2027-01.yaml").read_text(encoding="utf-8"))
    assert (data["edition"], data["newsletter"]) == ("January 2027", "C")
    assert data["sections"] == [{"title": "T", "layout": "compact", "items": []}]
    assert "send_at" not in data
