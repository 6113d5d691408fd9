"""Provider placeholders: text a sending provider would fill in on its own, and how content is
kept from being one.

Mailgun's batch sending substitutes ``%recipient.x%`` (and its ``%unsubscribe_url%``-style
variables) in bodies, subject and headers. Content is never a template: the renderer neutralises
such text in what it writes, and the Mailgun backend again in what it sends, both with the one
pattern below, so the two can never disagree about what counts.
"""

from __future__ import annotations

import re

PROVIDER_PLACEHOLDER = re.compile(
    r"%(?=recipient|(?:mailing_list_|tag_)?unsubscribe_url%)", re.IGNORECASE
)


def neutralise_html(html: str) -> str:
    """The ``%`` of such text written ``&#37;``: a mail client shows "%", the provider sees
    nothing to fill. (Apply after CSS inlining, which would decode the entity again.)"""
    return PROVIDER_PLACEHOLDER.sub("&#37;", html)


def neutralise_text(text: str) -> str:
    """A zero-width space after the ``%``: visible to the reader as it was, unrecognisable to
    the provider."""
    return PROVIDER_PLACEHOLDER.sub("%\u200b", text)


def holds_placeholder(text: str) -> bool:
    return PROVIDER_PLACEHOLDER.search(text) is not None
