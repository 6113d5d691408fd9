"""One recipient: the leaf every layer can name (the list reader makes them, the engine sends to
them, the ledger records them), so none of those has to import another for the type."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Subscriber:
    """One sendable row. ``email`` is normalised (domain lower-cased, in its ASCII form when the
    local part is ASCII); ``fields`` holds every column besides email, name and status."""

    email: str
    name: str
    fields: Mapping[str, str]
    line: int
