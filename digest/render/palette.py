"""The email's colours that follow the newsletter's accent (digest.toml ``accent``).

The accent is checked for 4.5:1 on white when digest.toml is read; on the dark-mode backgrounds
the same colour is usually illegible (a dark blue on near-black), so dark mode gets a lighter
shade of it: the accent mixed with white, step by step, until it reads well on the lightest dark
background the email uses (the highlight box).
"""

from __future__ import annotations

from digest.newsletter import contrast_ratio

# The dark palette's backgrounds (kept in step with the dark-mode rules of email.mjml.j2).
DARK_PAGE = "#0d1117"
DARK_CARD = "#161b22"
DARK_BOX = "#1f2630"  # the lightest of the three: a colour legible on it is legible on all
DARK_MIN_CONTRAST = 6.0  # above WCAG's 4.5:1, so small link text in dark mode stays crisp


def mix_with_white(colour: str, share: float) -> str:
    """``colour`` (``#rrggbb`` or ``#rgb``) with ``share`` (0..1) of white mixed in."""
    digits = colour.lstrip("#")
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    channels = [int(digits[i : i + 2], 16) for i in (0, 2, 4)]
    return "#" + "".join(f"{round(c + (255 - c) * share):02x}" for c in channels)


def dark_accent(accent: str) -> str:
    """The lightest-needed shade of ``accent`` with at least ``DARK_MIN_CONTRAST`` on
    ``DARK_BOX``: the link and rule colour of dark mode."""
    for step in range(101):
        shade = mix_with_white(accent, step / 100)
        if contrast_ratio(shade, DARK_BOX) >= DARK_MIN_CONTRAST:
            return shade
    return "#ffffff"


__all__ = ["DARK_BOX", "DARK_CARD", "DARK_MIN_CONTRAST", "DARK_PAGE", "dark_accent"]
