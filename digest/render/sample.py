"""The sample subscriber that `digest build` and `digest preview` fill in.

The built file is what an inbox would show: every link in it is a real https or mailto link. With
``DIGEST_UNSUBSCRIBE_URL`` and ``DIGEST_SECRET`` set, the unsubscribe link carries a genuine signed
token for the sample address (so the endpoint can be tried with it); else the mailto, else a
harmless https placeholder.
"""

from __future__ import annotations

from digest.settings import Settings
from digest.tokens import fill_url, make_token

SAMPLE_EMAIL = "reader@example.org"
SAMPLE_NAME = "Sample Reader"
PLACEHOLDER_UNSUBSCRIBE_URL = "https://example.org/unsubscribe?token=sample"


def sample_unsubscribe_url(settings: Settings, slug: str) -> str:
    if settings.unsubscribe_url and settings.secret is not None:
        token = make_token(settings.secret.get_secret_value(), SAMPLE_EMAIL, slug)
        return fill_url(settings.unsubscribe_url, token)
    if settings.unsubscribe_mailto:
        return settings.unsubscribe_mailto
    return PLACEHOLDER_UNSUBSCRIBE_URL


def sample_values(settings: Settings, slug: str) -> dict[str, str]:
    """Slot values (see :mod:`digest.render.merge`) of the sample subscriber for ``slug``."""
    return {
        "email": SAMPLE_EMAIL,
        "name": SAMPLE_NAME,
        "unsubscribe_url": sample_unsubscribe_url(settings, slug),
    }


__all__ = ["SAMPLE_EMAIL", "SAMPLE_NAME", "sample_unsubscribe_url", "sample_values"]
