"""The issue number in the masthead (issue 12): the edition's place in its folder, unless the
edition file names its own with ``number:``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from conftest import CliResult

from digest.edition.load import load_edition


def _copy_as(edition_file: Path, name: str, *, number: int | None = None) -> Path:
    text = edition_file.read_text(encoding="utf-8")
    if number is not None:
        text = text.replace("edition:", f"number: {number}\nedition:", 1)
    target = edition_file.with_name(name)
    target.write_text(text, encoding="utf-8")
    return target


def test_the_number_is_the_place_of_the_file_in_its_folder(edition_file: Path) -> None:
    later = _copy_as(edition_file, "2026-04.yaml")
    _copy_as(edition_file, "notes.txt")  # not an edition: not counted

    assert load_edition(edition_file).number == 1
    assert load_edition(later).number == 2


def test_a_number_in_the_file_wins(edition_file: Path) -> None:
    later = _copy_as(edition_file, "2026-04.yaml", number=42)

    assert load_edition(later).number == 42


def test_the_masthead_and_the_text_twin_show_the_number(
    edition_file: Path, run_digest: Callable[..., CliResult], tmp_path: Path
) -> None:
    _copy_as(edition_file, "2026-02.yaml")
    result = run_digest("build", str(edition_file), "--out", "dist")
    assert result.exit_code == 0, result.stderr

    html = (tmp_path / "dist" / "2026-03" / "email.html").read_text(encoding="utf-8")
    text = (tmp_path / "dist" / "2026-03" / "email.txt").read_text(encoding="utf-8")
    assert "No. 2 · March 2026" in html
    assert text.splitlines()[0] == "Clippings - No. 2 - March 2026"


def test_a_number_that_is_not_a_positive_whole_number_is_reported_at_its_line(
    edition_file: Path, run_digest: Callable[..., CliResult]
) -> None:
    bad = _copy_as(edition_file, "2026-04.yaml", number=0)

    result = run_digest("validate", str(bad))

    assert result.exit_code == 1
    # The line and column of the value, the field, and what is wrong.
    assert f"{bad}:2:9: number: " in result.stderr, result.stderr


def test_digest_new_goes_on_from_a_number_the_latest_names(
    edition_file: Path, run_digest: Callable[..., CliResult], tmp_path: Path
) -> None:
    edition_file.write_text(
        edition_file.read_text(encoding="utf-8").replace("edition:", "number: 41\nedition:", 1),
        encoding="utf-8",
    )

    result = run_digest("new", "content", "--slug", "2026-04")

    assert result.exit_code == 0, result.stderr
    written = (tmp_path / "content" / "2026-04.yaml").read_text(encoding="utf-8")
    assert "\nnumber: 42\n" in written
