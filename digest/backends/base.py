"""Where messages go: the one small interface every backend implements (after django-anymail).

The sending engine (``digest.send.campaign``) knows only this module. A backend:

* declares its settings in :attr:`Backend.declared_settings` (see below) and reads them with
  ``self.settings[KEY]``; :meth:`Backend.check_settings` checks them (``digest validate
  --subscribers`` calls it, so a bad setting is found before a send);
* is opened once per run with the edition-wide :class:`CampaignInfo`;
* is handed lists of at most ``batch_size`` :class:`OutgoingMessage` by up to ``--concurrency``
  callers at once, and answers one :class:`DeliveryResult` per message, using the fixed
  :class:`DeliveryStatus` vocabulary;
* raises :class:`~digest.errors.BackendError` (``transient=True``) when the whole batch could not
  be tried (server down, connection refused, HTTP 5xx), so the engine retries or stops with exit 4.

Third-party backends register a class in the ``digest.backends`` entry-point group.

Declaring settings (adding a key touches only the backend's module)::

    from digest.settings import port_setting, secret_setting, text_setting

    POSTMARK_TOKEN = secret_setting("POSTMARK_TOKEN", "the server API token", required=True)
    POSTMARK_API_URL = text_setting("POSTMARK_API_URL", "default https://api.postmarkapp.com")

    class PostmarkBackend(Backend):
        name = "postmark"
        declared_settings = (POSTMARK_TOKEN, POSTMARK_API_URL)
        connection_settings = (POSTMARK_API_URL,)

        async def open(self, campaign):
            token = self.settings[POSTMARK_TOKEN]  # SecretStr; typed by the declaration
            ...

From that one tuple: ``check_settings`` reports the missing required keys and wrong values (a
subclass adds cross-key rules after ``super().check_settings(settings)``); the scrubber hides
every ``secret_setting`` value from output, logs, outbox files and the state database;
``digest schedule`` lists the keys in the GitHub workflow (secrets as repository secrets); a
connection failure's hint names ``connection_settings`` with their values; and the test suite
checks that ``.env.example`` lists every declared key. ``digest.settings`` has one constructor
per kind of value (text, secret, flag, choice, port, seconds) or build a
:class:`~digest.settings.Setting` with your own ``parse``.
"""

from __future__ import annotations

import enum
import importlib
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, ClassVar, Protocol

from digest.errors import ConfigError
from digest.retry import RetryPolicy
from digest.settings import Setting, Settings


class DeliveryStatus(enum.StrEnum):
    """What happened to one recipient's message in one attempt."""

    SENT = "sent"  # the server or API accepted it: never send it again
    DEFERRED = "deferred"  # a transient refusal (4xx, 429, timeout): retry later
    FAILED = "failed"  # a permanent refusal (5xx for that recipient, HTTP 4xx): do not retry


class Fillable(Protocol):
    """A rendered body with per-recipient slots (``digest.render.merge.MergeTemplate``)."""

    def fill(self, values: Mapping[str, str], *, raw: bool = False) -> str: ...


@dataclass(frozen=True)
class CampaignInfo:
    """What is the same for every message of one edition's run."""

    slug: str
    subject: str
    from_address: str  # "Name <addr@domain>", already validated
    reply_to: str | None
    list_id: str  # "Clippings <clippings.example.org>"
    html: Fillable
    text: Fillable
    # Headers every message carries besides the per-recipient ones (e.g. List-Id).
    headers: Mapping[str, str] = field(default_factory=dict)
    test: bool = False  # a --test proof: nothing is recorded


_LINE_ENDS = re.compile(rb"\r\n|\r|\n")
# With CRLF line ends, "\n." is exactly a line starting with a dot; a plain pattern is ~4x
# faster than aiosmtplib's "(?m)^\." over a 60 KB message.
_DOT_AT_LINE_START = re.compile(rb"\n\.")


def smtp_data(message: bytes) -> bytes:
    """``message`` as an SMTP client sends it after DATA (RFC 5321 4.5.2): CRLF line ends, a
    dot doubled at the start of every line, and ``.`` CRLF last."""
    # As many CRs as LFs: CRLF pairs only (two counting scans; counting b"\r\n" is slower). A
    # bare LF that slipped through would still be dot-stuffed below, so it cannot end DATA early.
    if message.count(b"\n") != message.count(b"\r"):
        message = _LINE_ENDS.sub(b"\r\n", message)
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    return dot_stuffed(message) + b".\r\n"


def dot_stuffed(fragment: bytes) -> bytes:
    """``fragment`` (CRLF line ends, starting at the start of a line) with a dot doubled at the
    start of every line: the one transparency rule of SMTP DATA."""
    if fragment.startswith(b"."):
        fragment = b"." + fragment
    return _DOT_AT_LINE_START.sub(b"\n..", fragment) if b"\n." in fragment else fragment


@dataclass(frozen=True)
class OutgoingMessage:
    """One recipient's message. ``values`` fill the slots of the campaign's html/text;
    ``headers`` are the per-recipient headers (List-Unsubscribe ...), newline-free by
    construction; :meth:`as_bytes` builds the whole RFC 5322 message when a backend needs it,
    :meth:`as_smtp_data` the same in the form an SMTP client writes after DATA."""

    address: str
    name: str
    message_id: str
    values: Mapping[str, str]
    headers: Mapping[str, str]
    build: Callable[[], bytes] = field(repr=False, compare=False)
    # Optional: builds what smtp_data(build()) would return, faster. The message factory
    # dot-stuffs the edition's fixed pieces once per run, so the send's hot path does not scan
    # 60 KB per message for line ends and dots.
    build_smtp_data: Callable[[], bytes] | None = field(default=None, repr=False, compare=False)

    def as_bytes(self) -> bytes:
        return self.build()

    def as_smtp_data(self) -> bytes:
        if self.build_smtp_data is not None:
            return self.build_smtp_data()
        return smtp_data(self.build())


@dataclass(frozen=True)
class DeliveryResult:
    address: str
    status: DeliveryStatus
    provider_id: str | None = None  # the provider's message id (Mailgun id, SMTP queue id)
    error: str | None = None  # the server's reply, secrets scrubbed
    retry_after: float | None = None  # seconds, when the server named a time


class Backend(ABC):
    """Base class of every backend."""

    name: ClassVar[str]
    batch_size: ClassVar[int] = 1  # most messages one send() call may carry
    # Every environment key this backend reads (see the module docstring); its only home.
    declared_settings: ClassVar[tuple[Setting[Any], ...]] = ()
    # The keys that decide where it connects: named, with their values, when it cannot connect.
    connection_settings: ClassVar[tuple[Setting[Any], ...]] = ()

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @classmethod
    def check_settings(cls, settings: Settings) -> None:
        """Raise ConfigError for a missing or wrong setting. Contacts nothing.

        This default checks the declared keys (required ones set, every value readable); a
        backend with rules across keys extends it.
        """
        settings.check(cls.declared_settings)

    @classmethod
    def describe_connection(cls, settings: Settings) -> str | None:
        """The connection settings' values as a hint shows them ("now ..."), or None."""
        if not cls.connection_settings:
            return None
        return ", ".join(str(settings[key]) for key in cls.connection_settings if not key.secret)

    def retry_policy(self, policy: RetryPolicy) -> RetryPolicy:
        """The run's retry policy as this backend wants it; ``policy`` is what the command line
        set. Override to refine it for the provider (``policy.refined(backoff=10.0)``)."""
        return policy

    @abstractmethod
    async def open(self, campaign: CampaignInfo) -> None:
        """Prepare for a run (connect, check credentials)."""

    @abstractmethod
    async def send(self, messages: Sequence[OutgoingMessage]) -> list[DeliveryResult]:
        """Try to deliver ``messages``; one result per message, same order."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections. Safe to call twice, and after a failed open()."""

    async def trim(self, connections: int) -> None:
        """Keep at most ``connections`` connections open: the engine slows down because the
        server throttles. Optional; a backend without a pool keeps this default."""
        return None


def backend_names() -> list[str]:
    """The names of every installed backend: ours and those of other packages."""
    return sorted({*_BUILTIN_BACKENDS, *(ep.name for ep in entry_points(group="digest.backends"))})


# The backends of this package (also registered as entry points, see pyproject.toml), imported
# directly: scanning every installed distribution's entry points costs a few ms per call, and a
# send looks its backend up more than once. Any other name is looked up in the group.
_BUILTIN_BACKENDS = {
    "smtp": ("digest.backends.smtp", "SMTPBackend"),
    "mailgun": ("digest.backends.mailgun", "MailgunBackend"),
    "outbox": ("digest.backends.outbox", "OutboxBackend"),
}


def load_backend(name: str) -> type[Backend]:
    """The backend class registered under ``name``, or ConfigError listing the known ones."""
    if name in _BUILTIN_BACKENDS:
        module, attribute = _BUILTIN_BACKENDS[name]
        cls = getattr(importlib.import_module(module), attribute)
        assert isinstance(cls, type) and issubclass(cls, Backend)
        return cls
    eps = {ep.name: ep for ep in entry_points(group="digest.backends")}
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none"
        raise ConfigError(
            f"unknown backend {name!r} (installed: {known})",
            hint="choose one with --backend or DIGEST_BACKEND",
        )
    cls = eps[name].load()
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise ConfigError(f"backend {name!r} is not a digest.backends.base.Backend subclass")
    return cls
