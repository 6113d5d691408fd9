"""What rendering an edition gives: a module of its own, light (no Jinja, MJML or premailer), so
the send's rendered-edition cache can rebuild one without importing the renderer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from digest.edition.model import Edition
    from digest.render.merge import MergeTemplate


class RenderWarning(str):
    """A warning's text, tagged with what it is about (``size``, ``subject`` or ``preheader``),
    so a viewer that checks the same thing itself (the preview's checks panel) shows it once."""

    topic: str

    def __new__(cls, text: str, topic: str) -> RenderWarning:
        warning = super().__new__(cls, text)
        warning.topic = topic
        return warning


@dataclass(frozen=True)
class RenderedEdition:
    """An edition rendered once; ``html`` and ``text`` are filled per recipient."""

    edition: Edition
    html: MergeTemplate
    text: MergeTemplate
    warnings: tuple[str, ...]
    html_bytes: int  # size of the HTML filled with the sample subscriber's values
