"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, a port the OS picks, in its own thread.

It records every accepted message and counts connections, and can be told to misbehave:

* ``reject[address] = "550 5.1.1 ..."``: refuse that recipient at RCPT, every time;
* ``defer[address] = (k, "451 4.3.0 ...")``: refuse it with that reply for its first k RCPTs
  (a 421 reply also closes the connection, as a real server does);
* ``drop_data[address] = k``: drop the connection without answering the end of DATA, k times;
* ``data_delay``: seconds to wait before answering each DATA (a slow server);
* ``refuse_mail``: replies for the next MAIL commands, one each, before MAIL is accepted again;
* ``refuse_data[address] = "554 ..."``: refuse the DATA command (no 354) of a message to it;
* ``pipelining=True``: offer PIPELINING (RFC 2920; aiosmtpd reads commands one by one from its
  stream, so it serves pipelined groups as they are); ``server.command_reads`` lists the
  commands that arrived in each read from the socket, to see whether a client pipelined;
* ``stop()`` / ``start()``: the server goes away (connection refused) and comes back on the
  same port.

``SMTPTestServer(tls=context)`` offers STARTTLS with that certificate, ``implicit_tls=True``
speaks TLS from the first byte (port 465 style); ``handler.ehlo_names`` records each EHLO name.

Used by the send tests and by anyone else who needs a mail server (``smtp_server`` fixture).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
import threading
import warnings
from collections import Counter
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    mail_options: tuple[str, ...] = ()  # SIZE=..., SMTPUTF8

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class FaultyHandler:
    """The aiosmtpd handler: records messages, injects the faults described above."""

    reject: dict[str, str] = field(default_factory=dict)
    defer: dict[str, tuple[int, str]] = field(default_factory=dict)
    drop_data: dict[str, int] = field(default_factory=dict)
    data_delay: float = 0.0
    refuse_mail: list[str] = field(default_factory=list)
    refuse_data: dict[str, str] = field(default_factory=dict)
    pipelining: bool = False
    messages: list[Received] = field(default_factory=list)
    rcpt_attempts: Counter[str] = field(default_factory=Counter)
    data_attempts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ehlo_names: list[tuple[str, bool]] = field(default_factory=list)  # (name, over TLS)

    async def handle_EHLO(
        self, server: SMTP, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        with self.lock:
            self.ehlo_names.append((hostname, session.ssl is not None))
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        with self.lock:
            if self.refuse_mail:
                return self.refuse_mail.pop(0)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        key = address.lower()
        with self.lock:
            self.rcpt_attempts[key] += 1
            attempts = self.rcpt_attempts[key]
        if key in self.reject:
            return self.reject[key]
        if key in self.defer:
            times, reply = self.defer[key]
            if attempts <= times:
                if reply.startswith("421"):
                    # A 421 ends the session: answer, then hang up.
                    asyncio.get_running_loop().call_later(0.05, server.transport.close)
                return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        rcpts = tuple(a.lower() for a in envelope.rcpt_tos)
        with self.lock:
            for rcpt in rcpts:
                self.data_attempts[rcpt] += 1
            drop = any(self.drop_data.get(r, 0) >= self.data_attempts[r] for r in rcpts)
        if drop:
            # Hang up without answering; the reply below is never delivered.
            server.transport.abort()
            return "451 4.3.0 connection dropped by the test server"
        data = envelope.original_content or envelope.content
        with self.lock:
            self.messages.append(
                Received(envelope.mail_from, rcpts, bytes(data), tuple(envelope.mail_options))
            )
            number = len(self.messages)
        return f"250 2.0.0 Ok: queued as TEST{number:06d}"


COMMAND_VERBS = frozenset({b"EHLO", b"HELO", b"MAIL", b"RCPT", b"DATA", b"RSET", b"NOOP", b"QUIT"})


class _CountingSMTP(SMTP):
    def __init__(self, owner: SMTPTestServer, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._owner = owner

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        with self._owner.handler.lock:
            self._owner.connections += 1
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        # Command lines only (a message body in DATA is not commands).
        verbs = [line.split(b" ", 1)[0].upper() for line in data.split(b"\r\n") if line]
        if verbs and verbs[0] in COMMAND_VERBS:
            with self._owner.handler.lock:
                self._owner.command_reads.append(tuple(v.decode("ascii", "replace") for v in verbs))
        super().data_received(data)

    async def smtp_DATA(self, arg: str) -> None:
        refusals = self._owner.handler.refuse_data
        assert self.envelope is not None
        refused = [refusals[a.lower()] for a in self.envelope.rcpt_tos if a.lower() in refusals]
        if refused:
            await self.push(refused[0])
            return
        await super().smtp_DATA(arg)


class SMTPTestServer:
    """``with SMTPTestServer() as server: ... server.port ... server.messages``."""

    def __init__(
        self,
        handler: FaultyHandler | None = None,
        *,
        credentials: tuple[str, str] | None = None,
        tls: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
    ) -> None:
        self.handler = handler or FaultyHandler()
        self.credentials = credentials
        self.tls = tls
        self.implicit_tls = implicit_tls
        self.host = "127.0.0.1"
        self.port = 0
        self.connections = 0
        self.command_reads: list[tuple[str, ...]] = []
        self.logins: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None

    # -- what tests read ----------------------------------------------------------------

    @property
    def messages(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.messages)

    def recipients(self) -> Counter[str]:
        """How many messages each address received."""
        counts: Counter[str] = Counter()
        for received in self.messages:
            counts.update(received.rcpt_tos)
        return counts

    def env(self) -> dict[str, str]:
        """The settings that point digest at this server."""
        return {
            "SMTP_HOST": self.host,
            "SMTP_PORT": str(self.port),
            "SMTP_SECURITY": "none",
            "SMTP_TIMEOUT": "5",
        }

    # -- life cycle -----------------------------------------------------------------------

    def _authenticate(
        self, server: SMTP, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword) and self.credentials is not None:
            login = (data.login.decode(), data.password.decode())
            if login == self.credentials:
                self.logins.append(login[0])
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    def _factory(self) -> SMTP:
        auth: dict[str, Any] = {}
        if self.credentials is not None:
            auth = {
                "authenticator": self._authenticate,
                "auth_require_tls": False,
                "auth_required": True,
            }
        with warnings.catch_warnings():
            # AUTH without TLS is what a local test server is for; aiosmtpd warns about it.
            warnings.simplefilter("ignore", UserWarning)
            return _CountingSMTP(
                self,
                self.handler,
                hostname="test.local",
                ident="digest-test-smtpd",
                enable_SMTPUTF8=True,
                tls_context=None if self.implicit_tls else self.tls,
                **auth,
            )

    def start(self) -> SMTPTestServer:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._server = loop.run_until_complete(
                    loop.create_server(
                        self._factory,
                        self.host,
                        self.port,
                        ssl=self.tls if self.implicit_tls else None,
                    )
                )
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=run, name="smtp-test-server", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        """Close the listener and every open connection: clients now get 'connection refused'."""
        loop, server = self._loop, self._server
        if loop is None or server is None:
            return

        async def shut() -> None:
            server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()
            await asyncio.sleep(0)

        asyncio.run_coroutine_threadsafe(shut(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = self._server = self._thread = None

    def __enter__(self) -> SMTPTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
