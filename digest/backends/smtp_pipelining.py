"""SMTP PIPELINING (RFC 2920): the replies of MAIL, RCPT and DATA sent in one write.

aiosmtplib's protocol reads one reply per command written: it drops data that arrives while a
parsed reply waits to be picked up, and leaves a second reply of the same packet in its buffer.
So the replies of a pipelined group are read here instead, by a :class:`ReplyTap` put between
the connection's transport and aiosmtplib's protocol with asyncio's public
``transport.set_protocol()``, once the session is set up (EHLO, STARTTLS, AUTH). Outside a
pipelined group the tap hands every event on to aiosmtplib's protocol untouched, so
``connection.protocol`` stays aiosmtplib's own and its RSET, QUIT and close work as before.

Why this way: it reaches into nothing private. A subclass of aiosmtplib's ``SMTPProtocol`` with
a reply queue would have to be built by aiosmtplib's private ``_create_connection``, or be
swapped in afterwards with a copy of the old protocol's private state (command lock, TLS flag,
connection-lost callback). What the tap relies on (pyproject.toml bounds the version): the
public ``SMTP.transport`` and ``SMTP.protocol``, ``SMTPProtocol.write()``, and that the protocol
hears from its transport only through the ``asyncio.Protocol`` callbacks.
"""

from __future__ import annotations

import asyncio
from collections import deque

import aiosmtplib
from aiosmtplib import SMTPResponse

# aiosmtplib's bounds: a line of 8 KB, a reply (continuation lines included) of 32 KB.
MAX_LINE_LENGTH = 8192
MAX_REPLY_LENGTH = 4 * MAX_LINE_LENGTH
INVALID_REPLY = -1  # aiosmtplib's SMTPStatus.invalid_response, for the same error mapping


def _time_out(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(
            aiosmtplib.SMTPReadTimeoutError("Timed out waiting for server response")
        )


class ReplyTap(asyncio.Protocol):
    """Between a transport and aiosmtplib's protocol: queues every complete reply while
    :meth:`capture` is on, passes everything through otherwise."""

    def __init__(self, transport: asyncio.BaseTransport, inner: asyncio.Protocol) -> None:
        self._transport = transport
        self._inner = inner
        self._capturing = False
        self._buffer = bytearray()
        self._replies: deque[SMTPResponse] = deque()
        self._failure: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None

    @classmethod
    def install(cls, connection: aiosmtplib.SMTP) -> ReplyTap:
        transport = connection.transport
        if transport is None or connection.protocol is None:
            raise aiosmtplib.SMTPServerDisconnected("connection lost")
        tap = cls(transport, connection.protocol)
        transport.set_protocol(tap)
        return tap

    @staticmethod
    def of(connection: aiosmtplib.SMTP) -> ReplyTap | None:
        """The tap of a connection set up for pipelining, None for a plain one."""
        transport = connection.transport
        protocol = transport.get_protocol() if transport is not None else None
        return protocol if isinstance(protocol, ReplyTap) else None

    # -- what the backend calls -------------------------------------------------------------

    def capture(self) -> None:
        """From now on, replies are queued here (call before writing the group)."""
        self._capturing = True

    def release(self) -> None:
        """Back to aiosmtplib; whatever was not read is dropped, as aiosmtplib drops data
        that nobody asked for."""
        self._capturing = False
        self._buffer.clear()
        self._replies.clear()

    async def next_reply(self, timeout: float) -> SMTPResponse:
        """The next reply in order; raises what aiosmtplib would: SMTPServerDisconnected,
        SMTPReadTimeoutError, SMTPResponseException for a malformed reply."""
        while not self._replies:
            if self._failure is not None:
                raise self._failure
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            # A timer on the one future rather than asyncio.wait_for, which wraps it in two
            # more: this wait happens twice for every message.
            timer = loop.call_later(timeout, _time_out, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        return self._replies.popleft()

    # -- asyncio.Protocol -------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if not self._capturing:
            self._inner.data_received(data)
            return
        self._buffer.extend(data)
        try:
            while (reply := self._parse_one()) is not None:
                self._replies.append(reply)
        except aiosmtplib.SMTPResponseException as exc:
            # Out of step with the server for good: this connection is done.
            self._buffer.clear()
            self._fail(exc)
            self._transport.close()
            return
        self._wake()

    def eof_received(self) -> bool | None:
        self._fail(aiosmtplib.SMTPServerDisconnected("Unexpected EOF received"))
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        failure = aiosmtplib.SMTPServerDisconnected("Connection lost")
        failure.__cause__ = exc
        self._fail(failure)
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    # -- internals --------------------------------------------------------------------------

    def _fail(self, failure: BaseException) -> None:
        if self._failure is None:
            self._failure = failure
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _parse_one(self) -> SMTPResponse | None:
        """One complete reply off the front of the buffer ("250-..." lines continue it)."""
        lines: list[bytes] = []
        offset = 0
        while (end := self._buffer.find(b"\n", offset)) != -1:
            line = bytes(self._buffer[offset : end + 1])
            if len(line) > MAX_LINE_LENGTH:
                raise aiosmtplib.SMTPResponseException(INVALID_REPLY, "Response too long")
            if not line[:3].isdigit():
                text = line.decode("utf-8", errors="ignore")
                raise aiosmtplib.SMTPResponseException(
                    INVALID_REPLY, f"Malformed SMTP response line: {text}"
                )
            offset = end + 1
            lines.append(line[4:].strip(b" \t\r\n"))
            if line[3:4] != b"-":
                del self._buffer[:offset]
                text = b"\n".join(lines).decode("utf-8", "surrogateescape")
                return SMTPResponse(int(line[:3]), text)
        if len(self._buffer) > MAX_REPLY_LENGTH:
            raise aiosmtplib.SMTPResponseException(INVALID_REPLY, "Response too long")
        return None
