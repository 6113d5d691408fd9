"""The edition schema (contract §1) as pydantic v2 models.

Models know nothing of YAML or positions: :mod:`digest.edition.load` maps each pydantic error's
``loc`` back to the line and column of the YAML node.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.types import AwareDatetime

from digest.edition.markdown import check_markdown

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]*$"
# BCP 47, loosely: a 2-3 letter (or 4-8) primary subtag and alphanumeric subtags of 1-8.
LANG_PATTERN = r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$"
# C0/C1 controls, line separators and the noncharacters U+FFFE/U+FFFF (which MJML, as XML, refuses).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ufffe\uffff]")


def _plain_text(value: str) -> str:
    """Plain-text fields end up in headers and titles: no control characters, not blank."""
    if _CONTROL.search(value):
        char = _CONTROL.search(value).group()  # type: ignore[union-attr]
        raise ValueError(f"holds a control character ({char!r}); plain text must be one line")
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


def _web_url(value: str) -> str:
    value = value.strip()
    if _CONTROL.search(value) or " " in value:
        raise ValueError("must be an https or http URL without spaces or control characters")
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an https or http URL")
    return value


def _markdown(value: str) -> str:
    return check_markdown(value)


PlainText = Annotated[str, Field(max_length=300), AfterValidator(_plain_text)]
LongPlainText = Annotated[str, Field(max_length=500), AfterValidator(_plain_text)]
WebUrl = Annotated[str, Field(max_length=2000), AfterValidator(_web_url)]
Markdown = Annotated[str, Field(max_length=20_000), AfterValidator(_markdown)]


class _Strict(BaseModel):
    # extra="forbid": a typo in a key must be an error, never vanish silently.
    # strict: YAML `title: 2026` is an int; say so rather than coerce surprises.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Link(_Strict):
    label: PlainText
    url: WebUrl


class Item(_Strict):
    title: LongPlainText
    url: WebUrl
    summary: Markdown | None = None
    source: PlainText | None = None
    links: list[Link] = Field(default_factory=list)


class Group(_Strict):
    title: PlainText
    items: list[Item] = Field(min_length=1)


class Section(_Strict):
    title: PlainText
    # full: title, kicker, summary, links. compact: a dense link round-up (title + source).
    layout: Literal["full", "compact"] = "full"
    intro: Markdown | None = None
    items: list[Item] = Field(default_factory=list)
    groups: list[Group] = Field(default_factory=list)

    @model_validator(mode="after")
    def _has_an_item(self) -> Section:
        if not self.items and not self.groups:
            raise ValueError("a section needs at least one item (under `items` or `groups`)")
        return self

    def all_items(self) -> list[Item]:
        return [*self.items, *(item for group in self.groups for item in group.items)]


class Highlight(_Strict):
    title: LongPlainText
    url: WebUrl | None = None
    body: Markdown
    links: list[Link] = Field(default_factory=list)


class Edition(_Strict):
    # Optional when digest.toml names the newsletter; load_edition fills it in from there.
    newsletter: PlainText | None = None
    edition: PlainText
    # The issue number shown in the masthead. Default (set by load_edition): the file's place
    # among the editions of its folder, oldest first; a newsletter older than its digest
    # folder writes its own.
    number: Annotated[int, Field(ge=1, le=100_000)] | None = None
    slug: Annotated[str, Field(pattern=SLUG_PATTERN, max_length=100)]
    subject: LongPlainText
    preheader: LongPlainText | None = None
    lang: Annotated[str, Field(pattern=LANG_PATTERN)] = "en"
    # Not strict: a quoted ISO 8601 string is as good as YAML's own timestamp.
    send_at: Annotated[AwareDatetime | None, Field(strict=False)] = None
    intro: Markdown | None = None
    highlights: list[Highlight] = Field(default_factory=list)
    sections: list[Section] = Field(min_length=1)
    outro: Markdown | None = None

    def all_items(self) -> list[Item]:
        return [item for section in self.sections for item in section.all_items()]


__all__ = ["Edition", "Group", "Highlight", "Item", "Link", "Section"]
