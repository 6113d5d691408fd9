"""An SMTP server on 127.0.0.1 that misbehaves at seeded rates (built on tests/smtp_server.py).

Per RCPT it may answer ``421`` and hang up, ``451`` or ``452``; per DATA it may reset the
connection before accepting the message, accept it and then reset (the reply is lost: the one
fault after which a resend is a duplicate, the documented in-flight window), or stall longer than
the client's timeout. Chosen recipients are refused for good with ``550``/``553``.

Each draw is seeded by (seed, address, attempt), so a mix injects the same faults into the same
recipients whatever the order concurrent connections arrive in.

It offers PIPELINING, as Postfix and most real servers do: the faults then hit MAIL, RCPT and
DATA sent in one write (the plain path is what tests/test_smtp_backend.py's server gets).
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.smtp import SMTP
from smtp_server import FaultyHandler, Received

RCPT_FAULTS = {
    "421": "421 4.7.0 test.local closing connection: too many connections",
    "451": "451 4.3.0 test.local temporary failure, try again later",
    "452": "452 4.2.2 test.local mailbox full, try again later",
}
PERMANENT = (
    "550 5.1.1 <{address}>: recipient address rejected: user unknown",
    "553 5.1.3 <{address}>: recipient address rejected: mailbox name not allowed",
)


@dataclass(frozen=True)
class SMTPFaultRates:
    """Chances per RCPT (421/451/452) and per DATA (the rest); ``permanent`` is the share of the
    list refused for good."""

    closing_421: float = 0.0
    busy_451: float = 0.0
    full_452: float = 0.0
    reset_mid_data: float = 0.0
    reset_after_accept: float = 0.0
    stall: float = 0.0
    permanent: float = 0.0


def reset_connection(transport: Any) -> None:
    """Close with a TCP RST (SO_LINGER 0), as a crashed server or a middlebox does."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


@dataclass
class SeededFaultHandler(FaultyHandler):
    """The tests' recording handler, with seeded faults instead of per-address scripts."""

    rates: SMTPFaultRates = field(default_factory=SMTPFaultRates)
    pipelining: bool = True
    seed: int = 0
    stall_seconds: float = 1.0
    injected: Counter[str] = field(default_factory=Counter)
    replies: dict[str, list[str]] = field(default_factory=dict)  # refusals given per address
    ambiguous: Counter[str] = field(default_factory=Counter)  # accepted, reply lost

    def choose_permanent(self, addresses: list[str]) -> dict[str, str]:
        """Pick ``rates.permanent`` of ``addresses`` to refuse for good; returns them."""
        picker = random.Random(f"{self.seed}:permanent")
        for address in addresses:
            if picker.random() < self.rates.permanent:
                reply = picker.choice(PERMANENT).format(address=address)
                self.reject[address.lower()] = reply
        return dict(self.reject)

    def _draw(self, stage: str, address: str, attempt: int) -> float:
        return random.Random(f"{self.seed}:{stage}:{address}:{attempt}").random()

    def _refuse(self, address: str, kind: str, reply: str) -> str:
        with self.lock:
            self.injected[kind] += 1
            self.replies.setdefault(address, []).append(reply)
        return reply

    async def handle_RCPT(
        self, server: SMTP, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        key = address.lower()
        with self.lock:
            self.rcpt_attempts[key] += 1
            attempt = self.rcpt_attempts[key]
        if key in self.reject:
            return self._refuse(key, self.reject[key][:3], self.reject[key])
        draw = self._draw("rcpt", key, attempt)
        rates = self.rates
        for kind, rate in (
            ("421", rates.closing_421),
            ("451", rates.busy_451),
            ("452", rates.full_452),
        ):
            if draw < rate:
                if kind == "421":
                    # A 421 ends the session: answer, then hang up.
                    asyncio.get_running_loop().call_later(0.02, server.transport.close)
                return self._refuse(key, kind, RCPT_FAULTS[kind])
            draw -= rate
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        rcpts = tuple(a.lower() for a in envelope.rcpt_tos)
        with self.lock:
            for rcpt in rcpts:
                self.data_attempts[rcpt] += 1
            attempt = self.data_attempts[rcpts[0]]
        draw = self._draw("data", rcpts[0], attempt)
        rates = self.rates
        if draw < rates.stall:
            with self.lock:
                self.injected["stall"] += 1
            await asyncio.sleep(self.stall_seconds)  # the client gives up first
            server.transport.close()
            return "451 4.4.2 timeout (never read)"
        draw -= rates.stall
        if draw < rates.reset_mid_data:
            with self.lock:
                self.injected["reset mid-DATA"] += 1
            reset_connection(server.transport)
            return "451 4.3.0 reset (never read)"
        draw -= rates.reset_mid_data
        data = envelope.original_content or envelope.content
        with self.lock:
            self.messages.append(Received(envelope.mail_from, rcpts, bytes(data)))
            number = len(self.messages)
        if draw < rates.reset_after_accept:
            with self.lock:
                self.injected["reset after accept"] += 1
                self.ambiguous.update(rcpts)
            reset_connection(server.transport)
            return "250 queued (never read)"
        return f"250 2.0.0 Ok: queued as FAULT{number:06d}"
