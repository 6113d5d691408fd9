"""Settings from the environment, or a ``.env`` file in the working folder (contract §4).

Real environment variables win over ``.env``. Secrets are held as :class:`pydantic.SecretStr`, whose
``str()`` and ``repr()`` print ``**********``, so a setting object can be logged without leaking.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values
from pydantic import SecretStr

from digest.errors import ConfigError
from digest.scrub import scrub

SECURITY_MODES = ("tls", "starttls", "none")
_YES = frozenset({"1", "true", "yes", "on"})
_NO = frozenset({"0", "false", "no", "off"})
DEFAULT_MAILGUN_API_URL = "https://api.mailgun.net/v3"


def _secret(value: str | None) -> SecretStr | None:
    return SecretStr(value) if value else None


def _base64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


@dataclass(frozen=True)
class Settings:
    from_address: str | None = None  # DIGEST_FROM, e.g. "Clippings <clippings@example.org>"
    reply_to: str | None = None
    backend: str = "smtp"
    secret: SecretStr | None = None
    unsubscribe_url: str | None = None  # template holding {token}
    unsubscribe_mailto: str | None = None
    archive_url: str | None = None  # template holding {slug}
    state_dir: Path = Path(".digest")

    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_security: str = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout: float = 30.0
    # Opt-in only: log in over SMTP_SECURITY=none to a host that is not local (a trusted LAN relay).
    smtp_allow_insecure_login: bool = False

    mailgun_api_key: SecretStr | None = None
    mailgun_domain: str | None = None
    mailgun_api_url: str = DEFAULT_MAILGUN_API_URL

    # DIGEST_DNS_SERVER: where `digest doctor` sends its look-ups; None: the system's resolver.
    dns_server: tuple[str, int] | None = None

    # Every raw value, for settings a plug-in backend defines itself (never printed).
    raw: Mapping[str, str] = field(default_factory=dict, repr=False)

    def secrets(self) -> list[str]:
        """Every secret value in force, so output and files can be checked and scrubbed."""
        values = (self.secret, self.smtp_password, self.mailgun_api_key)
        return [v.get_secret_value() for v in values if v is not None and v.get_secret_value()]

    def scrub(self, text: str) -> str:
        """``text`` with every secret in force replaced by ``***``: a server's reply, an error or
        a log line may quote one. The forms the credentials travel in are hidden too: the SMTP
        password as AUTH LOGIN and AUTH PLAIN send it, the Mailgun key as HTTP Basic auth does
        (all base64), so a server echoing what it was given cannot leak them either."""
        hidden = self.secrets()
        if self.smtp_password is not None and (password := self.smtp_password.get_secret_value()):
            user = self.smtp_username or ""
            for form in (password, f"\0{user}\0{password}"):
                hidden.append(_base64(form))
        if self.mailgun_api_key is not None and (key := self.mailgun_api_key.get_secret_value()):
            hidden.append(_base64(f"api:{key}"))
        return scrub(text, hidden)

    def require(self, *names: str) -> None:
        """Raise ConfigError naming every listed setting that is not set."""
        missing = [n for n in names if not self._value_of(n)]
        if missing:
            raise ConfigError(
                f"missing setting{'s' if len(missing) > 1 else ''}: {', '.join(missing)}",
                hint="set it in the environment or in .env (see .env.example)",
            )

    def _value_of(self, env_name: str) -> object:
        attr = _ENV_TO_ATTR[env_name]
        return getattr(self, attr)


_ENV_TO_ATTR = {
    "DIGEST_FROM": "from_address",
    "DIGEST_REPLY_TO": "reply_to",
    "DIGEST_BACKEND": "backend",
    "DIGEST_SECRET": "secret",
    "DIGEST_UNSUBSCRIBE_URL": "unsubscribe_url",
    "DIGEST_UNSUBSCRIBE_MAILTO": "unsubscribe_mailto",
    "DIGEST_ARCHIVE_URL": "archive_url",
    "DIGEST_STATE_DIR": "state_dir",
    "SMTP_HOST": "smtp_host",
    "SMTP_PORT": "smtp_port",
    "SMTP_SECURITY": "smtp_security",
    "SMTP_USERNAME": "smtp_username",
    "SMTP_PASSWORD": "smtp_password",
    "SMTP_TIMEOUT": "smtp_timeout",
    "SMTP_ALLOW_INSECURE_LOGIN": "smtp_allow_insecure_login",
    "MAILGUN_API_KEY": "mailgun_api_key",
    "MAILGUN_DOMAIN": "mailgun_domain",
    "MAILGUN_API_URL": "mailgun_api_url",
    "DIGEST_DNS_SERVER": "dns_server",
}


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: Path | None = Path(".env")
) -> Settings:
    """Read settings; ``environ`` defaults to ``os.environ``, ``env_file`` to ``./.env``.

    Raises :class:`ConfigError` for a value that cannot be right (a port that is no number, an
    unknown SMTP_SECURITY, a template lacking its ``{token}`` or ``{slug}``).
    """
    values: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)

    def get(name: str) -> str | None:
        value = values.get(name)
        if value is None:
            return None
        value = value.strip()
        return value or None

    problems: list[str] = []
    for name in values:
        raw_value = values[name]
        if name in _ENV_TO_ATTR and any(c in raw_value for c in "\r\n\x00"):
            problems.append(f"{name} holds a line break or NUL")

    port: int | None = None
    if (raw := get("SMTP_PORT")) is not None:
        try:
            port = int(raw)
            if not 0 < port < 65536:
                raise ValueError
        except ValueError:
            problems.append(f"SMTP_PORT must be a port number, not {raw!r}")
            port = None
    timeout = 30.0
    if (raw := get("SMTP_TIMEOUT")) is not None:
        try:
            timeout = float(raw)
            if timeout <= 0:
                raise ValueError
        except ValueError:
            problems.append(f"SMTP_TIMEOUT must be a positive number of seconds, not {raw!r}")
    insecure_text = (get("SMTP_ALLOW_INSECURE_LOGIN") or "no").lower()
    if insecure_text not in _YES | _NO:
        problems.append(f"SMTP_ALLOW_INSECURE_LOGIN must be yes or no, not {insecure_text!r}")
    insecure_login = insecure_text in _YES
    security = (get("SMTP_SECURITY") or "starttls").lower()
    if security not in SECURITY_MODES:
        problems.append(
            f"SMTP_SECURITY must be one of {', '.join(SECURITY_MODES)}, not {security!r}"
        )
    unsubscribe_url = get("DIGEST_UNSUBSCRIBE_URL")
    if unsubscribe_url is not None:
        if "{token}" not in unsubscribe_url:
            problems.append("DIGEST_UNSUBSCRIBE_URL must hold {token}")
        if not unsubscribe_url.lower().startswith("https://") and not _is_local_http(
            unsubscribe_url
        ):
            problems.append("DIGEST_UNSUBSCRIBE_URL must be an https:// URL (RFC 8058)")
    archive_url = get("DIGEST_ARCHIVE_URL")
    if archive_url is not None and "{slug}" not in archive_url:
        problems.append("DIGEST_ARCHIVE_URL must hold {slug}")
    dns_server: tuple[str, int] | None = None
    if (raw := get("DIGEST_DNS_SERVER")) is not None:
        dns_server = host_and_port(raw, default_port=53)
        if dns_server is None:
            problems.append(f"DIGEST_DNS_SERVER must be host:port, e.g. 127.0.0.1:53, not {raw!r}")
    mailto = get("DIGEST_UNSUBSCRIBE_MAILTO")
    if mailto is not None and not mailto.lower().startswith("mailto:"):
        mailto = "mailto:" + mailto
    if problems:
        raise ConfigError("; ".join(problems), hint="fix the setting in the environment or .env")

    return Settings(
        from_address=get("DIGEST_FROM"),
        reply_to=get("DIGEST_REPLY_TO"),
        backend=(get("DIGEST_BACKEND") or "smtp").lower(),
        secret=_secret(get("DIGEST_SECRET")),
        unsubscribe_url=unsubscribe_url,
        unsubscribe_mailto=mailto,
        archive_url=archive_url,
        state_dir=Path(get("DIGEST_STATE_DIR") or ".digest"),
        smtp_host=get("SMTP_HOST"),
        smtp_port=port,
        smtp_security=security,
        smtp_username=get("SMTP_USERNAME"),
        smtp_password=_secret(get("SMTP_PASSWORD")),
        smtp_timeout=timeout,
        smtp_allow_insecure_login=insecure_login,
        mailgun_api_key=_secret(get("MAILGUN_API_KEY")),
        mailgun_domain=get("MAILGUN_DOMAIN"),
        mailgun_api_url=(get("MAILGUN_API_URL") or DEFAULT_MAILGUN_API_URL).rstrip("/"),
        dns_server=dns_server,
        raw=dict(values),
    )


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
