"""The use-case of ``digest publish``: content + ``digest.toml`` + ledger -> a static site.

The site is built in a new folder beside ``out_dir`` and swapped into place only when every
file is written: an invalid edition, a broken template or a full disk leaves the last good site
as it was. Output is deterministic (sorted, no time of the build anywhere, fixed file modes),
so a site kept in git only changes when the content does.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from digest.errors import ConfigError, DigestError
from digest.newsletter import NEWSLETTER_FILE, Newsletter, load_newsletter, newsletter_file_for
from digest.render.web import FEED_FILE, render_web_edition
from digest.site.editions import SiteEdition, load_site_editions
from digest.site.feed import FEED_SIZE, render_feed
from digest.site.index import render_index
from digest.site.sitemap import render_sitemap

MARKER_FILE = (
    ".digest-site"  # says "digest publish owns this folder": only such a folder is replaced
)
_MARKER_TEXT = b"This folder is written by `digest publish`; every publish replaces it whole.\n"
INDEX_FILE = "index.html"
LATEST_FOLDER = "latest"
SITEMAP_FILE = "sitemap.xml"
_SITE_URL_EXAMPLE = 'site_url = "https://newsletter.example.org/"'


@dataclass(frozen=True)
class PublishedSite:
    """What a publish wrote: the folder, the editions (newest first), file count and size."""

    out_dir: Path
    editions: tuple[SiteEdition, ...]
    files: int
    size: int

    @property
    def published(self) -> list[str]:
        return [item.slug for item in self.editions if not item.draft]

    @property
    def drafts(self) -> list[str]:
        return [item.slug for item in self.editions if item.draft]


def site_newsletter(content_dir: Path) -> tuple[Newsletter, str]:
    """The newsletter of ``content_dir`` and its ``site_url``; a :class:`ConfigError` whose hint
    is the line to add when there is no ``digest.toml`` or no ``site_url`` in it."""
    file = newsletter_file_for(content_dir / "edition.yaml")
    if file is None:
        raise ConfigError(
            f"no {NEWSLETTER_FILE} beside {content_dir}: the site needs the newsletter's name "
            "and site_url",
            hint=f'create {NEWSLETTER_FILE} with:  [newsletter]  name = "Your newsletter"  '
            f"{_SITE_URL_EXAMPLE}",
        )
    shown = os.path.normpath(file)
    newsletter = load_newsletter(shown)
    if newsletter.site_url is None:
        raise ConfigError(
            f"{shown}: site_url is not set: the pages, the feed and the sitemap need the "
            "address where the site is served",
            hint=f"add this line under [newsletter] in {shown}:  {_SITE_URL_EXAMPLE}",
        )
    return newsletter, newsletter.site_url


def publish_site(
    content_dir: Path,
    out_dir: Path,
    *,
    now: datetime,
    state_dir: Path,
    drafts: bool = False,
    templates_dir: Path | None = None,
) -> PublishedSite:
    """Write the site of ``content_dir`` into ``out_dir`` (replacing it whole); see the module
    docstring. ``now`` decides which editions are published; it is written nowhere."""
    if not content_dir.is_dir():
        raise DigestError(
            f"{content_dir}: no such folder of editions",
            hint="digest publish CONTENT_DIR, e.g. digest publish content",
        )
    _check_out_dir(content_dir, out_dir)
    newsletter, site_url = site_newsletter(content_dir)
    editions = load_site_editions(
        content_dir, newsletter, now=now, state_dir=state_dir, drafts=drafts
    )

    files: dict[str, bytes] = {MARKER_FILE: _MARKER_TEXT}
    published = [item for item in editions if not item.draft]
    in_feed = {item.slug for item in published[:FEED_SIZE]}
    feed_items: list[tuple[SiteEdition, str]] = []
    for item in editions:
        page = render_web_edition(
            item.edition,
            newsletter,
            draft=item.draft,
            templates_dir=templates_dir,
            feed_content=item.slug in in_feed,
        )
        files[f"{item.slug}/{INDEX_FILE}"] = page.html.encode("utf-8")
        if page.feed_content is not None:
            feed_items.append((item, page.feed_content))
    if published:
        # A copy, not a redirect: works on every host; its canonical URL names the edition.
        files[f"{LATEST_FOLDER}/{INDEX_FILE}"] = files[f"{published[0].slug}/{INDEX_FILE}"]
    files[INDEX_FILE] = render_index(newsletter, editions).encode("utf-8")
    files[FEED_FILE] = render_feed(newsletter, feed_items, site_url=site_url)
    files[SITEMAP_FILE] = render_sitemap(site_url, editions)

    _write_site(out_dir, files)
    return PublishedSite(
        out_dir=out_dir,
        editions=tuple(editions),
        files=len(files),
        size=sum(len(data) for data in files.values()),
    )


def _check_out_dir(content_dir: Path, out_dir: Path) -> None:
    """Refuse a folder that a publish would wreck: the content's own, or one it did not write."""
    out, content = out_dir.resolve(), content_dir.resolve()
    if out == content or out in content.parents or out == Path.cwd().resolve():
        raise DigestError(
            f"--out {out_dir} would replace the folder holding the content; "
            "the site needs a folder of its own",
            hint="digest publish --out site",
        )
    if out_dir.exists() and not out_dir.is_dir():
        raise DigestError(f"--out {out_dir} is a file, not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / MARKER_FILE).is_file():
        raise DigestError(
            f"--out {out_dir} holds files that digest publish did not write "
            f"(no {MARKER_FILE} file); a publish replaces the whole folder",
            hint="empty or remove it, or choose another --out folder",
        )


def _write_site(out_dir: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` into a new folder beside ``out_dir``, then swap it into place."""
    parent = out_dir.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with _temporary_folder(parent, out_dir.name) as building:
            for name in sorted(files):
                target = building / name
                target.parent.mkdir(mode=0o755, exist_ok=True)
                target.write_bytes(files[name])
                target.chmod(0o644)
            building.chmod(0o755)  # mkdtemp makes it 0700: a web server must read it
            _swap(building, out_dir.resolve())
    except OSError as exc:
        raise DigestError(
            f"cannot write the site to {out_dir}: {exc.strerror or exc}; "
            "the previous site is unchanged"
        ) from None


@contextmanager
def _temporary_folder(parent: Path, name: str) -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(dir=parent, prefix=f".{name}.new-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # gone already after a successful swap


def _swap(new: Path, out: Path) -> None:
    """Put ``new`` in the place of ``out``. The old site is moved aside first and removed only
    once the new one is in place; a failure in between moves it back."""
    if not out.exists():
        new.rename(out)
        return
    old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
    old.rmdir()
    out.rename(old)
    try:
        new.rename(out)
    except OSError:
        old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)


__all__ = [
    "INDEX_FILE",
    "LATEST_FOLDER",
    "MARKER_FILE",
    "SITEMAP_FILE",
    "PublishedSite",
    "publish_site",
    "site_newsletter",
]
