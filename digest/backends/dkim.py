"""DKIM signing (RFC 6376) of every message the SMTP and outbox backends hand over, with dkimpy.

Settings: ``DKIM_DOMAIN`` (the ``d=`` domain; align it with DIGEST_FROM's domain for DMARC),
``DKIM_SELECTOR`` (``s=``: the key is published at ``<selector>._domainkey.<domain>``) and
``DKIM_PRIVATE_KEY_FILE``: a PEM RSA key (``rsa-sha256``, 2048 bits advised) or a base64
Ed25519 key as dkimpy's ``dknewkey --ktype ed25519`` writes it (``ed25519-sha256``).

Canonicalisation is relaxed/relaxed (it survives the header refolding and trailing-blank
changes relays make). The signed headers are dkimpy's recommended set present in the message
plus ``List-Unsubscribe-Post``, which Gmail wants covered for one-click unsubscribe; ``From`` is
over-signed, so no second From can be added later.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from pathlib import Path

import dkim

from digest.errors import ConfigError
from digest.settings import Settings

KEYS = ("DKIM_DOMAIN", "DKIM_SELECTOR", "DKIM_PRIVATE_KEY_FILE")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?")
_ONE_CLICK = b"list-unsubscribe-post"


@dataclass(frozen=True)
class DkimSigner:
    domain: str
    selector: str
    algorithm: bytes  # b"rsa-sha256" or b"ed25519-sha256"
    key: bytes = field(repr=False)

    def sign(self, message: bytes) -> bytes:
        """``message`` (CRLF line ends) with its DKIM-Signature header first."""
        signer = dkim.DKIM(message, linesep=b"\r\n")
        headers = signer.default_sign_headers()
        if any(name.lower() == _ONE_CLICK for name, _ in signer.headers):
            headers.append(_ONE_CLICK)
        try:
            signature = signer.sign(
                self.selector.encode("ascii"),
                self.domain.encode("ascii"),
                self.key,
                signature_algorithm=self.algorithm,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=headers,
            )
        except dkim.DKIMException as exc:  # a key that loaded but cannot sign
            raise ConfigError(f"DKIM signing failed: {exc}") from None
        return signature + message


def _is_name(value: str) -> bool:
    return all(_LABEL.fullmatch(label) for label in value.split("."))


def load_signer(domain: str, selector: str, key_file: Path) -> DkimSigner:
    """The signer, or ConfigError saying what is wrong with the domain, selector or key."""
    if not _is_name(domain) or "." not in domain:
        raise ConfigError(f"DKIM_DOMAIN must be a domain name such as example.org: {domain!r}")
    if not _is_name(selector):
        raise ConfigError(f"DKIM_SELECTOR must be a DNS label such as news2026: {selector!r}")
    try:
        key = key_file.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"DKIM_PRIVATE_KEY_FILE: cannot read {key_file}: {exc.strerror or exc}"
        ) from None
    if b"-----BEGIN" in key:
        algorithm = b"rsa-sha256"
        try:
            dkim.crypto.parse_pem_private_key(key)
        except (dkim.crypto.UnparsableKeyError, ValueError, IndexError):
            raise ConfigError(
                f"DKIM_PRIVATE_KEY_FILE: {key_file} holds no RSA private key dkimpy can read "
                "(PEM, 'BEGIN RSA PRIVATE KEY' or 'BEGIN PRIVATE KEY')"
            ) from None
    else:
        algorithm = b"ed25519-sha256"
        try:
            raw = base64.b64decode(key.strip(), validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            raise ConfigError(
                f"DKIM_PRIVATE_KEY_FILE: {key_file} is neither a PEM RSA key nor a base64 "
                "Ed25519 key"
            )
    return DkimSigner(domain=domain.lower(), selector=selector, algorithm=algorithm, key=key)


def dkim_signer(settings: Settings) -> DkimSigner | None:
    """The signer the settings ask for, None when DKIM is off; ConfigError when half set."""
    values = {name: (settings.raw.get(name) or "").strip() for name in KEYS}
    given = [name for name in KEYS if values[name]]
    if not given:
        return None
    if len(given) < len(KEYS):
        missing = ", ".join(name for name in KEYS if name not in given)
        raise ConfigError(
            f"DKIM signing needs {', '.join(KEYS)}; missing: {missing}",
            hint="set all three, or none to send unsigned",
        )
    return load_signer(
        values["DKIM_DOMAIN"],
        values["DKIM_SELECTOR"],
        Path(values["DKIM_PRIVATE_KEY_FILE"]).expanduser(),
    )
