"""The rendered edition cached in the state folder (issue 16): a rerun does not render again,
any change to what shapes the email renders afresh, and a damaged cache file costs a render."""

from __future__ import annotations

import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import CliResult, write_subscribers
from smtp_server import SMTPTestServer

import digest.render.email as email_module

Run = Callable[..., CliResult]


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The slugs of every real render_edition call, in order."""
    calls: list[str] = []
    real = email_module.render_edition

    def counting(edition: Any, **kwargs: Any) -> Any:
        calls.append(edition.slug)
        return real(edition, **kwargs)

    monkeypatch.setattr(email_module, "render_edition", counting)
    return calls


def test_a_rerun_uses_the_rendered_edition_and_a_change_renders_again(
    run_digest: Run,
    smtp_server: SMTPTestServer,
    send_env: dict[str, str],
    tmp_path: Path,
    edition_file: Path,
    renders: list[str],
) -> None:
    write_subscribers(tmp_path / "subscribers.csv", 3)
    env = {**send_env, **smtp_server.env()}
    args = ("send", "content/2026-03.yaml", "--subscribers", "subscribers.csv", "--yes")
    assert run_digest(*args, "--limit", "1", env=env).exit_code == 0
    assert renders == ["2026-03"]
    cached = tmp_path / ".digest" / "rendered" / "2026-03.json"
    assert stat.S_IMODE(cached.stat().st_mode) == 0o600

    assert run_digest(*args, "--limit", "1", env=env).exit_code == 0
    assert renders == ["2026-03"]  # not rendered again
    first, second = smtp_server.messages
    html = [m.message.get_body(("html",)).get_content() for m in (first, second)]  # type: ignore[union-attr]
    personal = re.compile(r"unsubscribe/[\w.-]+|[Rr]eader ?000[01]")
    assert personal.sub("X", html[0]) == personal.sub("X", html[1])  # the same edition

    edition_file.write_text(
        edition_file.read_text(encoding="utf-8").replace("A paper about speech", "A new title"),
        encoding="utf-8",
    )
    assert run_digest(*args, env=env).exit_code == 0
    assert renders == ["2026-03", "2026-03"]
    assert "A new title" in smtp_server.messages[-1].message.get_body(("html",)).get_content()  # type: ignore[union-attr]


def test_a_damaged_cache_file_is_ignored(
    run_digest: Run,
    smtp_server: SMTPTestServer,
    send_env: dict[str, str],
    tmp_path: Path,
    edition_file: Path,
    renders: list[str],
) -> None:
    write_subscribers(tmp_path / "subscribers.csv", 2)
    env = {**send_env, **smtp_server.env()}
    args = ("send", "content/2026-03.yaml", "--subscribers", "subscribers.csv", "--yes")
    assert run_digest(*args, "--limit", "1", env=env).exit_code == 0
    cached = tmp_path / ".digest" / "rendered" / "2026-03.json"
    cached.write_text('{"key": "' + "0" * 40 + '", "html": 1}', encoding="utf-8")
    assert run_digest(*args, env=env).exit_code == 0
    assert len(renders) == 2
    cached.write_text("{not json", encoding="utf-8")
    assert run_digest(*args, "--retry-failed", env=env).exit_code == 0


def test_a_dry_run_writes_no_cache(
    run_digest: Run, send_env: dict[str, str], tmp_path: Path, edition_file: Path
) -> None:
    write_subscribers(tmp_path / "subscribers.csv", 1)
    done = run_digest(
        "send",
        "content/2026-03.yaml",
        "--subscribers",
        "subscribers.csv",
        "--dry-run",
        env=send_env,
    )
    assert done.exit_code == 0, done.output
    assert not (tmp_path / ".digest").exists()
