"""The newsletter's identity: ``digest.toml`` -> :class:`Newsletter` (contract §6).

The file sits beside ``content/`` (see :func:`newsletter_file_for`). It is optional: without it
everything works as before and the name comes from the edition's ``newsletter:`` key. Errors
read ``digest.toml:LINE:COL: key: message`` like edition errors. ``tomllib`` keeps no positions,
so a key's line is found by scanning the text for ``key =`` inside its table: enough for a file
of a dozen lines.
"""

from __future__ import annotations

import os
import re
import tomllib
from functools import partial
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from digest.errors import Problem, ProblemsError

NEWSLETTER_FILE = "digest.toml"
MAX_FILE_BYTES = 100_000
MIN_ACCENT_CONTRAST = 4.5  # WCAG AA for normal text: links in the accent colour must be legible

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_HEX_COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")


class NewsletterError(ProblemsError):
    """``digest.toml`` cannot be read or does not match the schema."""


def _plain(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("holds a control character; plain text must be one line")
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


def _url(value: str, *, https_only: bool) -> str:
    value = value.strip()
    parts = urlsplit(value)
    schemes = ("https",) if https_only else ("https", "http")
    if _CONTROL.search(value) or " " in value or parts.scheme not in schemes or not parts.netloc:
        wanted = "an https URL" if https_only else "an https or http URL"
        raise ValueError(f"must be {wanted}, e.g. https://clippings.example.org/")
    if parts.username or parts.password:
        raise ValueError("must not hold a user name or password")
    return value


def _site_url(value: str) -> str:
    value = _url(value, https_only=False)
    # Edition pages live at {site_url}<slug>/: the base must end with a slash to join cleanly.
    return value if value.endswith("/") else value + "/"


def contrast_ratio(foreground: str, background: str = "#ffffff") -> float:
    """WCAG 2 contrast ratio of two ``#rgb`` / ``#rrggbb`` colours (1.0 to 21.0)."""

    def luminance(colour: str) -> float:
        digits = colour.lstrip("#")
        if len(digits) == 3:
            digits = "".join(c * 2 for c in digits)
        channels = [int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    lighter, darker = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def _accent(value: str) -> str:
    value = value.strip()
    if not _HEX_COLOUR.match(value):
        raise ValueError('must be a hex colour such as "#0b57d0"')
    ratio = contrast_ratio(value)
    if ratio < MIN_ACCENT_CONTRAST:
        raise ValueError(
            f"{value} has a contrast of {ratio:.1f}:1 on white; links and rules need at least "
            f"{MIN_ACCENT_CONTRAST}:1 to be legible: pick a darker shade"
        )
    return value.lower()


PlainText = Annotated[str, Field(max_length=300), AfterValidator(_plain)]
SiteUrl = Annotated[str, Field(max_length=2000), AfterValidator(_site_url)]
WebUrl = Annotated[str, Field(max_length=2000), AfterValidator(partial(_url, https_only=False))]
HttpsUrl = Annotated[str, Field(max_length=2000), AfterValidator(partial(_url, https_only=True))]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Logo(_Strict):
    url: HttpsUrl  # mail clients block or warn on http images
    width: Annotated[int, Field(ge=16, le=600)]
    alt: PlainText


class Newsletter(_Strict):
    """Who publishes: shown in every masthead and footer, the archive and the feed."""

    name: PlainText
    description: Annotated[str, Field(max_length=500), AfterValidator(_plain)] | None = None
    site_url: SiteUrl | None = None
    lang: Annotated[str, Field(pattern=r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")] = "en"
    accent: Annotated[str, AfterValidator(_accent)] = "#0b57d0"
    logo: Logo | None = None
    postal_address: Annotated[str, Field(max_length=300), AfterValidator(_plain)] | None = None
    subscribe_url: WebUrl | None = None
    tagline: PlainText | None = None  # one line under the masthead (issue 12)

    def edition_url(self, slug: str) -> str | None:
        """The web address of edition ``slug`` (contract §6), when ``site_url`` is set."""
        return f"{self.site_url}{slug}/" if self.site_url else None


class _File(_Strict):
    newsletter: Newsletter


def load_newsletter(path: str | Path = NEWSLETTER_FILE) -> Newsletter:
    """Read and validate ``digest.toml``; raise :class:`NewsletterError` listing every problem."""
    shown = str(path)
    file = Path(path)
    try:
        data = file.read_bytes()[: MAX_FILE_BYTES + 1]
    except FileNotFoundError:
        raise _fail(shown, None, "no such file") from None
    except OSError as exc:
        raise _fail(shown, None, f"cannot be read: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise _fail(shown, None, f"is over {MAX_FILE_BYTES // 1000} KB; a newsletter file is tiny")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _fail(shown, None, "is not UTF-8; save the file as UTF-8") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = _TOML_POSITION.search(message)
        where = (int(found.group(1)), int(found.group(2))) if found else None
        raise _fail(shown, where, _TOML_POSITION.sub("", message).strip()) from None
    try:
        return _File.model_validate(raw).newsletter
    except ValidationError as exc:
        problems = [_problem(shown, text, error) for error in exc.errors()]
        raise NewsletterError(sorted(problems, key=lambda p: (p.line or 0, p.col or 0))) from None


def newsletter_file_for(edition_path: str | Path) -> Path | None:
    """The ``digest.toml`` that governs the edition at ``edition_path``: in the edition's own
    folder or the one above it (``content/2026-03.yaml`` -> ``./digest.toml``), else None.

    Found from the edition, not from the working folder, so that an edition is read the same
    way whatever folder a command runs in (and a stray file elsewhere changes nothing)."""
    folder = Path(edition_path).parent
    for candidate in (folder / NEWSLETTER_FILE, folder.parent / NEWSLETTER_FILE):
        if candidate.is_file():
            return candidate
    return None


def find_newsletter(edition_path: str | Path) -> Newsletter | None:
    """The newsletter of the edition at ``edition_path`` (see :func:`newsletter_file_for`), or
    None when there is no ``digest.toml``."""
    file = newsletter_file_for(edition_path)
    return load_newsletter(os.path.normpath(file)) if file is not None else None


def _fail(path: str, where: tuple[int, int] | None, message: str) -> NewsletterError:
    line, col = where if where else (None, None)
    return NewsletterError([Problem(path, line, col, message)])


def _problem(path: str, text: str, error: Any) -> Problem:
    loc = tuple(str(part) for part in error["loc"])
    keys = loc[1:] if loc and loc[0] == "newsletter" else loc
    field = ".".join(keys) or None
    line, col = _position(text, keys)
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = f"unknown key '{keys[-1]}'"
    elif error["type"] == "missing":
        message = "is required"
        if not keys or keys == ("name",):
            field = "name"
            message = 'is required: add `name = "Your newsletter"` under [newsletter]'
    elif error["type"].endswith("_type"):
        message = f"{message} (TOML strings are in quotes)"
    return Problem(path, line, col, message, field)


def _position(text: str, keys: tuple[str, ...]) -> tuple[int | None, int | None]:
    """The line and column of ``keys`` (e.g. ("logo", "url")) in the [newsletter] table; falls
    back to the nearest enclosing key, then to the table's header."""
    lines = text.splitlines()
    table_line = next(
        (i for i, line in enumerate(lines) if re.match(r"^\s*\[\s*newsletter\s*\]", line)), None
    )
    if table_line is None:
        return (1, 1) if lines else (None, None)
    while keys:
        for name in (keys[0], ".".join(keys)):
            pattern = re.compile(rf"^\s*{re.escape(name)}\s*=\s*")
            for i in range(table_line + 1, len(lines)):
                if re.match(r"^\s*\[", lines[i]):
                    break
                found = pattern.match(lines[i])
                if found:
                    if len(keys) > 1:
                        inner = re.search(rf"\b{re.escape(keys[-1])}\s*=\s*", lines[i])
                        if inner:
                            return i + 1, inner.end() + 1
                    return i + 1, found.end() + 1
        keys = keys[:-1] if len(keys) > 1 else ()
    return table_line + 1, 1


__all__ = [
    "NEWSLETTER_FILE",
    "Logo",
    "Newsletter",
    "NewsletterError",
    "contrast_ratio",
    "find_newsletter",
    "load_newsletter",
    "newsletter_file_for",
]
