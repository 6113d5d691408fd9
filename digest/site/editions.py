"""Which editions the site holds, and the date each one carries.

Published (contract §7): ``send_at`` has passed, or the ledger holds a finished send. The date
of a published edition is its ``send_at`` when that has passed, else the end of its first
finished send: both are facts of the content and the ledger, so a rebuild gives the same date.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from digest.edition.load import load_edition
from digest.edition.model import Edition
from digest.errors import EditionError, Problem, ProblemsError
from digest.ledger import Ledger
from digest.newsletter import Newsletter
from digest.state import database_path

EDITION_SUFFIXES = (".yaml", ".yml")
# Folder names the site itself uses: an edition of that slug would overwrite them.
RESERVED_SLUGS = frozenset({"latest"})
_COMPLETED_OUTCOMES = ("done", "failures")  # a run that went through the whole list
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class SiteEdition:
    """One edition on the site. ``date`` is None only for a draft that has no ``send_at``."""

    edition: Edition
    path: Path
    draft: bool
    date: datetime | None

    @property
    def slug(self) -> str:
        return self.edition.slug


def edition_files(content_dir: Path) -> list[Path]:
    """The edition files of ``content_dir``, in name order (hidden files left out)."""
    return sorted(
        path
        for path in content_dir.iterdir()
        if path.suffix.lower() in EDITION_SUFFIXES
        and path.is_file()
        and not path.name.startswith(".")
    )


def load_site_editions(
    content_dir: Path,
    newsletter: Newsletter,
    *,
    now: datetime,
    state_dir: Path,
    drafts: bool,
) -> list[SiteEdition]:
    """Every edition of ``content_dir`` that goes on the site, newest first.

    Raises :class:`EditionError` with the problems of EVERY invalid file (one broken edition
    stops the publication: a site must not silently lose a page), and for two files of one slug.
    """
    editions: list[tuple[Edition, Path]] = []
    problems: list[Problem] = []
    for path in edition_files(content_dir):
        try:
            editions.append((load_edition(path, newsletter=newsletter), path))
        except ProblemsError as exc:
            problems += exc.problems
    problems += _slug_problems(editions)
    if problems:
        raise EditionError(problems, hint="fix the editions above, then publish again")

    finished = _finish_times(state_dir, [edition.slug for edition, _ in editions])
    chosen: list[SiteEdition] = []
    for edition, path in editions:
        due = edition.send_at is not None and edition.send_at <= now
        sent = finished.get(edition.slug)
        if due:
            chosen.append(SiteEdition(edition, path, draft=False, date=edition.send_at))
        elif sent is not None:
            chosen.append(SiteEdition(edition, path, draft=False, date=sent))
        elif drafts:
            chosen.append(SiteEdition(edition, path, draft=True, date=edition.send_at))
    # Newest first: undated drafts (the next ones), then by date, ties by slug.
    return sorted(chosen, key=lambda e: (e.date is None, e.date or _EPOCH, e.slug), reverse=True)


def _slug_problems(editions: Sequence[tuple[Edition, Path]]) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[str, Path] = {}
    for edition, path in editions:
        if edition.slug in RESERVED_SLUGS:
            problems.append(
                Problem(
                    str(path), None, None, "is a folder of the site itself; pick another", "slug"
                )
            )
        elif edition.slug in seen:
            problems.append(
                Problem(
                    str(path),
                    None,
                    None,
                    f"'{edition.slug}' is also the slug of {seen[edition.slug]}; each page needs "
                    "its own",
                    "slug",
                )
            )
        seen.setdefault(edition.slug, path)
    return problems


def _finish_times(state_dir: Path, slugs: Sequence[str]) -> dict[str, datetime]:
    """The end of each edition's first finished send, from the ledger (none: no state yet)."""
    if not database_path(state_dir).is_file():
        return {}  # never create a state folder just to read it
    times: dict[str, datetime] = {}
    with Ledger(state_dir) as ledger:
        for slug in slugs:
            if not ledger.is_finished(slug):
                continue
            ends = [
                run.finished_at
                for run in ledger.summary(slug).runs
                if run.outcome in _COMPLETED_OUTCOMES
            ]
            if ends:
                times[slug] = datetime.fromisoformat(min(ends))
    return times


__all__ = [
    "EDITION_SUFFIXES",
    "RESERVED_SLUGS",
    "SiteEdition",
    "edition_files",
    "load_site_editions",
]
