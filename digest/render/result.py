"""What rendering an edition gives: a module of its own, light (no Jinja, MJML or premailer), so
the send's rendered-edition cache can rebuild one without importing the renderer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from digest.edition.model import Edition
    from digest.render.merge import MergeTemplate


@dataclass(frozen=True)
class RenderedEdition:
    """An edition rendered once; ``html`` and ``text`` are filled per recipient."""

    edition: Edition
    html: MergeTemplate
    text: MergeTemplate
    html_bytes: int  # size of the HTML filled with the sample subscriber's values
