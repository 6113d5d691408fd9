"""The SMTP backend's deliverability settings (contract §9), read and checked in one place.

* ``DIGEST_BOUNCE_ADDRESS``: the envelope sender (MAIL FROM, later the Return-Path); default
  the address of ``DIGEST_FROM``, so bounces then land among the readers' replies.
* ``DIGEST_VERP=yes``: one envelope sender per recipient (:mod:`digest.verp`); needs
  ``DIGEST_SECRET``.
* ``SMTP_CA_FILE``: a PEM file of CAs the server's certificate must chain to (a private CA, a
  self-signed test server); ``SSL_CERT_FILE`` in ``.env`` is used when it is not set. (OpenSSL
  reads ``SSL_CERT_FILE`` from the real environment by itself, but never from ``.env``.)
* ``SMTP_HELO_NAME``: the name given in EHLO (default: this machine's name).
* ``DKIM_DOMAIN``, ``DKIM_SELECTOR``, ``DKIM_PRIVATE_KEY_FILE``: see :mod:`digest.backends.dkim`.

Checking reads the files named (a CA file that does not load, a key that is not one), so a bad
setting shows in ``digest validate --subscribers``, before a send; it contacts nothing.
"""

from __future__ import annotations

import functools
import os
import re
import ssl
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from typing import TypeVar

from email_validator import EmailNotValidError, validate_email

from digest.backends.dkim import DKIM_SETTINGS, DkimSigner, dkim_signer
from digest.errors import ConfigError
from digest.settings import Setting, Settings, flag_setting, text_setting
from digest.verp import MAX_BOUNCE_LOCAL_PART

# The declarations (SMTPBackend.declared_settings lists them); smtp_options() checks the values
# and the rules across keys.
DIGEST_BOUNCE_ADDRESS = text_setting(
    "DIGEST_BOUNCE_ADDRESS",
    "the envelope sender (MAIL FROM / Return-Path) of SMTP sends; default: DIGEST_FROM's address",
    example="bounces@example.org",
)
DIGEST_VERP = flag_setting(
    "DIGEST_VERP", "yes: one signed envelope sender per recipient; needs DIGEST_SECRET"
)
SMTP_CA_FILE = text_setting(
    "SMTP_CA_FILE",
    "a PEM file of CAs to verify the server (tls, starttls); default SSL_CERT_FILE",
    example="/etc/ssl/private-ca.pem",
)
SMTP_HELO_NAME = text_setting(
    "SMTP_HELO_NAME",
    "the name given in EHLO; default: this machine's name",
    example="mail.example.org",
)
# Not declared: a system variable OpenSSL reads from the environment; read from .env too.
SSL_CERT_FILE = text_setting("SSL_CERT_FILE", "OpenSSL's CA bundle")
DELIVERABILITY_SETTINGS = (
    DIGEST_BOUNCE_ADDRESS,
    DIGEST_VERP,
    SMTP_CA_FILE,
    SMTP_HELO_NAME,
    *DKIM_SETTINGS,
)

T = TypeVar("T")
# A host name (RFC 1123 labels) or an address literal ([192.0.2.1], [IPv6:...]).
_HELO = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
    r"[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\]|\[IPv6:[0-9A-Fa-f:.]+\]"
)


@dataclass(frozen=True)
class SMTPOptions:
    bounce_address: str | None  # None: the DIGEST_FROM address
    verp: bool
    secret: str | None  # DIGEST_SECRET, for VERP tags
    ca_file: Path | None
    helo_name: str | None
    signer: DkimSigner | None  # None: messages go unsigned

    def tls_context(self) -> ssl.SSLContext:
        """The context that verifies the server: the system's CAs, and SMTP_CA_FILE's."""
        context = ssl.create_default_context()
        if self.ca_file is not None:
            context.load_verify_locations(cafile=str(self.ca_file))
        return context


def _ca_file_problem(ca_file: Path) -> str | None:
    """Why ``ca_file`` is no PEM file of CAs, or None. Parsing a system bundle costs ~15 ms and
    the settings are checked several times per send, so the answer is kept per file version."""
    try:
        stat = os.stat(ca_file)
    except OSError as exc:
        return exc.strerror or str(exc)
    return _parse_ca_file(str(ca_file), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _parse_ca_file(ca_file: str, size: int, mtime_ns: int) -> str | None:
    # A bare client context: the system's CAs are not needed to tell whether this file loads.
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return None


def _read(settings: Settings, key: Setting[T], problems: list[str], default: T) -> T:
    try:
        return settings[key]
    except ConfigError as exc:
        problems.append(str(exc))
        return default


def smtp_options(settings: Settings, *, tls: bool = True) -> SMTPOptions:
    """The options in force, or ConfigError naming every setting that is wrong. ``tls``: the
    connection uses TLS (SMTP_SECURITY is not ``none``); OpenSSL's SSL_CERT_FILE only matters
    then, where SMTP_CA_FILE, the curator's own setting, is always checked."""
    problems: list[str] = []
    bounce = _read(settings, DIGEST_BOUNCE_ADDRESS, problems, None)
    if bounce is not None:
        address = parseaddr(bounce)[1]
        try:
            checked = validate_email(address, check_deliverability=False)
            bounce = checked.ascii_email
            if bounce is None:
                problems.append("DIGEST_BOUNCE_ADDRESS must be an ASCII address")
        except EmailNotValidError as exc:
            problems.append(f"DIGEST_BOUNCE_ADDRESS is not an email address ({exc})")
            bounce = None
    verp = _read(settings, DIGEST_VERP, problems, False)
    secret = settings.secret.get_secret_value() if settings.secret else None
    if verp and not secret:
        problems.append("DIGEST_VERP=yes needs DIGEST_SECRET (it signs each envelope sender)")
    local_part = (bounce or parseaddr(settings.from_address or "")[1]).rpartition("@")[0]
    if verp and len(local_part.encode("utf-8")) > MAX_BOUNCE_LOCAL_PART:
        problems.append(
            f"DIGEST_VERP=yes needs a bounce address whose local part has at most "
            f"{MAX_BOUNCE_LOCAL_PART} characters (RFC 5321 allows 64 with the token), not "
            f"{local_part!r}; set a shorter DIGEST_BOUNCE_ADDRESS"
        )

    ca_file: Path | None = None
    ca_setting = SMTP_CA_FILE if settings.is_set(SMTP_CA_FILE.env) else SSL_CERT_FILE
    if (tls or ca_setting is SMTP_CA_FILE) and (
        ca_text := _read(settings, ca_setting, problems, None)
    ) is not None:
        ca_file = Path(ca_text).expanduser()
        if (reason := _ca_file_problem(ca_file)) is not None:
            problems.append(
                f"{ca_setting.env}: {ca_file} is not a readable PEM file of CAs ({reason})"
            )

    helo = _read(settings, SMTP_HELO_NAME, problems, None)
    if helo is not None and (len(helo) > 255 or not _HELO.fullmatch(helo)):
        problems.append(f"SMTP_HELO_NAME must be a host name such as mail.example.org: {helo!r}")

    signer: DkimSigner | None = None
    try:
        signer = dkim_signer(settings)
    except ConfigError as exc:
        problems.append(str(exc))
    if problems:
        raise ConfigError("; ".join(problems), hint="fix the setting in the environment or .env")
    return SMTPOptions(
        bounce_address=bounce,
        verp=verp,
        secret=secret,
        ca_file=ca_file,
        helo_name=helo,
        signer=signer,
    )
