"""What an SMTP reply says about a recipient: the one rule the engine uses to read refusals.

A backend reports a refusal as the server's reply text, ``"550 5.1.1 <ada@example.org>: user
unknown"``. Two kinds matter beyond "temporary" and "permanent":

* **the address does not exist** (RFC 3463 ``5.1.1`` bad mailbox, ``5.1.2`` bad domain,
  ``5.1.10`` null MX; or a 550/553 whose text says so): mailing it again can only hurt the
  sender's reputation, so it is suppressed at once;
* **throttling** (``421``, ``450``, ``451`` or any ``4.7.x``): the server asks us to slow down,
  which says nothing about the recipient; the run slows down and retries for ``--max-retry-time``
  instead of counting attempts.

Anything else keeps its plain meaning: 4xx retried a bounded number of times, 5xx failed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_REPLY = re.compile(r"^\s*([2-5]\d\d)(?:[ -]+([245])\.(\d{1,3})\.(\d{1,3})\b)?")
_ENHANCED_ANYWHERE = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_UNKNOWN_USER_STATUSES = frozenset({"5.1.1", "5.1.2", "5.1.10"})
_THROTTLING_CODES = frozenset({421, 450, 451})
# How servers word "no such mailbox" when they give no enhanced code (Exim, Sendmail, Exchange,
# qmail, Gmail...). Only with a 550 or 553: a 554 "does not exist" may be about a relay.
_UNKNOWN_USER_TEXT = re.compile(
    r"user unknown|unknown user|no such (?:user|mailbox|recipient|address)|unknown recipient"
    r"|recipient unknown|mailbox not found"
    r"|(?:user|mailbox|address|recipient|account) (?:does not|doesn't) exist"
    r"|invalid (?:recipient|mailbox)|user not found|no mailbox here",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Reply:
    """An SMTP reply split into its basic code and its enhanced status (``"5.1.1"``, if any)."""

    code: int | None
    status: str | None
    text: str

    @property
    def is_unknown_user(self) -> bool:
        """The recipient's address does not exist: suppress it (reason ``bounced``)."""
        if self.status is not None:  # the enhanced status is the precise word
            return self.status in _UNKNOWN_USER_STATUSES
        return self.code in (550, 553) and bool(_UNKNOWN_USER_TEXT.search(self.text))

    @property
    def is_throttling(self) -> bool:
        """The server asks for a slower pace (421, 450, 451, 4.7.x): never the recipient's fault."""
        if self.status is not None and self.status.startswith("4.7."):
            return True
        return self.code in _THROTTLING_CODES

    @property
    def is_temporary(self) -> bool:
        return (self.code is not None and 400 <= self.code < 500) or bool(
            self.status and self.status.startswith("4.")
        )


def parse_reply(text: str | None) -> Reply:
    """``"451 4.7.1 Try later"`` -> Reply(451, "4.7.1", ...); a text without a code keeps None."""
    text = text or ""
    match = _REPLY.match(text)
    if match is None:
        return Reply(None, None, text)
    status = None
    if match.group(2):
        status = ".".join(match.group(n) for n in (2, 3, 4))
    elif (found := _ENHANCED_ANYWHERE.search(text, match.end())) and found.group(1) == match.group(
        1
    )[0]:
        # Some servers put the enhanced code later: "550 <ada@x>: 5.1.1 Recipient unknown".
        status = ".".join(found.groups())
    return Reply(int(match.group(1)), status, text)
