"""One registry of checks: `build`, `validate`, `send` and the preview say the same thing, and a
new check is one decorated function that all of them then run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from digest import checks
from digest.checks import Finding, Subject, check, registered_checks
from digest.preview.snapshot import PreviewOptions, Snapshot, render_snapshot
from digest.settings import Settings


@pytest.fixture
def shouting_check() -> Iterator[None]:
    """A check as a contributor adds one: warns about a subject in capitals."""

    @check("Shouting subject", order=25)
    def shouting(subject: Subject) -> Finding | None:
        if subject.edition.subject.isupper():
            return Finding("warn", "Shouting subject", "the subject is all capitals")
        return None

    yield
    checks._REGISTRY.pop("Shouting subject")


def test_a_registered_check_runs_in_build_validate_send_and_the_preview(
    shouting_check: None,
    tmp_path: Path,
    edition_file: Path,
    run_digest: Any,
    send_env: dict[str, str],
) -> None:
    text = edition_file.read_text(encoding="utf-8")
    subject_line = next(line for line in text.splitlines() if line.startswith("subject:"))
    edition_file.write_text(text.replace(subject_line, "subject: BIG NEWS"), encoding="utf-8")
    assert registered_checks().index("Shouting subject") == 2  # after size and subject length
    expected = "warning: Shouting subject: the subject is all capitals"

    built = run_digest("build", str(edition_file), "--out", "out")
    validated = run_digest("validate", str(edition_file))
    (tmp_path / "subs.csv").write_text("email\nada@example.org\n", encoding="utf-8")
    dry_run = run_digest(
        "send", str(edition_file), "--dry-run", "--subscribers", "subs.csv", env=send_env
    )
    snapshot = render_snapshot(PreviewOptions(edition_path=edition_file, settings=Settings()))

    assert built.exit_code == 0 and expected in built.stderr
    assert validated.exit_code == 0 and expected in validated.stderr
    assert dry_run.exit_code == 0 and expected in dry_run.stderr, dry_run.output
    assert isinstance(snapshot, Snapshot)
    assert "Shouting subject: the subject is all capitals" in snapshot.warnings
    assert [c.title for c in snapshot.checks if c.level == "warn"].count("Shouting subject") == 1


def test_a_check_that_breaks_is_an_error_finding_not_a_traceback(
    tmp_path: Path, edition_file: Path, run_digest: Any
) -> None:
    @check("Broken check", order=99)
    def broken(subject: Subject) -> Finding:
        raise KeyError("oops")

    try:
        built = run_digest("build", str(edition_file), "--out", "out")
    finally:
        checks._REGISTRY.pop("Broken check")
    assert built.exit_code == 0
    assert "warning: Broken check: the check failed: KeyError" in built.stderr
    assert "Traceback" not in built.output
