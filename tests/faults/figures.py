"""Campaign figures: printed as one line and appended to a JSON-lines file.

``pytest -s`` shows the line; the file (``<pytest basetemp>/campaign-figures.jsonl``, or the path
in ``DIGEST_FIGURES_FILE``) keeps every campaign's figures for docs/reliability.md and the bench.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import pytest

FIGURES_FILE = "campaign-figures.jsonl"


def figures_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("DIGEST_FIGURES_FILE")
    return Path(chosen) if chosen else tmp_path_factory.getbasetemp() / FIGURES_FILE


def publish(
    campaign: str,
    figures: Mapping[str, object],
    *,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> str:
    """Print ``[campaign] key=value, ...`` past any capture and append it as JSON; return it."""
    line = f"[{campaign}] " + ", ".join(f"{key}={value}" for key, value in figures.items())
    path = figures_path(tmp_path_factory)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as stream:
        stream.write(json.dumps({"campaign": campaign, **figures}, default=str) + "\n")
    with capsys.disabled():
        print(f"\n{line}")
    return line
