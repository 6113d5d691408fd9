"""The SMTP backend: a pool of persistent aiosmtplib connections, one message per call.

Settings: declared below: ``SMTP_HOST``, ``SMTP_PORT`` (default 465 for ``tls``, 587 for
``starttls``, 25 for ``none``), ``SMTP_SECURITY``, ``SMTP_USERNAME``/``SMTP_PASSWORD``,
``SMTP_TIMEOUT``, ``SMTP_ALLOW_INSECURE_LOGIN``, and the deliverability ones read and checked
by :mod:`digest.backends.smtp_options` (bounce address, VERP, CA file, HELO name, DKIM). A new
key is one more declaration, e.g.::

    SMTP_SOURCE_ADDRESS = text_setting("SMTP_SOURCE_ADDRESS", "the local address to connect from")

added to ``SMTPBackend.declared_settings`` and read as ``settings[SMTP_SOURCE_ADDRESS]``; a rule
across keys goes into ``check_settings``. ``.env.example`` must list it (a test checks), and
the scrubber, ``digest schedule`` and ``validate --subscribers`` pick it up.

Connections are opened on demand and kept: the engine calls :meth:`SMTPBackend.send` from at
most ``--concurrency`` workers at once, so the pool never grows past that. A connection the server
dropped is replaced and the message tried once more on the new one. Replies map to the fixed
vocabulary: 2xx -> SENT, 4xx (421 included) -> DEFERRED, 5xx -> FAILED with the server's text;
an unreachable or silent server -> ``BackendError(transient=True)`` for the engine to retry.
A server offering PIPELINING gets MAIL, RCPT and DATA in one write
(:mod:`digest.backends.smtp_pipelining` reads the replies), with the same outcomes.
"""

from __future__ import annotations

import base64
import re
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import parseaddr

import aiosmtplib
from aiosmtplib import SMTPResponse
from aiosmtplib.protocol import SMTPProtocol

from digest.backends.base import (
    Backend,
    CampaignInfo,
    DeliveryResult,
    DeliveryStatus,
    OutgoingMessage,
    smtp_data,
)
from digest.backends.dkim import DkimSigner
from digest.backends.smtp_options import DELIVERABILITY_SETTINGS, SMTPOptions, smtp_options
from digest.backends.smtp_pipelining import ReplyTap
from digest.errors import BackendError, ConfigError
from digest.settings import (
    Settings,
    choice_setting,
    flag_setting,
    port_setting,
    seconds_setting,
    secret_setting,
    text_setting,
)
from digest.verp import verp_address

DEFAULT_PORTS = {"tls": 465, "starttls": 587, "none": 25}


def _auth_forms(password: str, raw: Mapping[str, str]) -> list[str]:
    """The password as AUTH LOGIN and AUTH PLAIN send it (base64), for the scrubber."""
    user = (raw.get("SMTP_USERNAME") or "").strip()
    return [_base64(password), _base64(f"\0{user}\0{password}")]


def _base64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


SMTP_HOST = text_setting("SMTP_HOST", "the SMTP server", required=True, example="smtp.example.org")
SMTP_PORT = port_setting(
    "SMTP_PORT", "587 for starttls, 465 for tls, 25 (or a local test port) for none", example="587"
)
SMTP_SECURITY = choice_setting(
    "SMTP_SECURITY",
    "tls, starttls or none (none: local servers only, nothing is encrypted)",
    tuple(DEFAULT_PORTS),
    "starttls",
)
SMTP_USERNAME = text_setting(
    "SMTP_USERNAME", "the login name (none: no login)", example="clippings@example.org"
)
SMTP_PASSWORD = secret_setting("SMTP_PASSWORD", "the login password", hidden_forms=_auth_forms)
SMTP_TIMEOUT = seconds_setting(
    "SMTP_TIMEOUT", "seconds to wait for the server at each step", default=30.0
)
SMTP_ALLOW_INSECURE_LOGIN = flag_setting(
    "SMTP_ALLOW_INSECURE_LOGIN",
    "allow logging in with SMTP_SECURITY=none to a host that is not localhost (trusted LAN)",
)
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# "250 2.0.0 Ok: queued as 4Fq1x2" (Postfix), "250 OK id=1abc-0002" (Exim), "250 Ok <id>".
_QUEUE_ID = re.compile(r"(?:queued as|id=)\s*<?([^\s>]+)>?", re.IGNORECASE)


def _reason(exc: BaseException) -> str:
    """'connection refused' rather than aiosmtplib's message wrapping the OS error twice."""
    cause = exc.__cause__
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror.lower()
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps: aiosmtplib wraps TLS errors of implicit TLS in its own."""
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def _certificate_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    return next((e for e in _causes(exc) if isinstance(e, ssl.SSLCertVerificationError)), None)


def _tls_error(exc: BaseException) -> ssl.SSLError | None:
    return next((e for e in _causes(exc) if isinstance(e, ssl.SSLError)), None)


def _encoded(options: list[str]) -> list[bytes]:
    return [option.encode("ascii") for option in options]


def _provider_id(reply: str) -> str:
    match = _QUEUE_ID.search(reply)
    return match.group(1) if match else reply.strip()[:200]


# What aiosmtplib refuses in a command line (CR/LF/NUL would let an address inject commands).
_CONTROL_CHARACTERS = re.compile(rb"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class _Command:
    """One command of the transaction and the address its refusal names."""

    line: bytes
    address: str

    def __post_init__(self) -> None:
        if _CONTROL_CHARACTERS.search(self.line):
            raise ValueError("Command arg contains a prohibited control character")

    def refusal(self, reply: SMTPResponse) -> aiosmtplib.SMTPResponseException | None:
        """None if ``reply`` accepts the command; else what aiosmtplib's sendmail raises."""
        verb = self.line[:4]
        if verb == b"MAIL":
            if reply.code != 250:
                return aiosmtplib.SMTPSenderRefused(reply.code, reply.message, self.address)
        elif verb == b"RCPT":
            if reply.code not in (250, 251):
                return aiosmtplib.SMTPRecipientRefused(reply.code, reply.message, self.address)
        elif reply.code != 354:
            return aiosmtplib.SMTPDataError(reply.code, reply.message)
        return None


class SMTPBackend(Backend):
    name = "smtp"
    batch_size = 1
    declared_settings = (
        SMTP_HOST,
        SMTP_PORT,
        SMTP_SECURITY,
        SMTP_USERNAME,
        SMTP_PASSWORD,
        SMTP_TIMEOUT,
        SMTP_ALLOW_INSECURE_LOGIN,
        *DELIVERABILITY_SETTINGS,
    )
    connection_settings = (SMTP_HOST, SMTP_PORT, SMTP_SECURITY)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._idle: list[aiosmtplib.SMTP] = []
        self._envelope_from = ""
        self._slug = ""
        self._options: SMTPOptions | None = None
        self._tls_context: ssl.SSLContext | None = None
        self._signer: DkimSigner | None = None
        self.connections_opened = 0  # for tests and the benchmark: reuse is measurable

    # -- settings ---------------------------------------------------------------------------

    @classmethod
    def check_settings(cls, settings: Settings) -> None:
        # The deliverability keys are checked by smtp_options() below, all in one message.
        settings.check([k for k in cls.declared_settings if k not in DELIVERABILITY_SETTINGS])
        host = (settings[SMTP_HOST] or "").strip("[]").lower()
        if settings[SMTP_PASSWORD] is not None and not settings[SMTP_USERNAME]:
            raise ConfigError(
                "SMTP_PASSWORD is set but SMTP_USERNAME is not",
                hint="set SMTP_USERNAME too, or remove SMTP_PASSWORD",
            )
        if (
            settings[SMTP_USERNAME]
            and settings[SMTP_SECURITY] == "none"
            and host not in LOCAL_HOSTS
            and not settings[SMTP_ALLOW_INSECURE_LOGIN]
        ):
            raise ConfigError(
                f"refusing to send the SMTP password unencrypted to {settings[SMTP_HOST]} "
                "(SMTP_SECURITY=none)",
                hint="use SMTP_SECURITY=tls or starttls; `none` is for local servers only "
                "(SMTP_ALLOW_INSECURE_LOGIN=yes overrides this for a trusted network)",
            )
        smtp_options(settings, tls=settings[SMTP_SECURITY] != "none")

    @classmethod
    def describe_connection(cls, settings: Settings) -> str:
        port = settings[SMTP_PORT]
        return (
            f"{settings[SMTP_HOST]}:{port if port is not None else 'the default port'}, "
            f"SMTP_SECURITY={settings[SMTP_SECURITY]}; tls is usually port 465, starttls 587, "
            "none a local server"
        )

    @property
    def port(self) -> int:
        return self.settings[SMTP_PORT] or DEFAULT_PORTS[self.settings[SMTP_SECURITY]]

    # -- the run ----------------------------------------------------------------------------

    async def open(self, campaign: CampaignInfo) -> None:
        """Check settings, then connect once: a wrong host, password or missing STARTTLS shows
        before the first recipient is touched."""
        self.check_settings(self.settings)
        tls = self.settings[SMTP_SECURITY] != "none"
        options = self._options = smtp_options(self.settings, tls=tls)
        from_address = parseaddr(campaign.from_address)[1] or campaign.from_address
        self._envelope_from = options.bounce_address or from_address
        self._slug = campaign.slug
        if tls:  # loading the system's CAs costs ~30 ms: only for a connection that uses TLS
            self._tls_context = options.tls_context()
        self._signer = options.signer
        self._idle.append(await self._connect())

    async def send(self, messages: Sequence[OutgoingMessage]) -> list[DeliveryResult]:
        return [await self._send_one(message) for message in messages]

    async def trim(self, connections: int) -> None:
        """Close idle connections beyond ``connections`` (the engine slows down on throttling;
        a relay counting connections must see fewer)."""
        while len(self._idle) > connections:
            await self._quit(self._idle.pop(0))

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await self._quit(connection)

    async def _quit(self, connection: aiosmtplib.SMTP) -> None:
        try:
            await connection.quit(timeout=min(self.settings[SMTP_TIMEOUT], 5.0))
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            connection.close()

    # -- internals --------------------------------------------------------------------------

    def _error(self, text: str) -> str:
        # A server echoing the credentials it was given (even base64) must not leak them.
        return self.settings.scrub(text)

    async def _connect(self) -> aiosmtplib.SMTP:
        settings = self.settings
        security = settings[SMTP_SECURITY]
        helo_name = self._options.helo_name if self._options else None
        client = aiosmtplib.SMTP(
            hostname=settings[SMTP_HOST],
            port=self.port,
            timeout=settings[SMTP_TIMEOUT],
            use_tls=security == "tls",
            start_tls=False,  # done below, so a server without STARTTLS is refused, not skipped
            tls_context=self._tls_context if security == "tls" else None,
            local_hostname=helo_name,
        )
        where = f"{settings[SMTP_HOST]}:{self.port}"
        try:
            await client.connect()
            await client.ehlo()
            if security == "starttls":
                if not client.supports_extension("starttls"):
                    client.close()
                    raise ConfigError(
                        f"the SMTP server {where} does not offer STARTTLS",
                        hint="use SMTP_SECURITY=tls (port 465), or `none` for a local server",
                    )
                await client.starttls(tls_context=self._tls_context)
                # RFC 3207: the session starts again after STARTTLS, EHLO included.
                await client.ehlo()
            if username := settings[SMTP_USERNAME]:
                if not client.supports_extension("auth"):
                    client.close()
                    raise ConfigError(
                        f"the SMTP server {where} does not offer AUTH, but SMTP_USERNAME is set",
                        hint="remove SMTP_USERNAME and SMTP_PASSWORD if this server needs no "
                        "login; many servers offer AUTH only after STARTTLS "
                        "(SMTP_SECURITY=starttls)",
                    )
                password = settings[SMTP_PASSWORD]
                await client.login(username, password.get_secret_value() if password else "")
        except aiosmtplib.SMTPAuthenticationError as exc:
            client.close()
            raise ConfigError(
                self._error(f"the SMTP server {where} refused the login: {exc.code} {exc.message}"),
                hint="check SMTP_USERNAME and SMTP_PASSWORD",
            ) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            client.close()
            if (unverified := _certificate_error(exc)) is not None:
                raise ConfigError(
                    self._error(
                        f"the certificate of the SMTP server {where} does not verify: "
                        f"{unverified.verify_message or unverified.reason}"
                    ),
                    hint="if the server uses a private CA or a self-signed certificate, "
                    "add its CA with SMTP_CA_FILE (a PEM file)",
                ) from None
            if (tls_error := _tls_error(exc)) is not None:
                raise ConfigError(
                    self._error(f"TLS with {where} failed: {tls_error}"),
                    hint="check SMTP_SECURITY and SMTP_PORT (tls is usually 465, starttls 587)",
                ) from None
            raise BackendError(
                self._error(f"cannot reach the SMTP server {where}: {_reason(exc)}"),
                transient=True,
            ) from None
        if client.supports_extension("pipelining"):
            ReplyTap.install(client)  # after STARTTLS and AUTH, which are never pipelined
        self.connections_opened += 1
        return client

    async def _acquire(self) -> aiosmtplib.SMTP:
        while self._idle:
            connection = self._idle.pop()
            if connection.is_connected:
                return connection
        return await self._connect()

    def _envelope_sender(self, recipient: str) -> str:
        options = self._options
        if options is None or not options.verp or options.secret is None:
            return self._envelope_from
        return verp_address(options.secret, self._envelope_from, recipient, self._slug)

    def _payload(self, message: OutgoingMessage) -> bytes:
        """The DATA bytes; signed over exactly the bytes that are sent, when DKIM is on."""
        if self._signer is None:
            return message.as_smtp_data()
        return smtp_data(self._signer.sign(message.as_bytes()))

    async def _send_one(self, message: OutgoingMessage) -> DeliveryResult:
        payload = self._payload(message)
        sender = self._envelope_sender(message.address)
        for attempt in (1, 2):
            connection = await self._acquire()
            try:
                reply = await self._transaction(connection, sender, message.address, payload)
            except aiosmtplib.SMTPServerDisconnected as exc:
                # Dropped before the server answered the end of DATA: reconnect, try once more.
                connection.close()
                if attempt == 2:
                    raise BackendError(
                        self._error(f"the SMTP server dropped the connection twice: {exc}"),
                        transient=True,
                    ) from None
                continue
            except aiosmtplib.SMTPResponseException as exc:
                # Sender, recipient or content refused: about this message only.
                await self._reset(connection, exc.code)
                return self._refused(message, exc.code, exc.message)
            except (aiosmtplib.SMTPNotSupported, ValueError) as exc:
                # No SMTPUTF8 for a non-ASCII address, or an address unsafe in an envelope.
                await self._reset(connection, 250)
                return DeliveryResult(
                    message.address, DeliveryStatus.FAILED, error=self._error(str(exc))
                )
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                connection.close()
                raise BackendError(
                    self._error(f"SMTP error: {_reason(exc)}"), transient=True
                ) from None
            self._idle.append(connection)
            return DeliveryResult(
                message.address, DeliveryStatus.SENT, provider_id=_provider_id(reply)
            )
        raise AssertionError("unreachable")

    async def _transaction(
        self, connection: aiosmtplib.SMTP, sender: str, recipient: str, payload: bytes
    ) -> str:
        """MAIL, RCPT, DATA on a ready connection; returns the server's final reply text.

        With PIPELINING the three commands go in one write and their replies are read together:
        two round trips a message instead of four. Either way the message is written only after
        the 354, and counts as sent only on the 250 after the final dot.

        aiosmtplib's ``sendmail`` re-normalises line ends and dot-stuffs every message with
        regular expressions (~1 ms for a 60 KB digest); ``payload`` is already in wire form, so
        it is written to the connection as is.
        """
        commands = self._envelope(connection, sender, recipient, payload)
        protocol = connection.protocol
        if protocol is None:
            raise aiosmtplib.SMTPServerDisconnected("connection lost")
        timeout = self.settings[SMTP_TIMEOUT]
        tap = ReplyTap.of(connection)
        if tap is None:
            for command in commands:
                reply = await connection.execute_command(command.line)
                if (refusal := command.refusal(reply)) is not None:
                    raise refusal
            protocol.write(payload)
            reply = await protocol.read_response(timeout=timeout)
        else:
            tap.capture()
            try:
                protocol.write(b"".join(command.line + b"\r\n" for command in commands))
                await self._pipelined_replies(connection, protocol, tap, commands)
                protocol.write(payload)
                reply = await tap.next_reply(timeout)
            finally:
                tap.release()
        if reply.code != 250:
            raise aiosmtplib.SMTPDataError(reply.code, reply.message)
        return reply.message

    def _envelope(
        self, connection: aiosmtplib.SMTP, sender: str, recipient: str, payload: bytes
    ) -> tuple[_Command, ...]:
        """MAIL (with SIZE and SMTPUTF8 as the server offers them), RCPT and DATA."""
        options: list[str] = []
        if not recipient.isascii():
            if not connection.supports_extension("smtputf8"):
                raise aiosmtplib.SMTPNotSupported(
                    "the SMTP server does not support SMTPUTF8, needed for this address"
                )
            options.append("SMTPUTF8")
        if connection.supports_extension("size"):
            options.insert(0, f"SIZE={len(payload) - 3}")
        # The addresses were validated when the list was read; quoting them again through
        # aiosmtplib's address parser costs more than the rest of the envelope.
        encoding = "utf-8" if "SMTPUTF8" in options else "ascii"
        mail = b" ".join([f"MAIL FROM:<{sender}>".encode(encoding), *_encoded(options)])
        return (
            _Command(mail, sender),
            _Command(f"RCPT TO:<{recipient}>".encode(encoding), recipient),
            _Command(b"DATA", ""),
        )

    async def _pipelined_replies(
        self,
        connection: aiosmtplib.SMTP,
        protocol: SMTPProtocol,
        tap: ReplyTap,
        commands: Sequence[_Command],
    ) -> None:
        """Read the replies to a pipelined group in order, all of them (RFC 2920), and raise
        the first refusal, as the one-by-one path would have."""
        timeout = self.settings[SMTP_TIMEOUT]
        refusal: aiosmtplib.SMTPResponseException | None = None
        for command in commands:
            try:
                reply = await tap.next_reply(timeout)
            except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
                if refusal is None:
                    raise
                connection.close()  # the refusal stands; the session is out of step
                break
            if refusal is None:
                refusal = command.refusal(reply)
                if reply.code == 421:
                    break  # the server is closing the session: no more replies come
            elif reply.code == 354:
                # DATA accepted although MAIL or RCPT was not: end it with an empty message,
                # which has no recipient; the refusal is what counts.
                try:
                    protocol.write(b".\r\n")
                    await tap.next_reply(timeout)
                except (aiosmtplib.SMTPException, TimeoutError):
                    connection.close()
        if refusal is not None:
            raise refusal

    async def _reset(self, connection: aiosmtplib.SMTP, code: int) -> None:
        """After a refusal: RSET and keep the connection, unless the server is closing it."""
        if code == 421 or not connection.is_connected:
            connection.close()
            return
        try:
            await connection.rset()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            connection.close()
            return
        self._idle.append(connection)

    def _refused(self, message: OutgoingMessage, code: int, text: str) -> DeliveryResult:
        error = self._error(f"{code} {text}".strip())
        status = DeliveryStatus.DEFERRED if 400 <= code < 500 else DeliveryStatus.FAILED
        return DeliveryResult(message.address, status, error=error)
