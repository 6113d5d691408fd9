"""The email as the preview frame shows it: light or dark, links opening in a new tab.

Dark mode is shown by rewriting the email's own ``@media (prefers-color-scheme: dark)`` rules so
they apply (dark) or never apply (light), whatever the curator's system setting. The rewrite only
touches ``<style>`` blocks: edition content is escaped text and can never open one.
"""

from __future__ import annotations

import re
from typing import Literal

Scheme = Literal["light", "dark"]


_STYLE_BLOCK = re.compile(r"(<style\b[^>]*>)(.*?)(</style\s*>)", re.IGNORECASE | re.DOTALL)
_DARK_QUERY = re.compile(r"\(\s*prefers-color-scheme\s*:\s*dark\s*\)", re.IGNORECASE)
_LIGHT_QUERY = re.compile(r"\(\s*prefers-color-scheme\s*:\s*light\s*\)", re.IGNORECASE)
_COLOR_SCHEME_META = re.compile(
    r"<meta\b[^>]*\bname\s*=\s*[\"']?color-scheme[\"']?[^>]*>", re.IGNORECASE
)
_HEAD_OPEN = re.compile(r"<head\b[^>]*>", re.IGNORECASE)
_HEAD_CLOSE = re.compile(r"</head\s*>", re.IGNORECASE)
# Always true / never true media features, so the rule blocks keep their other conditions.
_ALWAYS = "(min-width: 0px)"
_NEVER = "(max-width: 0px)"


def _rewrite_styles(html: str, scheme: Scheme) -> str:
    dark, light = (_ALWAYS, _NEVER) if scheme == "dark" else (_NEVER, _ALWAYS)

    def rewrite(match: re.Match[str]) -> str:
        css = _DARK_QUERY.sub(dark, match.group(2))
        css = _LIGHT_QUERY.sub(light, css)
        return match.group(1) + css + match.group(3)

    return _STYLE_BLOCK.sub(rewrite, html)


def email_for_frame(html: str, scheme: Scheme) -> str:
    """The filled email HTML, with its dark rules forced on or off and links opening outside."""
    html = _rewrite_styles(html, scheme)
    declares_dark = any("dark" in m.group(0).lower() for m in _COLOR_SCHEME_META.finditer(html))
    if declares_dark:
        # The email says it supports dark, so a client's own defaults (canvas, form controls,
        # unstyled text) follow the chosen scheme too. Last in <head>, so it beats the email's
        # own `color-scheme: light dark`.
        style = f"<style>:root{{color-scheme:{scheme} !important}}</style>"
        head_end = _HEAD_CLOSE.search(html)
        if head_end:
            html = html[: head_end.start()] + style + html[head_end.start() :]
        else:
            html = style + html
    base = '<base target="_blank">'
    head = _HEAD_OPEN.search(html)
    if head:
        return html[: head.end()] + base + html[head.end() :]
    return base + html
