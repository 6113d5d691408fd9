"""The outbox backend: every message becomes an ``.eml`` file instead of being sent.

What ``digest send --dry-run`` uses (default folder ``outbox/<slug>/``). Each file is the exact
bytes an SMTP server would have received, so it opens in any mail client. Files are written
atomically (:func:`~digest.files.write_file_atomically`: a new temporary file, then a rename), so
a crash never leaves half a message behind and a link planted in the folder is never followed.
The folder is created 0700 and each file is 0600: the messages hold working unsubscribe links.
Secrets never reach a file: the message bytes hold none, and the file is checked before it is
written. With DKIM settings (:mod:`digest.backends.dkim`) each file is signed as a send would be.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from digest.backends.base import (
    Backend,
    CampaignInfo,
    DeliveryResult,
    DeliveryStatus,
    OutgoingMessage,
)
from digest.backends.dkim import DKIM_SETTINGS, DkimSigner, dkim_signer
from digest.errors import BackendError
from digest.files import private_folder, write_file_atomically
from digest.settings import Settings

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]+")


def address_safe(address: str) -> str:
    """A file-name-safe form of an address: ``Ada.L+news@example.org`` stays as it is,
    anything else (slashes, spaces, non-ASCII) becomes ``_``."""
    return _UNSAFE.sub("_", address)[:100].strip(".") or "recipient"


class OutboxBackend(Backend):
    name = "outbox"
    batch_size = 50
    declared_settings = DKIM_SETTINGS

    def __init__(self, settings: Settings, directory: Path | None = None) -> None:
        super().__init__(settings)
        self.directory = directory
        self._counter = 0
        self._signer: DkimSigner | None = None

    @classmethod
    def check_settings(cls, settings: Settings) -> None:
        super().check_settings(settings)
        dkim_signer(settings)  # DKIM settings, when given, must be whole and valid

    async def open(self, campaign: CampaignInfo) -> None:
        # Signed like an SMTP send, so a dry run shows the DKIM-Signature a send would carry.
        self._signer = dkim_signer(self.settings)
        if self.directory is None:
            self.directory = Path("outbox") / campaign.slug
        try:
            private_folder(self.directory)
        except OSError as exc:
            raise BackendError(
                f"cannot create the outbox folder {self.directory}: {exc}", transient=False
            ) from None
        # Continue numbering after any files already there, so a rerun never overwrites one.
        existing = [p.name[:6] for p in self.directory.glob("[0-9][0-9][0-9][0-9][0-9][0-9]-*")]
        self._counter = max((int(n) for n in existing if n.isdigit()), default=0)

    async def send(self, messages: Sequence[OutgoingMessage]) -> list[DeliveryResult]:
        assert self.directory is not None, "open() first"
        secrets = [s.encode("utf-8") for s in self.settings.secrets()]
        results = []
        for message in messages:
            data = message.as_bytes()
            if self._signer is not None:
                data = self._signer.sign(data)
            if any(secret in data for secret in secrets):
                results.append(
                    DeliveryResult(
                        message.address,
                        DeliveryStatus.FAILED,
                        error="the message holds a secret setting; not written",
                    )
                )
                continue
            self._counter += 1
            name = f"{self._counter:06d}-{address_safe(message.address)}.eml"
            self._write_atomically(self.directory / name, data)
            results.append(DeliveryResult(message.address, DeliveryStatus.SENT, provider_id=name))
        return results

    async def close(self) -> None:
        return None

    @staticmethod
    def _write_atomically(path: Path, data: bytes) -> None:
        try:
            write_file_atomically(path, data)
        except OSError as exc:
            raise BackendError(f"cannot write {path}: {exc}", transient=False) from None
