"""Shared fixtures: a real SMTP server, a small edition, a subscribers list, and the CLI run the
way a user runs it (argv in, exit code and printed text out)."""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/smtp_server.py, tests/mailgun_server.py

from smtp_server import SMTPTestServer

# Every setting digest reads: cleared for each CLI run so the developer's own never leak in.
SETTING_PREFIXES = ("DIGEST_", "SMTP_", "MAILGUN_")
TEST_SECRET = "test-secret-7f3a9c1e5b-d2a4c6e8f0b1"


SMALL_EDITION = """\
    newsletter: Clippings
    edition: March 2026
    slug: 2026-03
    subject: "Clippings, March 2026: a small test edition"
    intro: Hello **reader**.
    sections:
      - title: Research Papers
        items:
          - title: A paper about speech
            url: https://arxiv.org/abs/2601.00001
            summary: Short and *useful*.
            source: arXiv
"""


@pytest.fixture(autouse=True)
def _reserved_domains_refused_again() -> Iterator[None]:
    """DIGEST_ALLOW_RESERVED_DOMAINS is process-wide once settings are loaded: never carried
    from one test to the next."""
    yield
    from digest.reserved_domains import allow_reserved_domains

    allow_reserved_domains(False)


@pytest.fixture
def smtp_server() -> Iterator[SMTPTestServer]:
    """An aiosmtpd server on 127.0.0.1 (OS-chosen port) that records what it accepts."""
    server = SMTPTestServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def edition_file(tmp_path: Path) -> Path:
    """``content/2026-03.yaml``: a small valid edition."""
    path = tmp_path / "content" / "2026-03.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(SMALL_EDITION), encoding="utf-8")
    return path


def write_subscribers(path: Path, count: int, *, extra_rows: str = "") -> Path:
    """A CSV of ``count`` subscribed rows (reader0000@example.org ...) plus ``extra_rows``."""
    lines = ["email,name,status,city"]
    lines += [f"reader{n:04d}@example.org,Reader {n},subscribed,Lyon" for n in range(count)]
    text = "\n".join(lines) + "\n" + textwrap.dedent(extra_rows)
    path.write_text(text, encoding="utf-8")
    return path


def subscriber_addresses(count: int) -> set[str]:
    return {f"reader{n:04d}@example.org" for n in range(count)}


@pytest.fixture
def send_env(tmp_path: Path) -> dict[str, str]:
    """The settings of a real send (a signed https unsubscribe link, a reply-to, a state dir)."""
    return {
        "DIGEST_FROM": "Clippings <clippings@example.org>",
        "DIGEST_REPLY_TO": "editor@example.org",
        "DIGEST_SECRET": TEST_SECRET,
        "DIGEST_UNSUBSCRIBE_URL": "https://example.org/unsubscribe/{token}",
        "DIGEST_STATE_DIR": str(tmp_path / ".digest"),
        "DIGEST_BACKEND": "smtp",
    }


@dataclass(frozen=True)
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture
def run_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., CliResult]:
    """``run_digest("send", "content/2026-03.yaml", ..., env={...})``: the CLI in this process,
    in ``tmp_path``, with exactly the given settings and stdin not a terminal."""
    from digest.cli import cli
    from digest.cli.output import run_guarded

    monkeypatch.chdir(tmp_path)

    def run(*args: str, env: dict[str, str] | None = None) -> CliResult:
        with monkeypatch.context() as patch:
            import os

            for name in list(os.environ):
                if name.startswith(SETTING_PREFIXES):
                    patch.delenv(name)
            for name, value in (env or {}).items():
                patch.setenv(name, value)
            patch.setenv("NO_COLOR", "1")
            patch.setattr(sys, "argv", ["digest", *args])
            capsys.readouterr()
            code = run_guarded(cli)
            captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


# -- the browser ----------------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; never `playwright install`
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    # Without these, Chromium keeps dialling Google's hosts, which this network refuses.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Headless Debian Chromium driven by Playwright, one per test module. Missing: skipped on a
    developer's machine, an error in CI (``.ci/run`` installs it), so CI cannot pass without it."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: scripts/test.sh installs Debian's chromium")
        pytest.skip(f"Debian's {CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()
