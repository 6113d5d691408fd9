"""Rendering: an edition becomes HTML and text once, then is filled per recipient.

``render_edition`` and ``RenderedEdition`` live in :mod:`digest.render.email`; they are reachable
from here too, loaded on first use so that importing :mod:`digest.render.merge` alone stays light
(no Jinja, MJML or premailer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from digest.render.email import RenderedEdition, render_edition

__all__ = ["RenderedEdition", "render_edition"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from digest.render import email

        return getattr(email, name)
    raise AttributeError(f"module 'digest.render' has no attribute {name!r}")
