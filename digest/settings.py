"""Settings from the environment, or a ``.env`` file in the working folder (contract §4).

Real environment variables win over ``.env``. Secrets are held as :class:`pydantic.SecretStr`, whose
``str()`` and ``repr()`` print ``**********``, so a setting object can be logged without leaking.

Every key is *declared* once, as a :class:`Setting` (its environment name, whether it is secret or
required, a hint, how its text is read), the way django-anymail's
``get_anymail_setting(name, esp_name=...)`` gives each provider its own keys:

* the core keys (``DIGEST_*``) in :data:`CORE_SETTINGS` below;
* each backend's keys in its own class, ``Backend.declared_settings`` (the SMTP keys in
  ``digest/backends/smtp.py``, the Mailgun keys in ``digest/backends/mailgun.py``, a plug-in's
  in its own package), found through the ``digest.backends`` entry-point group.

Everything that needs to know the keys reads the declarations: :meth:`Settings.secrets` and the
scrubber (a plug-in's API key is hidden like ours), ``Backend.check_settings`` (missing and bad
values), ``digest schedule``'s environment lists, and the test that ``.env.example`` lists every
key. A backend reads its values with ``settings[KEY]``, typed by the declaration.
"""

from __future__ import annotations

import base64
import functools
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Generic, TypeVar

from dotenv import dotenv_values
from pydantic import SecretStr

from digest.errors import ConfigError
from digest.reserved_domains import allow_reserved_domains
from digest.scrub import scrub

BACKENDS_GROUP = "digest.backends"  # the entry-point group naming every backend class
_YES = frozenset({"1", "true", "yes", "on"})
_NO = frozenset({"0", "false", "no", "off"})
_FIX = "fix the setting in the environment or .env"

T = TypeVar("T")


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One key of the environment: declared once, read by everyone through this object.

    ``parse`` turns the (stripped, non-empty) text into the value, or raises ``ValueError`` whose
    message completes "``ENV`` ..." (e.g. "must be a port number"). ``default`` is the value when
    the key is unset or empty. ``hidden_forms`` gives, for a secret, the other shapes it travels
    in (base64 for SMTP AUTH or HTTP Basic auth) so a server echoing them cannot leak it either;
    it receives the secret and every raw value.
    """

    env: str
    hint: str
    parse: Callable[[str], T]
    default: T
    secret: bool = False
    required: bool = False
    example: str = ""  # the value .env.example shows (documentation, never a real secret)
    hidden_forms: Callable[[str, Mapping[str, str]], Iterable[str]] | None = field(
        default=None, compare=False
    )

    def read(self, raw: Mapping[str, str]) -> T:
        """This key's value in ``raw``; ConfigError naming the key when the text is wrong."""
        value = raw.get(self.env)
        if value is not None and any(c in value for c in "\r\n\x00"):
            raise ConfigError(f"{self.env} holds a line break or NUL", hint=_FIX)
        text = _clean(value)
        if text is None:
            return self.default
        try:
            return self.parse(text)
        except ValueError as exc:
            raise ConfigError(f"{self.env} {exc}", hint=_FIX) from None


# -- declaring keys: one constructor per kind of value -----------------------------------------


def text_setting(
    env: str, hint: str, *, required: bool = False, example: str = ""
) -> Setting[str | None]:
    """A plain text value (None when unset)."""
    return Setting(env, hint, _text, None, required=required, example=example)


def secret_setting(
    env: str,
    hint: str,
    *,
    required: bool = False,
    example: str = "replace-me",
    hidden_forms: Callable[[str, Mapping[str, str]], Iterable[str]] | None = None,
) -> Setting[SecretStr | None]:
    """A secret: held as SecretStr, scrubbed from every output, log and file."""
    return Setting(
        env,
        hint,
        SecretStr,
        None,
        secret=True,
        required=required,
        example=example,
        hidden_forms=hidden_forms,
    )


def flag_setting(env: str, hint: str, *, default: bool = False) -> Setting[bool]:
    """yes/no (also 1/0, true/false, on/off)."""
    return Setting(env, hint, _flag, default, example="no" if not default else "yes")


def choice_setting(env: str, hint: str, choices: Sequence[str], default: str) -> Setting[str]:
    """One of ``choices`` (case-insensitive)."""

    def parse(text: str) -> str:
        if text.lower() not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, not {text!r}")
        return text.lower()

    return Setting(env, hint, parse, default, example=default)


def port_setting(env: str, hint: str, *, example: str = "") -> Setting[int | None]:
    """A TCP port number (None when unset: the backend's default)."""

    def parse(text: str) -> int | None:
        try:
            port = int(text)
        except ValueError:
            port = 0
        if not 0 < port < 65536:
            raise ValueError(f"must be a port number, not {text!r}")
        return port

    return Setting(env, hint, parse, None, example=example)


def seconds_setting(env: str, hint: str, *, default: float) -> Setting[float]:
    """A positive number of seconds."""

    def parse(text: str) -> float:
        try:
            seconds = float(text)
        except ValueError:
            seconds = 0.0
        if not seconds > 0:
            raise ValueError(f"must be a positive number of seconds, not {text!r}")
        return seconds

    return Setting(env, hint, parse, default, example=f"{default:g}")


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def _text(text: str) -> str:
    return text


def _flag(text: str) -> bool:
    lowered = text.lower()
    if lowered not in _YES | _NO:
        raise ValueError(f"must be yes or no, not {lowered!r}")
    return lowered in _YES


def _base64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


# -- the core keys -----------------------------------------------------------------------------


def _unsubscribe_url(text: str) -> str:
    if "{token}" not in text:
        raise ValueError("must hold {token}")
    if not text.lower().startswith("https://") and not _is_local_http(text):
        raise ValueError("must be an https:// URL (RFC 8058)")
    return text


def _archive_url(text: str) -> str:
    if "{slug}" not in text:
        raise ValueError("must hold {slug}")
    return text


def _mailto(text: str) -> str:
    return text if text.lower().startswith("mailto:") else "mailto:" + text


DIGEST_FROM = text_setting(
    "DIGEST_FROM",
    "who the newsletter comes from; its domain names the Message-ID and List-Id",
    example='"Clippings <clippings@example.org>"',
)
DIGEST_REPLY_TO = text_setting(
    "DIGEST_REPLY_TO", "where replies go (optional)", example='"Editor <editor@example.org>"'
)
DIGEST_BACKEND = Setting(
    "DIGEST_BACKEND",
    "the backend `digest send` uses unless --backend says otherwise",
    str.lower,
    "smtp",
    example="smtp",
)
DIGEST_SECRET = secret_setting(
    "DIGEST_SECRET",
    "signs the unsubscribe tokens (address + edition); long and random",
    example="replace-me-with-a-long-random-string",
)
DIGEST_UNSUBSCRIBE_URL = Setting(
    "DIGEST_UNSUBSCRIBE_URL",
    "the one-click unsubscribe link (https, RFC 8058); {token} is replaced per recipient",
    _unsubscribe_url,
    None,
    example="https://example.org/unsubscribe/{token}",
)
DIGEST_UNSUBSCRIBE_MAILTO = Setting(
    "DIGEST_UNSUBSCRIBE_MAILTO",
    'a mailbox that receives "unsubscribe <token>" mails',
    _mailto,
    None,
    example="mailto:unsubscribe@example.org",
)
DIGEST_ARCHIVE_URL = Setting(
    "DIGEST_ARCHIVE_URL",
    'the "view in browser" link; {slug} is replaced by the edition\'s slug',
    _archive_url,
    None,
    example="https://example.org/archive/{slug}/",
)
DIGEST_STATE_DIR = Setting(
    "DIGEST_STATE_DIR",
    "where the send ledger and the suppression list live",
    Path,
    Path(".digest"),
    example=".digest",
)


def _dns_server(text: str) -> tuple[str, int]:
    parsed = host_and_port(text, default_port=53)
    if parsed is None:
        raise ValueError(f"must be host:port, e.g. 127.0.0.1:53, not {text!r}")
    return parsed


DIGEST_DNS_SERVER: Setting[tuple[str, int] | None] = Setting(
    "DIGEST_DNS_SERVER",
    "the DNS server `digest doctor` asks, as host:port (default: the system's resolver)",
    _dns_server,
    None,
    example="1.1.1.1:53",
)

DIGEST_ALLOW_RESERVED_DOMAINS = flag_setting(
    "DIGEST_ALLOW_RESERVED_DOMAINS",
    "yes lets addresses at .test, .invalid, .localhost and .local pass, DIGEST_FROM included "
    "(a staging set-up on a private test domain)",
)

# Core keys and the Settings field each one fills.
_CORE_FIELDS: dict[str, Setting[Any]] = {
    "from_address": DIGEST_FROM,
    "reply_to": DIGEST_REPLY_TO,
    "backend": DIGEST_BACKEND,
    "secret": DIGEST_SECRET,
    "unsubscribe_url": DIGEST_UNSUBSCRIBE_URL,
    "unsubscribe_mailto": DIGEST_UNSUBSCRIBE_MAILTO,
    "archive_url": DIGEST_ARCHIVE_URL,
    "state_dir": DIGEST_STATE_DIR,
    "dns_server": DIGEST_DNS_SERVER,
}
# DIGEST_ALLOW_RESERVED_DOMAINS fills no field: loading the settings applies it to every address
# check of the command (digest.reserved_domains).
CORE_SETTINGS: tuple[Setting[Any], ...] = (*_CORE_FIELDS.values(), DIGEST_ALLOW_RESERVED_DOMAINS)
_CORE_ATTRIBUTE = {key.env: attribute for attribute, key in _CORE_FIELDS.items()}


# -- finding every declaration -----------------------------------------------------------------


@functools.cache
def declared_settings() -> dict[str, tuple[Setting[Any], ...]]:
    """Every declared key, by owner: ``"core"`` first, then each installed backend (ours and
    plug-ins, through the ``digest.backends`` entry-point group) by name.

    Loaded once per process and only when asked (the scrubber, checks, ``digest schedule``): a
    send never pays for it unless something must be scrubbed. A plug-in that cannot be imported
    is left out here; choosing it as the backend reports why.
    """
    found: dict[str, tuple[Setting[Any], ...]] = {"core": CORE_SETTINGS}
    for point in sorted(entry_points(group=BACKENDS_GROUP), key=lambda p: p.name):
        if point.name in found:
            continue
        try:
            backend = point.load()
        except Exception:  # a broken plug-in must not stop scrubbing or checks of the others
            continue
        found[point.name] = tuple(getattr(backend, "declared_settings", ()))
    return found


def every_declared_key() -> list[Setting[Any]]:
    """Each declared key once (the first declaration of a name wins), core keys first."""
    seen: dict[str, Setting[Any]] = {}
    for keys in declared_settings().values():
        for key in keys:
            seen.setdefault(key.env, key)
    return list(seen.values())


# -- the settings in force ---------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """The core settings as typed fields; every other declared key through ``settings[KEY]``."""

    from_address: str | None = None  # DIGEST_FROM, e.g. "Clippings <clippings@example.org>"
    reply_to: str | None = None
    backend: str = "smtp"
    secret: SecretStr | None = None
    unsubscribe_url: str | None = None  # template holding {token}
    unsubscribe_mailto: str | None = None
    archive_url: str | None = None  # template holding {slug}
    state_dir: Path = Path(".digest")
    dns_server: tuple[str, int] | None = None  # DIGEST_DNS_SERVER, for `digest doctor`

    # Every raw value (environment over .env): what backends' declared keys are read from.
    raw: Mapping[str, str] = field(default_factory=dict, repr=False)

    def __getitem__(self, key: Setting[T]) -> T:
        """The value of a declared key (its default when unset); ConfigError when wrong."""
        if key.env in _CORE_ATTRIBUTE:
            return getattr(self, _CORE_ATTRIBUTE[key.env])  # type: ignore[no-any-return]
        return key.read(self.raw)

    def is_set(self, env_name: str) -> bool:
        """Whether the key named ``env_name`` has a non-empty value."""
        if env_name in _CORE_ATTRIBUTE:
            return bool(getattr(self, _CORE_ATTRIBUTE[env_name]))
        return _clean(self.raw.get(env_name)) is not None

    def secrets(self) -> list[str]:
        """Every secret value in force, of every key declared secret (plug-ins' too), so output
        and files can be checked and scrubbed."""
        values = [self.secret.get_secret_value()] if self.secret is not None else []
        for key in every_declared_key():
            if key.secret and key.env not in _CORE_ATTRIBUTE:
                value = _clean(self.raw.get(key.env))
                if value:
                    values.append(value)
        return [v for v in values if v]

    def scrub(self, text: str) -> str:
        """``text`` with every secret in force replaced by ``***``: a server's reply, an error or
        a log line may quote one. The forms a credential travels in (declared by its key's
        ``hidden_forms``: base64 for SMTP AUTH, HTTP Basic auth) are hidden too, and each in
        every encoding of :mod:`digest.scrub`, so a server echoing what it was given cannot leak
        them either."""
        hidden = self.secrets()
        for key in every_declared_key():
            if key.hidden_forms is not None and (value := _clean(self.raw.get(key.env))):
                hidden.extend(key.hidden_forms(value, self.raw))
        return scrub(text, hidden)

    def require(self, *names: str) -> None:
        """Raise ConfigError naming every listed setting that is not set."""
        missing = [n for n in names if not self.is_set(n)]
        if missing:
            raise ConfigError(
                f"missing setting{'s' if len(missing) > 1 else ''}: {', '.join(missing)}",
                hint="set it in the environment or in .env (see .env.example)",
            )

    def check(self, keys: Sequence[Setting[Any]], *, also_required: Sequence[str] = ()) -> None:
        """ConfigError listing every required key of ``keys`` (then ``also_required``) that is
        unset, or else every one whose value is wrong: what ``Backend.check_settings`` runs."""
        self.require(*[k.env for k in keys if k.required], *also_required)
        problems = []
        for key in keys:
            try:
                self[key]
            except ConfigError as exc:
                problems.append(str(exc))
        if problems:
            raise ConfigError("; ".join(problems), hint=_FIX)


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: Path | None = Path(".env")
) -> Settings:
    """Read settings; ``environ`` defaults to ``os.environ``, ``env_file`` to ``./.env``.

    Raises :class:`ConfigError` for a core value that cannot be right (a template lacking its
    ``{token}`` or ``{slug}``, a line break in any value a backend declares); a backend's own
    keys are checked by its ``check_settings``.
    """
    values: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)

    problems: list[str] = []
    fields: dict[str, Any] = {}
    for attribute, key in _CORE_FIELDS.items():
        try:
            fields[attribute] = key.read(values)
        except ConfigError as exc:
            problems.append(str(exc))
    try:
        allow_reserved_domains(DIGEST_ALLOW_RESERVED_DOMAINS.read(values))
    except ConfigError as exc:
        allow_reserved_domains(False)
        problems.append(str(exc))
    if problems:
        raise ConfigError("; ".join(problems), hint=_FIX)
    return Settings(**fields, raw=dict(values))


def _is_local_http(url: str) -> bool:
    """http:// is tolerated for a local endpoint only (tests, a curator trying it out)."""
    lowered = url.lower()
    return lowered.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]"))


def host_and_port(text: str, *, default_port: int) -> tuple[str, int] | None:
    """``host:port``, ``[v6 address]:port`` or a bare host (``default_port``); None if neither."""
    host, port_text = text, None
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    # More than one colon and no brackets: a bare IPv6 address.
    if not host or any(c.isspace() for c in host):
        return None
    if port_text is None:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return None
    return host, int(port_text)
