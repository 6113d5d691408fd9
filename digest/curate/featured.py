"""Which links an edition folder has featured already, so a link is not sent twice.

Earlier editions are read leniently (a plain YAML load, no validation): an old edition with a
problem must not stop today's work, and a file that is not YAML at all is passed over.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from digest.curate.urls import normalise

EDITION_SUFFIXES = (".yaml", ".yml")
_MAX_BYTES = 1_000_000  # the edition loader's own limit
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def edition_files(folder: Path) -> list[Path]:
    """The edition files of ``folder``, oldest first (names are slugs such as 2026-03)."""
    try:
        files = [
            path for path in folder.iterdir() if path.suffix in EDITION_SUFFIXES and path.is_file()
        ]
    except OSError:
        return []
    return sorted(files, key=lambda path: path.name)


def read_leniently(path: Path) -> dict[str, Any] | None:
    """The YAML mapping of ``path``, or None when it cannot be read as one."""
    try:
        if path.stat().st_size > _MAX_BYTES:
            return None
        data = yaml.load(path.read_text(encoding="utf-8-sig"), Loader=_Loader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def slug_of(path: Path, data: dict[str, Any] | None) -> str:
    slug = (data or {}).get("slug")
    return str(slug) if isinstance(slug, str | int) and str(slug) else path.stem


def featured_urls(data: dict[str, Any]) -> Iterator[str]:
    """The address of every item and highlight of a leniently read edition."""
    for highlight in _mappings(data.get("highlights")):
        if isinstance(highlight.get("url"), str):
            yield highlight["url"]
    for section in _mappings(data.get("sections")):
        containers = [section, *_mappings(section.get("groups"))]
        for container in containers:
            for item in _mappings(container.get("items")):
                if isinstance(item.get("url"), str):
                    yield item["url"]


def _mappings(value: object) -> list[dict[str, Any]]:
    return [entry for entry in value if isinstance(entry, dict)] if isinstance(value, list) else []


def featured_before(edition: Path) -> dict[str, str]:
    """Normalised address -> slug of the edition that featured it, over ``edition`` itself and
    every edition of its folder whose name sorts before it (the earlier ones)."""
    seen: dict[str, str] = {}
    for path in edition_files(edition.parent):
        if path.name > edition.name and path.resolve() != edition.resolve():
            continue
        data = read_leniently(path)
        if data is None:
            continue
        slug = slug_of(path, data)
        for url in featured_urls(data):
            seen.setdefault(normalise(url), slug)
    return seen


__all__ = ["edition_files", "featured_before", "featured_urls", "read_leniently", "slug_of"]
