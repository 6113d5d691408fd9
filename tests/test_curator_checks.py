"""What a curator is told before sending: every problem of a field, bad subscriber rows as
warnings (errors with --strict) in `validate`, and whole command descriptions in `--help`."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import click
import pytest
from conftest import TEST_SECRET

SETTINGS = {
    "DIGEST_FROM": "Clippings <clippings@example.org>",
    "DIGEST_SECRET": TEST_SECRET * 2,
    "DIGEST_UNSUBSCRIBE_URL": "https://example.org/unsubscribe/{token}",
    "SMTP_HOST": "127.0.0.1",
    "SMTP_PORT": "2525",
    "SMTP_SECURITY": "none",
}


def test_every_unsafe_construct_of_a_field_is_reported(tmp_path, run_digest):
    (tmp_path / "2026-03.yaml").write_text(
        textwrap.dedent(
            """\
            newsletter: Clippings
            edition: March 2026
            subject: S
            sections:
              - title: T
                items:
                  - title: X
                    url: https://example.org/
                    summary: |
                      A [link](javascript:alert(1)) here.
                      And <img src=x onerror=alert(1)> there.
            """
        ),
        encoding="utf-8",
    )
    result = run_digest("validate", "2026-03.yaml")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "2026-03.yaml:10:11: sections[0].items[0].summary: link target 'javascript:alert(1)' "
        "uses the scheme 'javascript'; only http, https and mailto",
        "2026-03.yaml:11:11: sections[0].items[0].summary: raw HTML is not allowed "
        "('<img src=x onerror=alert(1)>'); write Markdown, or put it in `backticks`",
        "2 problems found.",
    ]


def _list(path: Path) -> Path:
    path.write_text(
        "email,name\nada@example.org,Ada\nnot-an-address,Bob\ngrace@example.org,Grace,extra\n",
        encoding="utf-8",
    )
    return path


def test_bad_rows_are_warnings_unless_strict(edition_file, tmp_path, run_digest):
    subscribers = _list(tmp_path / "subscribers.csv")
    check = ("validate", str(edition_file), "--subscribers", str(subscribers), "--backend", "smtp")
    lenient = run_digest(*check, env=SETTINGS)
    assert lenient.exit_code == 0, lenient.output
    assert f"{subscribers}:3:1: email:" in lenient.stderr
    assert f"{subscribers}:4" in lenient.stderr
    assert "ready to send with the smtp backend (2 warnings)" in lenient.stdout

    strict = run_digest(*check, "--strict", env=SETTINGS)
    assert strict.exit_code == 1
    assert f"{subscribers}:3:1: email:" in strict.stderr
    assert "2 problems found in the subscribers or send settings." in strict.stderr

    alone = run_digest("validate", str(edition_file), "--strict")
    assert alone.exit_code == 2
    assert "--strict is only used together with --subscribers" in alone.stderr


def _entries(help_text: str) -> dict[str, str]:
    """The commands listed by a --help text, each with its description unwrapped."""
    listed = help_text.split("Commands:\n", 1)[1]
    entries: dict[str, str] = {}
    name = ""
    for line in listed.splitlines():
        match = re.match(r"^  (\S+)\s+(.*)$", line)
        if match:
            name = match.group(1)
            entries[name] = match.group(2).strip()
        elif line.strip() and name:
            entries[name] += " " + line.strip()
    return entries


def _first_sentence(help_text: str) -> str:
    paragraph = " ".join(help_text.split("\n\n", 1)[0].split())
    end = re.search(r"\.(\s|$)", paragraph)
    return paragraph[: end.start() + 1] if end else paragraph


@pytest.mark.parametrize("group", [(), ("suppressions",), ("bounces",)])
@pytest.mark.parametrize("columns", ["60", "100"])
def test_help_lists_each_command_with_its_whole_first_sentence(
    group, columns, run_digest, monkeypatch
):
    from digest.cli import cli

    monkeypatch.setenv("COLUMNS", columns)
    result = run_digest(*group, "--help")
    assert result.exit_code == 0
    entries = _entries(result.stdout)
    parent: click.Group = cli
    for name in group:
        found = cli.get_command(click.Context(cli), name)
        assert isinstance(found, click.Group)
        parent = found
    assert set(entries) == set(parent.list_commands(click.Context(parent)))
    for name, shown in entries.items():
        command = parent.get_command(click.Context(parent), name)
        assert command is not None and command.help
        assert not shown.endswith("..."), (name, shown)
        assert shown == _first_sentence(command.help), name


def test_status_lists_an_edition_past_max_late_as_missed(edition_file, tmp_path, run_digest):
    text = edition_file.read_text(encoding="utf-8")
    edition_file.write_text(text + "send_at: 2026-03-31T09:00:00Z\n", encoding="utf-8")
    env = {"DIGEST_STATE_DIR": str(tmp_path / ".digest")}
    late = run_digest(
        "status", str(edition_file), env={**env, "DIGEST_NOW": "2026-05-01T09:00:00Z"}
    )
    assert late.exit_code == 0
    assert late.stdout.splitlines() == [
        "2026-03: nothing sent yet.",
        "missed: was due at 2026-03-31 09:00 UTC, 31d ago, longer than --max-late 7d: not sent "
        f"automatically. If it should still go out, type `digest send {edition_file} "
        "--subscribers CSV` (without --due), or allow it with `--due --max-late 32d`",
    ]
    on_time = run_digest(
        "status", str(edition_file), env={**env, "DIGEST_NOW": "2026-04-02T09:00:00Z"}
    )
    assert on_time.stdout.splitlines() == ["2026-03: nothing sent yet."]
    as_json = run_digest(
        "status", str(edition_file), "--json", env={**env, "DIGEST_NOW": "2026-05-01T09:00:00Z"}
    )
    assert '"missed": "was due at 2026-03-31 09:00 UTC' in as_json.stdout


def test_validate_warns_as_build_does(tmp_path, run_digest):
    long_subject = "Clippings, March 2026: " + "a subject that goes on " * 4
    (tmp_path / "2026-03.yaml").write_text(
        textwrap.dedent(
            f"""\
            newsletter: Clippings
            edition: March 2026
            subject: "{long_subject.strip()}"
            preheader: "A preheader long enough for the inbox preview line, about fifty."
            sections:
              - title: T
                items:
                  - title: X
                    url: https://example.org/
            """
        ),
        encoding="utf-8",
    )
    validated = run_digest("validate", "2026-03.yaml")
    built = run_digest("build", "2026-03.yaml", "--out", str(tmp_path / "dist"))
    assert validated.exit_code == built.exit_code == 0
    warnings = [line for line in built.stderr.splitlines() if line.startswith("warning: ")]
    assert warnings == [
        f"warning: Subject length: {len(long_subject.strip())} characters: inboxes cut it near 78"
    ]
    assert validated.stderr.splitlines() == warnings
