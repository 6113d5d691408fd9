"""The schedule core: due decisions with a controlled clock, the send lock, job definitions."""

from __future__ import annotations

import configparser
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from digest.errors import LockedError
from digest.schedule import (
    cron_to_on_calendar,
    crontab_line,
    decide,
    due_editions,
    github_workflow,
    normalize_cron,
    systemd_units,
)
from digest.state import edition_lock
from digest.times import parse_duration

REPO = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 3, 31, 10, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


class FinishedSlugs:
    """Stands in for the ledger's one question the schedule asks (``is_finished``)."""

    def __init__(self, *finished: str) -> None:
        self.finished = set(finished)

    def is_finished(self, slug: str) -> bool:
        return slug in self.finished


def write_edition(folder: Path, name: str, send_at: str | None) -> Path:
    send_at_line = f"send_at: {send_at}\n" if send_at else ""
    text = textwrap.dedent(
        """\
        newsletter: Clippings
        edition: An edition
        subject: Clippings, this month
        {send_at_line}sections:
          - title: Papers
            items:
              - title: A paper
                url: https://example.org/a
        """
    ).format(send_at_line=send_at_line)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", timedelta(days=7)),
        ("36h", timedelta(hours=36)),
        ("90m", timedelta(minutes=90)),
        ("0", timedelta(0)),
        ("1d12h", timedelta(days=1, hours=12)),
        (" 2W ", timedelta(weeks=2)),
    ],
)
def test_parse_duration_reads_the_usual_forms(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "7", "7x", "d7", "-1d", "7 days", "1.5h"])
def test_parse_duration_refuses_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match=r"invalid duration .*e\.g\. 7d"):
        parse_duration(text)


# --------------------------------------------------------------------------- decisions


def test_not_due_says_when_it_will_be(tmp_path: Path) -> None:
    path = write_edition(tmp_path, "2026-04.yaml", "2026-04-30T09:00:00Z")
    decision = decide(path, now=NOW, max_late=WEEK, ledger=FinishedSlugs())
    assert decision.state == "not-due"
    assert decision.slug == "2026-04"
    assert "2026-04-30 09:00 UTC" in decision.reason
    assert "in 29d 23h" in decision.reason


def test_due_once_send_at_has_come(tmp_path: Path) -> None:
    path = write_edition(tmp_path, "2026-03.yaml", "2026-03-31T09:00:00Z")
    decision = decide(path, now=NOW, max_late=WEEK, ledger=FinishedSlugs())
    assert (decision.state, decision.should_send) == ("due", True)
    assert decision.send_at == datetime(2026, 3, 31, 9, 0, tzinfo=UTC)
    # Exactly at send_at is due too.
    exact = decide(path, now=decision.send_at, max_late=WEEK, ledger=FinishedSlugs())
    assert exact.state == "due"


def test_send_at_with_an_offset_is_compared_as_an_instant(tmp_path: Path) -> None:
    # 11:30 in Paris (+02:00) is 09:30 UTC: not yet at 09:00 UTC, due at 10:00 UTC.
    path = write_edition(tmp_path, "2026-03.yaml", "2026-03-31T11:30:00+02:00")
    early = datetime(2026, 3, 31, 9, 0, tzinfo=UTC)
    assert decide(path, now=early, max_late=WEEK, ledger=FinishedSlugs()).state == "not-due"
    assert decide(path, now=NOW, max_late=WEEK, ledger=FinishedSlugs()).state == "due"


def test_finished_edition_is_never_due_again(tmp_path: Path) -> None:
    path = write_edition(tmp_path, "2026-03.yaml", "2026-03-31T09:00:00Z")
    decision = decide(path, now=NOW, max_late=WEEK, ledger=FinishedSlugs("2026-03"))
    assert decision.state == "finished"
    assert not decision.should_send


def test_too_late_asks_for_a_human_and_names_the_command(tmp_path: Path) -> None:
    path = write_edition(tmp_path, "2026-02.yaml", "2026-02-28T09:00:00Z")
    decision = decide(
        path, now=NOW, max_late=WEEK, ledger=FinishedSlugs(), subscribers="subscribers.csv"
    )
    assert decision.state == "too-late"
    assert "31d 1h ago" in decision.reason
    assert f"digest send {path} --subscribers subscribers.csv" in decision.reason
    assert "--due --max-late 32d" in decision.reason
    # A longer grace period lets the same run send it.
    allowed = decide(path, now=NOW, max_late=parse_duration("32d"), ledger=FinishedSlugs())
    assert allowed.state == "due"


def test_without_send_at_it_is_skipped_with_a_note(tmp_path: Path) -> None:
    path = write_edition(tmp_path, "draft.yaml", None)
    decision = decide(path, now=NOW, max_late=WEEK, ledger=FinishedSlugs())
    assert decision.state == "no-send-at"
    assert "send_at" in decision.reason


def test_a_broken_edition_is_invalid_with_the_loader_message(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("newsletter: [unclosed\n", encoding="utf-8")
    decision = decide(path, now=NOW, max_late=WEEK, ledger=FinishedSlugs())
    assert decision.state == "invalid"
    assert str(path) in decision.reason


def test_a_naive_clock_is_refused(tmp_path: Path) -> None:
    path = write_edition(tmp_path, "2026-03.yaml", "2026-03-31T09:00:00Z")
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(path, now=datetime(2026, 3, 31, 10, 0), max_late=WEEK, ledger=FinishedSlugs())


def test_folder_oldest_first_and_undated_last(tmp_path: Path) -> None:
    write_edition(tmp_path, "a-later.yaml", "2026-03-31T09:00:00Z")
    write_edition(tmp_path, "b-earlier.yml", "2026-03-30T09:00:00Z")
    write_edition(tmp_path, "c-future.yaml", "2026-04-30T09:00:00Z")
    write_edition(tmp_path, "0-draft.yaml", None)
    (tmp_path / "notes.txt").write_text("not an edition", encoding="utf-8")
    decisions = due_editions(tmp_path, now=NOW, max_late=WEEK, ledger=FinishedSlugs())
    assert [(d.path.name, d.state) for d in decisions] == [
        ("b-earlier.yml", "due"),
        ("a-later.yaml", "due"),
        ("c-future.yaml", "not-due"),
        ("0-draft.yaml", "no-send-at"),
    ]


def test_a_single_file_gives_one_decision(tmp_path: Path) -> None:
    path = write_edition(tmp_path, "2026-03.yaml", "2026-03-31T09:00:00Z")
    decisions = due_editions(path, now=NOW, max_late=WEEK, ledger=FinishedSlugs())
    assert [d.path for d in decisions] == [path]


# --------------------------------------------------------------------------- the lock


def test_lock_is_exclusive_and_names_its_holder(tmp_path: Path) -> None:
    with edition_lock(tmp_path, "2026-03") as path:
        assert path == tmp_path / "locks" / "2026-03.lock"
        with (
            pytest.raises(LockedError, match=r"another run is sending 2026-03 \(pid \d+ on "),
            edition_lock(tmp_path, "2026-03"),
        ):
            pass
        # Another edition is not held up.
        with edition_lock(tmp_path, "2026-04"):
            pass
    with edition_lock(tmp_path, "2026-03"):
        pass  # released: free again


def test_lock_of_a_killed_process_is_recovered(tmp_path: Path) -> None:
    holder_code = textwrap.dedent(
        """\
        import sys, time
        from pathlib import Path
        from digest.state import edition_lock
        with edition_lock(Path(sys.argv[1]), "2026-03"):
            print("held", flush=True)
            time.sleep(60)
        """
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", holder_code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with (
            pytest.raises(LockedError, match=rf"pid {holder.pid} "),
            edition_lock(tmp_path, "2026-03"),
        ):
            pass
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
    finally:
        holder.kill()
        holder.wait()
    # The killed run left its lock file behind; the OS released its flock, so it is free.
    assert (tmp_path / "locks" / "2026-03.lock").exists()
    with edition_lock(tmp_path, "2026-03"):
        pass


def test_lock_refuses_a_slug_that_is_no_file_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="slug"), edition_lock(tmp_path, "../escape"):
        pass


# --------------------------------------------------------------------------- cron and systemd


@pytest.mark.parametrize(
    ("cron", "on_calendar"),
    [
        ("0 * * * *", "*-*-* *:00:00"),
        ("15 * * * *", "*-*-* *:15:00"),
        ("0 9 * * *", "*-*-* 09:00:00"),
        ("0 9 1 * *", "*-*-01 09:00:00"),
        ("30 7 * * 1", "Mon *-*-* 07:30:00"),
        ("30 7 * * 0", "Sun *-*-* 07:30:00"),
        ("30 7 * * 1-5", "Mon..Fri *-*-* 07:30:00"),
        ("30 7 * * mon,thu", "Mon,Thu *-*-* 07:30:00"),
        ("30 7 * * 0-2", "Sun,Mon..Tue *-*-* 07:30:00"),
        ("@monthly", "*-*-01 00:00:00"),
        ("@hourly", "*-*-* *:00:00"),
    ],
)
def test_cron_to_on_calendar(cron: str, on_calendar: str) -> None:
    assert cron_to_on_calendar(cron) == on_calendar
    if shutil.which("systemd-analyze"):
        checked = subprocess.run(
            ["systemd-analyze", "calendar", on_calendar], capture_output=True, text=True
        )
        assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize("cron", ["*/5 * * * *", "0 */2 * * *", "0 9 1 6 *", "0 9 1 * 1"])
def test_unsupported_shapes_suggest_a_supported_one(cron: str) -> None:
    with pytest.raises(ValueError, match=r"use --cron in one of the shapes .*0 9 1 \* \*"):
        cron_to_on_calendar(cron)


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("0 9 1 *", "must have 5 fields"),
        ("60 * * * *", "minute must be 0-59"),
        ("0 24 * * *", "hour must be 0-23"),
        ("0 9 32 * *", "day of month must be 1-31"),
        ("0 9 * * 8", "day of week must be 0-7"),
        ("0 9 * * ;rm", "bad day of week field"),
        ("0 9 * * xyz", "day of week must be 0-7"),
    ],
)
def test_bad_cron_is_refused_naming_the_field(cron: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalize_cron(cron)


def test_crontab_line_is_five_fields_and_a_command(tmp_path: Path) -> None:
    workdir = tmp_path / "my letters 100%"
    line = crontab_line(workdir, "0 9 1 * *", "/opt/digest/bin/digest", "subscribers.csv")
    assert "\n" not in line
    fields = line.split(" ", 5)
    assert fields[:5] == ["0", "9", "1", "*", "*"]
    command = fields[5]
    # cron would turn a bare % into a newline; the shell then sees the path unescaped.
    assert "100\\%" in command
    words = shlex.split(command.replace("\\%", "%"))
    assert words[:2] == ["cd", str(workdir)]
    start = words.index("/opt/digest/bin/digest")
    assert words[start + 1 : start + 9] == [
        "send",
        "content/",
        "--due",
        "--subscribers",
        "subscribers.csv",
        "--yes",
        "--log-format",
        "json",
    ]
    assert words[-3:] == [">>", ".digest/cron.log", "2>&1"]


def test_job_definitions_refuse_a_line_break(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="control character"):
        crontab_line(tmp_path, "0 * * * *", "digest", "subs.csv\n* * * * * evil")
    with pytest.raises(ValueError, match="control character"):
        systemd_units(tmp_path / "a\nb", "0 * * * *", "digest", "subscribers.csv")


def test_systemd_units_have_the_expected_keys(tmp_path: Path) -> None:
    service, timer = systemd_units(tmp_path, "0 9 1 * *", "/opt/digest/bin/digest", "s.csv")
    parsed_service = configparser.ConfigParser(interpolation=None)
    parsed_service.optionxform = str  # type: ignore[assignment,method-assign]
    parsed_service.read_string(service)
    assert parsed_service["Service"]["Type"] == "oneshot"
    assert parsed_service["Service"]["WorkingDirectory"] == str(tmp_path)
    assert parsed_service["Service"]["ExecStart"] == (
        "/opt/digest/bin/digest send content/ --due --subscribers s.csv --yes --log-format json"
    )
    assert "Description" in parsed_service["Unit"]
    parsed_timer = configparser.ConfigParser(interpolation=None)
    parsed_timer.optionxform = str  # type: ignore[assignment,method-assign]
    parsed_timer.read_string(timer)
    assert parsed_timer["Timer"]["OnCalendar"] == "*-*-01 09:00:00"
    assert parsed_timer["Timer"]["Persistent"] == "true"
    assert parsed_timer["Timer"]["Unit"] == "digest-send.service"
    assert parsed_timer["Install"]["WantedBy"] == "timers.target"


def test_systemd_quotes_spaces_and_escapes_specifiers(tmp_path: Path) -> None:
    service, _ = systemd_units(
        tmp_path / "100%", "0 * * * *", "/opt/my tools/digest", "my list.csv"
    )
    assert f"WorkingDirectory={tmp_path}/100%%\n" in service
    assert 'ExecStart="/opt/my tools/digest" send content/ --due --subscribers "my list.csv"' in (
        service
    )


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path) -> None:
    # verify checks that ExecStart's program exists: point it at a real executable.
    service, timer = systemd_units(tmp_path, "0 9 1 * *", sys.executable, "subscribers.csv")
    (tmp_path / "digest-send.service").write_text(service, encoding="utf-8")
    (tmp_path / "digest-send.timer").write_text(timer, encoding="utf-8")
    checked = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", "digest-send.timer", "digest-send.service"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    if "Failed to initialize manager" in checked.stderr:
        pytest.skip("systemd-analyze verify cannot run here: " + checked.stderr.strip())
    assert checked.returncode == 0, checked.stderr
    # verify only warns about unknown keys or bad values: none may be there.
    assert "digest-send" not in checked.stderr, checked.stderr


# --------------------------------------------------------------------------- GitHub Actions


def _load_workflow(text: str) -> dict:
    data = yaml.safe_load(text)
    # YAML 1.1 reads a bare `on` key as True.
    data["on"] = data.pop(True, data.get("on"))
    return data


def test_github_workflow_is_scheduled_guarded_and_keeps_the_ledger() -> None:
    text = github_workflow("0 9 1 * *", "subscribers.csv")
    workflow = _load_workflow(text)
    assert workflow["on"]["schedule"] == [{"cron": "0 9 1 * *"}]
    assert "workflow_dispatch" in workflow["on"]
    assert workflow["concurrency"]["cancel-in-progress"] is False
    job = workflow["jobs"]["send"]
    assert job["if"] == "${{ vars.DIGEST_SEND_ENABLED == 'true' }}"
    for secret in ("DIGEST_SECRET", "SMTP_PASSWORD", "MAILGUN_API_KEY"):
        assert job["env"][secret] == f"${{{{ secrets.{secret} }}}}"
    assert job["env"]["DIGEST_STATE_DIR"] == ".digest"

    steps = job["steps"]
    uses = [step.get("uses", "") for step in steps]
    restore = steps[uses.index("actions/cache/restore@v4")]
    send = next(i for i, step in enumerate(steps) if "digest send" in step.get("run", ""))
    save = steps[uses.index("actions/cache/save@v4")]
    assert uses.index("actions/cache/restore@v4") < send < uses.index("actions/cache/save@v4")
    assert restore["with"]["path"] == save["with"]["path"] == ".digest"
    assert restore["with"]["key"] == save["with"]["key"]
    assert "github.run_id" in save["with"]["key"]
    assert restore["with"]["restore-keys"].strip() == "digest-state-"
    assert save["if"] == "always()"  # a failed run's ledger is kept, so the next one resumes
    assert (
        "digest send content/ --due --subscribers subscribers.csv --yes --log-format json"
        in steps[send]["run"]
    )


def test_the_shipped_workflow_is_what_digest_schedule_prints() -> None:
    shipped = REPO / ".github" / "workflows" / "send-digest.yml"
    assert shipped.read_text(encoding="utf-8") == github_workflow()
    workflow = _load_workflow(shipped.read_text(encoding="utf-8"))
    assert workflow["on"]["schedule"] == [{"cron": "0 * * * *"}]
