"""`digest schedule`: print ready-to-paste job definitions that run `digest send --due`."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import click

from digest.cli import cli
from digest.cli.output import err, out
from digest.schedule import (
    DEFAULT_CRON,
    crontab_line,
    github_workflow,
    normalize_cron,
    systemd_units,
)

_KINDS = ("crontab", "systemd", "github")


def digest_executable() -> str:
    """The absolute path of the `digest` being run, for a job that has no PATH of ours."""
    invoked = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if invoked is not None and invoked.name == "digest" and invoked.is_file():
        return str(invoked.resolve())
    beside_python = Path(sys.executable).parent / "digest"
    if beside_python.is_file():
        return str(beside_python)
    return shutil.which("digest") or "digest"


@cli.command("schedule")
@click.option(
    "--cron",
    "cron",
    default=DEFAULT_CRON,
    show_default=True,
    metavar="EXPR",
    help='When the job runs (cron syntax). Hourly is safe: --due decides. E.g. "0 9 1 * *".',
)
@click.option(
    "--subscribers",
    default="subscribers.csv",
    show_default=True,
    metavar="CSV",
    help="The subscriber list, relative to this folder.",
)
@click.option(
    "--content",
    default="content/",
    show_default=True,
    metavar="FOLDER",
    help="The folder of editions (every due one is sent, oldest first).",
)
@click.option(
    "--only",
    type=click.Choice(_KINDS),
    default=None,
    help="Print only this definition, bare (e.g. to write the workflow file).",
)
def schedule_command(cron: str, subscribers: str, content: str, only: str | None) -> int:
    """Print job definitions (crontab, systemd timer, GitHub Actions) for `digest send --due`.

    \b
    The jobs run in this folder, where .env and the send ledger live:
      digest send CONTENT --due --subscribers CSV --yes --log-format json
    """
    try:
        schedule = normalize_cron(cron)
        workdir = Path.cwd().resolve()
        executable = digest_executable()
        cron_text = crontab_line(workdir, schedule, executable, subscribers, content=content)
        service, timer = systemd_units(workdir, schedule, executable, subscribers, content=content)
        workflow = github_workflow(schedule, subscribers, content=content)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--cron") from exc

    if only is not None:
        _note_what_is_missing(workdir, subscribers, content)
    if only == "crontab":
        out.print(cron_text, markup=False)
        return 0
    if only == "github":
        out.print(workflow, markup=False, end="")
        return 0
    if only == "systemd":
        out.print(f"# digest-send.service\n{service}\n# digest-send.timer\n{timer}", markup=False)
        return 0

    sections = [
        f"# Jobs for {workdir}, on cron {schedule!r}.",
        "# Safe to fire often: --due sends an edition once, when its send_at has come.",
        "",
        "## 1. crontab (run `crontab -e` and paste this line)",
        cron_text,
        "",
        "## 2. systemd user timer (no root needed)",
        "# ~/.config/systemd/user/digest-send.service",
        service,
        "# ~/.config/systemd/user/digest-send.timer",
        timer,
        "# Then: systemctl --user daemon-reload && systemctl --user enable --now digest-send.timer",
        "#       loginctl enable-linger  (so it also runs while you are logged out)",
        "",
        "## 3. GitHub Actions (.github/workflows/send-digest.yml; times are UTC)",
        workflow,
    ]
    out.print("\n".join(sections), markup=False)
    _note_what_is_missing(workdir, subscribers, content)
    return 0


def _note_what_is_missing(workdir: Path, subscribers: str, content: str) -> None:
    """A job that names a file not there fails at every run: say so now, on stderr (the
    printed definitions stay clean to paste or redirect)."""
    if not (workdir / content).is_dir():
        err.print(
            f"note: the folder {content} is not in {workdir}; the jobs send the editions in it "
            "(--content names another folder)",
            markup=False,
        )
    if not (workdir / subscribers).is_file():
        err.print(
            f"note: {subscribers} is not in {workdir} yet; the jobs need it "
            "(on GitHub it may come from the SUBSCRIBERS_CSV secret instead)",
            markup=False,
        )
