"""Parse mail from outside (a bounce mailbox) within fixed limits: size, parts and nesting.

Python's ``email`` parser descends one Python frame (and a compiled regular expression) per
``multipart/*`` or ``message/*`` level, so one crafted message of a thousand nested
``multipart/mixed`` parts ends in ``RecursionError``; a few megabytes of tiny parts cost a Message
object each. Before the parser sees a message, a linear scan of its bytes bounds both:

* every ``Content-Type: multipart/...`` or ``message/...`` anywhere in the bytes counts as a
  container (in a body too: an over-count only refuses more). The parser cannot nest deeper than
  twice that count (a ``multipart/digest`` part is a ``message/rfc822`` by default);
* every line starting with ``--`` counts as a possible boundary, so a part.

Once parsed (safely, within those bounds), the real depth is measured without recursion. A
message over any limit raises :class:`RefusedMail` naming the limit; the caller skips it with a
note and reads on. A delivery report is a few kilobytes with three or four parts; the limits are
far above any real one.
"""

from __future__ import annotations

import re
from email import message_from_bytes
from email.message import Message
from email.policy import compat32

MAX_MESSAGE_BYTES = 5 * 1024 * 1024  # a report quoting a whole newsletter is ~200 KB
MAX_CONTAINERS = 64  # multipart/* and message/* declarations in one message
MAX_DEPTH = 12  # levels of parts inside parts
MAX_PARTS = 1_000  # lines that may open a part (start with "--")

_CONTAINER = re.compile(rb"content-type:\s*(?:multipart|message)/", re.IGNORECASE)
_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(<[\x21-\x7e]{1,200}?>)", re.IGNORECASE | re.M)


class RefusedMail(Exception):
    """A message outside the limits; ``str()`` says which limit, for the curator's note."""


def parse_untrusted_mail(raw: bytes) -> Message:
    """``raw`` parsed (compat32 policy), or :class:`RefusedMail` when it passes a limit."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise RefusedMail(f"larger than {MAX_MESSAGE_BYTES // (1024 * 1024)} MB")
    containers = len(_CONTAINER.findall(raw))
    if containers > MAX_CONTAINERS:
        raise RefusedMail(
            f"{containers} multipart or message parts (at most {MAX_CONTAINERS}), "
            "as no delivery report has"
        )
    boundaries = raw.count(b"\n--") + raw.startswith(b"--")
    if boundaries > MAX_PARTS:
        raise RefusedMail(f"{boundaries} part boundaries (at most {MAX_PARTS})")
    message = message_from_bytes(raw, policy=compat32)
    depth = nesting_depth(message)
    if depth > MAX_DEPTH:
        raise RefusedMail(f"parts nested {depth} levels deep (at most {MAX_DEPTH})")
    return message


def nesting_depth(message: Message) -> int:
    """How many levels of parts ``message`` holds (1: not multipart), counted with a stack."""
    deepest = 0
    stack: list[tuple[Message, int]] = [(message, 1)]
    while stack:
        part, depth = stack.pop()
        deepest = max(deepest, depth)
        payload = part.get_payload()
        if isinstance(payload, list):
            stack.extend((child, depth + 1) for child in payload if isinstance(child, Message))
    return deepest


def message_label(raw: bytes) -> str | None:
    """The Message-ID of ``raw``, read from its bytes without parsing it (for a note)."""
    head = raw[:65536]
    ends = [i for i in (head.find(b"\n\n"), head.find(b"\r\n\r\n")) if i >= 0]
    match = _MESSAGE_ID.search(head[: min(ends)] if ends else head)
    return match.group(1).decode("ascii") if match else None
