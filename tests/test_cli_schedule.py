"""`digest schedule`: the printed job definitions are complete, valid and ready to paste."""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from conftest import CliResult

REPO = Path(__file__).resolve().parent.parent


def sections(output: str) -> dict[str, str]:
    """The printed text split at its `## N. title` headings, keyed by the heading's first word."""
    parts = re.split(r"^## \d+\. (\S+).*$", output, flags=re.MULTILINE)
    return {name: body.strip("\n") for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def unit(text: str) -> configparser.ConfigParser:
    parsed = configparser.ConfigParser(interpolation=None)
    parsed.optionxform = str  # type: ignore[assignment,method-assign]
    parsed.read_string(text)
    return parsed


def test_prints_the_three_definitions_for_this_folder(
    tmp_path: Path, run_digest: Callable[..., CliResult]
) -> None:
    result = run_digest("schedule")
    assert result.exit_code == 0, result.output
    found = sections(result.stdout)
    assert list(found) == ["crontab", "systemd", "GitHub"]

    (cron_line,) = [line for line in found["crontab"].splitlines() if not line.startswith("#")]
    fields = cron_line.split(" ", 5)
    assert fields[:5] == ["0", "*", "*", "*", "*"]  # hourly: --due decides
    command = fields[5]
    assert command.startswith(f"cd {tmp_path} && ")
    executable = command.split(" && ")[2].split(" ")[0]
    assert Path(executable).is_absolute() and os.access(executable, os.X_OK)
    assert "send content/ --due --subscribers subscribers.csv --yes --log-format json" in command

    service_text, timer_text = found["systemd"].split("# ~/.config/systemd/user/digest-send.timer")
    service = unit(service_text)
    assert service["Service"]["WorkingDirectory"] == str(tmp_path)
    assert service["Service"]["ExecStart"].startswith(executable + " send content/ --due ")
    assert unit(timer_text)["Timer"]["OnCalendar"] == "*-*-* *:00:00"

    workflow = yaml.safe_load(found["GitHub"])
    assert workflow[True]["schedule"] == [{"cron": "0 * * * *"}]  # YAML 1.1 reads `on` as True
    assert "subscribers.csv is not in" in result.stderr  # a note, not an error


def test_cron_override_reaches_every_definition(
    tmp_path: Path, run_digest: Callable[..., CliResult]
) -> None:
    (tmp_path / "subscribers.csv").write_text("email\na@example.org\n", encoding="utf-8")
    (tmp_path / "content").mkdir()
    result = run_digest("schedule", "--cron", "0 9 1 * *", "--subscribers", "subscribers.csv")
    assert result.exit_code == 0, result.output
    found = sections(result.stdout)
    assert "\n0 9 1 * * cd " in "\n" + found["crontab"]
    assert "OnCalendar=*-*-01 09:00:00" in found["systemd"]
    assert yaml.safe_load(found["GitHub"])[True]["schedule"] == [{"cron": "0 9 1 * *"}]
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("*/5 * * * *", "use --cron in one of the shapes"),
        ("every day", "must have 5 fields"),
        ("0 25 * * *", "hour must be 0-23"),
    ],
)
def test_a_cron_that_cannot_be_used_is_a_usage_error(
    run_digest: Callable[..., CliResult], cron: str, message: str
) -> None:
    result = run_digest("schedule", "--cron", cron)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_only_github_prints_the_shipped_workflow(run_digest: Callable[..., CliResult]) -> None:
    result = run_digest("schedule", "--only", "github")
    assert result.exit_code == 0, result.output
    shipped = REPO / ".github" / "workflows" / "send-digest.yml"
    assert result.stdout == shipped.read_text(encoding="utf-8")


def test_the_printed_crontab_command_runs(
    tmp_path: Path, run_digest: Callable[..., CliResult], send_env: dict[str, str]
) -> None:
    """The command part of the line, run by a shell as cron would: it logs to .digest/cron.log."""
    content = tmp_path / "content"
    content.mkdir()
    (content / "2026-04.yaml").write_text(
        textwrap.dedent(
            """\
            newsletter: Clippings
            edition: April 2026
            subject: Clippings, April 2026
            send_at: 2026-04-30T09:00:00Z
            sections:
              - title: Papers
                items:
                  - title: A paper
                    url: https://example.org/a
            """
        ),
        encoding="utf-8",
    )
    (tmp_path / "subscribers.csv").write_text("email\na@example.org\n", encoding="utf-8")
    line = run_digest("schedule", "--only", "crontab").stdout.strip()
    command = line.split(" ", 5)[5].replace("\\%", "%")  # what cron hands to the shell
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DIGEST_", "SMTP_"))}
    env.update(send_env, DIGEST_NOW="2026-03-31T10:00:00Z", DIGEST_STATE_DIR=".digest")
    ran = subprocess.run(["sh", "-c", command], cwd="/", env=env, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    (event,) = [json.loads(x) for x in (tmp_path / ".digest" / "cron.log").read_text().splitlines()]
    assert (event["event"], event["slug"]) == ("not-due", "2026-04")


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_the_printed_systemd_units_verify(
    tmp_path: Path, run_digest: Callable[..., CliResult]
) -> None:
    printed = run_digest("schedule", "--only", "systemd", "--cron", "30 8 * * 1").stdout
    service, timer = printed.split("# digest-send.timer\n")
    (tmp_path / "digest-send.service").write_text(service.split("\n", 1)[1], encoding="utf-8")
    (tmp_path / "digest-send.timer").write_text(timer, encoding="utf-8")
    checked = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", "digest-send.timer", "digest-send.service"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    if "Failed to initialize manager" in checked.stderr:
        pytest.skip("systemd-analyze verify cannot run here")
    assert checked.returncode == 0, checked.stderr
    assert "digest-send" not in checked.stderr, checked.stderr
    assert "OnCalendar=Mon *-*-* 08:30:00" in timer


def test_a_job_naming_a_folder_or_list_not_there_is_noted_even_with_only(
    tmp_path: Path, run_digest: Callable[..., CliResult]
) -> None:
    result = run_digest("schedule", "--only", "crontab", "--content", "contnt/")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("\n") == 1  # the bare line, ready for `>> crontab`
    assert result.stderr.splitlines() == [
        f"note: the folder contnt/ is not in {tmp_path}; the jobs send the editions in it "
        "(--content names another folder)",
        f"note: subscribers.csv is not in {tmp_path} yet; the jobs need it "
        "(on GitHub it may come from the SUBSCRIBERS_CSV secret instead)",
    ]
    (tmp_path / "contnt").mkdir()
    (tmp_path / "subscribers.csv").write_text("email\nada@example.org\n", encoding="utf-8")
    assert run_digest("schedule", "--only", "crontab", "--content", "contnt/").stderr == ""
