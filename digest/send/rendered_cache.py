"""The rendered edition, kept in the state folder so a rerun (or ``--due``) does not render again.

Rendering (Jinja2 -> MJML -> premailer) and importing what renders cost about 0.25 s of every
send; a resumed run, a ``--limit`` run or a scheduled retry renders the very same edition. The
result (two merge templates, the warnings, the sample size) is stored as JSON in
``<DIGEST_STATE_DIR>/rendered/<slug>.json`` (0600, written atomically by :mod:`digest.files`)
with the key it was made from: a BLAKE2b hash of
everything that shapes it (the edition file, its ``digest.toml``, every template file, the
render code itself, the archive link setting). Any change gives another key, and the edition is
rendered again; a cache file that is unreadable, or of another key, is simply ignored. JSON, not
pickle: a file in the state folder must never be able to run code.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from digest.files import private_folder, write_file_atomically
from digest.newsletter import newsletter_file_for

if TYPE_CHECKING:
    from digest.edition.model import Edition
    from digest.render.result import RenderedEdition

FOLDER = "rendered"
_FORMAT = 1
_CODE = Path(__file__).resolve().parents[1]  # the digest package
# The code a rendered edition depends on: if any of it changes, nothing cached is reused.
_CODE_FILES = ("render", "edition/markdown.py", "edition/model.py", "newsletter.py")


def cache_key(
    edition_path: Path, templates_dir: Path, archive_url: str | None, number: int | None = None
) -> str:
    """The hash of everything that shapes the rendered edition (the issue number too: it comes
    from the folder when the file names none)."""
    digest = hashlib.blake2b(digest_size=20)

    def add(label: str, data: bytes) -> None:
        digest.update(f"{label}\0{len(data)}\0".encode())
        digest.update(data)

    add("format", str(_FORMAT).encode())
    add("edition", Path(edition_path).read_bytes())
    newsletter = newsletter_file_for(edition_path)
    add("newsletter", Path(newsletter).read_bytes() if newsletter else b"")
    add("archive_url", (archive_url or "").encode())
    add("number", str(number).encode())
    for base, folder in (("templates", templates_dir), ("code", _CODE)):
        names = _CODE_FILES if base == "code" else (".",)
        for name in names:
            root = folder / name
            files = sorted(root.rglob("*")) if root.is_dir() else [root]
            for file in files:
                if file.is_file() and "__pycache__" not in file.parts:
                    add(f"{base}:{file.relative_to(folder)}", file.read_bytes())
    return digest.hexdigest()


def rendered_edition(
    edition: Edition,
    edition_path: Path,
    state_dir: Path,
    *,
    archive_url: str | None,
    render: Callable[[], RenderedEdition],
    templates_dir: Callable[[], Path],
    store: bool,
) -> RenderedEdition:
    """``render()``'s result, from the cache when the key matches; stored after a render when
    ``store`` (a real send: it may create the state folder; a dry run never does)."""
    try:
        key = cache_key(edition_path, templates_dir(), archive_url, edition.number)
    except OSError:
        return render()  # a file vanished while hashing: render, and cache nothing
    path = state_dir / FOLDER / f"{edition.slug}.json"
    cached = _load(path, key, edition)
    if cached is not None:
        return cached
    rendered = render()
    if store:
        with contextlib.suppress(OSError):  # a cache that cannot be written costs a render
            _store(path, key, rendered)
    return rendered


def _load(path: Path, key: str, edition: Edition) -> RenderedEdition | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("key") != key:
        return None
    from digest.render.merge import MergeTemplate, escape_html, escape_text
    from digest.render.result import RenderedEdition

    try:
        html = MergeTemplate(
            tuple(data["html"]["literals"]), tuple(data["html"]["slots"]), escape_html
        )
        text = MergeTemplate(
            tuple(data["text"]["literals"]), tuple(data["text"]["slots"]), escape_text
        )
        if len(html.literals) != len(html.slots) + 1 or len(text.literals) != len(text.slots) + 1:
            return None
        return RenderedEdition(
            edition=edition,
            html=html,
            text=text,
            html_bytes=int(data["html_bytes"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


def _store(path: Path, key: str, rendered: RenderedEdition) -> None:
    data: dict[str, Any] = {
        "key": key,
        "html": {"literals": rendered.html.literals, "slots": rendered.html.slots},
        "text": {"literals": rendered.text.literals, "slots": rendered.text.slots},
        "html_bytes": rendered.html_bytes,
    }
    private_folder(path.parent.parent)  # the state folder itself, when this is the first write
    private_folder(path.parent)
    write_file_atomically(path, json.dumps(data, ensure_ascii=False).encode("utf-8"))
