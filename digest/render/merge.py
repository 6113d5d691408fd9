"""Render once, fill per recipient.

The edition goes through Jinja2 -> MJML -> premailer once. Where a template asks for a
per-recipient value (``{{ recipient.name }}``, ``{{ unsubscribe_url }}``) it gets a *slot marker*:
a string of ASCII letters and digits holding a random nonce, which survives MJML, premailer and
URL contexts untouched and which no content can guess. The finished output is split at the markers
into a :class:`MergeTemplate`; filling it for one recipient is a join, never a re-render.

Slot names are the keys of the ``values`` mapping handed to :meth:`MergeTemplate.fill`:
``email``, ``name``, ``unsubscribe_url`` and ``field:<column>`` for any other CSV column.
"""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass
class SlotMarkers:
    """Hands out one marker per slot name during a render; knows how to find them afterwards."""

    nonce: str = field(default_factory=lambda: secrets.token_hex(8))
    names: list[str] = field(default_factory=list)

    def marker(self, name: str) -> str:
        if name not in self.names:
            self.names.append(name)
        return f"zzslot{self.nonce}n{self.names.index(name)}zz"

    def pattern(self) -> re.Pattern[str]:
        return re.compile(rf"zzslot{self.nonce}n(\d+)zz")

    def compile(self, rendered: str, *, escape: Callable[[str], str]) -> MergeTemplate:
        pieces = self.pattern().split(rendered)
        literals = tuple(pieces[0::2])
        slots = tuple(self.names[int(i)] for i in pieces[1::2])
        return MergeTemplate(literals=literals, slots=slots, escape=escape)


def escape_html(value: str) -> str:
    return html.escape(value, quote=True)


def escape_text(value: str) -> str:
    return value


@dataclass(frozen=True)
class MergeTemplate:
    """Literal text with slots between; ``literals`` has one more element than ``slots``."""

    literals: tuple[str, ...]
    slots: tuple[str, ...]
    escape: Callable[[str], str] = escape_text

    @property
    def slot_names(self) -> frozenset[str]:
        return frozenset(self.slots)

    def fill(self, values: Mapping[str, str], *, raw: bool = False) -> str:
        """The text for one recipient. Missing slots fill with "". ``raw`` skips escaping (for
        provider-side placeholders such as Mailgun's ``%recipient.x%``)."""
        escape = (lambda v: v) if raw else self.escape
        out = [self.literals[0]]
        for slot, literal in zip(self.slots, self.literals[1:], strict=True):
            out.append(escape(values.get(slot, "")))
            out.append(literal)
        return "".join(out)

    def size_with(self, values: Mapping[str, str]) -> int:
        """UTF-8 size of the filled text."""
        return len(self.fill(values).encode("utf-8"))
