"""`digest preview` as a curator runs it: the real command in a subprocess, on a free port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "content" / "2026-03.yaml"
DIGEST = str(Path(sys.executable).with_name("digest"))


def environment() -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DIGEST_", "SMTP_", "MAILGUN_"))
    }
    env["NO_COLOR"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def read_line(stream: object, wanted: str, timeout: float = 20) -> str:
    """The first line of ``stream`` holding ``wanted`` (the others are skipped)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline()  # type: ignore[attr-defined]
        if wanted in line:
            return str(line)
        if not line:
            time.sleep(0.02)
    raise AssertionError(f"no line with {wanted!r} within {timeout} s")


def test_a_broken_save_is_reported_with_the_path_as_typed(tmp_path: Path) -> None:
    edition = tmp_path / "content" / "2026-04.yaml"
    edition.parent.mkdir()
    good = BUNDLED.read_text(encoding="utf-8").replace("slug: 2026-03\n", "")
    edition.write_text(good, encoding="utf-8")
    process = subprocess.Popen(
        [DIGEST, "preview", "content/2026-04.yaml", "--no-open", "--port", "0"],
        cwd=tmp_path,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = read_line(process.stdout, "Previewing").split(" at ")[1].strip()
        read_line(process.stdout, "rendered in")
        assert httpx.get(url, timeout=10).status_code == 200
        quoted = (
            'subject: "Clippings, March 2026: Gemini 3.1 Flash Live, VoXtream2 and a 25 MB TTS"'
        )
        assert quoted in good
        edition.write_text(
            good.replace(quoted, "subject: Clippings, March 2026: the April draft"),
            encoding="utf-8",
        )
        problem = read_line(process.stderr, "invalid YAML")
        # As `digest validate content/2026-04.yaml` prints it: relative, with the fix to type.
        assert problem == (
            "  content/2026-04.yaml:11:31: invalid YAML: the value of 'subject' holds ': '; put "
            'the whole value in quotes: subject: "Clippings, March 2026: the April draft"\n'
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)


def test_a_missing_edition_is_the_error_validate_gives(tmp_path: Path) -> None:
    (tmp_path / "content").mkdir()
    (tmp_path / "content" / "2026-04.yaml").write_bytes(BUNDLED.read_bytes())
    result = subprocess.run(
        [DIGEST, "preview", "content/2026-4.yaml", "--no-open", "--port", "0"],
        cwd=tmp_path,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "content/2026-4.yaml: no such file",
        "1 problem found.",
        "hint: did you mean content/2026-04.yaml?",
    ]
