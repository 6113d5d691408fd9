"""The command line. It parses arguments, calls the core and prints; it is the only place that
exits. Each command lives in its own module and registers itself on :data:`cli` when imported.

Exit codes (contract §3): 0 done; 1 bad input or configuration; 2 usage; 3 finished but some
recipients failed permanently; 4 stopped before the end (rerun to resume).
"""

from __future__ import annotations

import gc
import importlib
import shlex
import sys

import click

from digest import __version__
from digest.cli.output import run_guarded

# Command name -> the module that defines it. Modules are imported only when their command runs
# (or for --help): `digest validate` does not pay for the preview server's imports.
_COMMAND_MODULES = {
    "validate": "validate",
    "build": "build",
    "preview": "preview",
    "send": "send",
    "status": "status",
    "schedule": "schedule",
    "suppressions": "suppressions",
    "unsubscribe": "unsubscribe",
    "serve-unsubscribe": "serve_unsubscribe",
    "bounces": "bounces",
    "publish": "publish",
    "new": "new",
    "add": "add",
    "links": "links",
    "templates": "templates",
    "secret": "secret",
    "doctor": "doctor",
}


_TYPED = "digest.typed_args"  # ctx.meta key: the arguments as typed after `digest`


class _WholeHelpGroup(click.Group):
    """Lists each command with the whole first sentence of its help, wrapped: click's default
    cuts it to the terminal's width mid-sentence ("print every problem as PATH:LINE:COL:...")."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=_NO_LIMIT)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


_NO_LIMIT = 10_000  # click then stops at the end of the first sentence, never inside it


class _LazyGroup(_WholeHelpGroup):
    group_class = _WholeHelpGroup  # `@cli.group()` subcommand groups list their commands whole

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # Kept so a hint can show the curator's own command line with one option added.
        ctx.meta[_TYPED] = list(args)
        return super().parse_args(ctx, args)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(_COMMAND_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in _COMMAND_MODULES:
            # The module registers its command on `cli` as a side effect of being imported.
            importlib.import_module(f"digest.cli.{_COMMAND_MODULES[cmd_name]}")
        return self.commands.get(cmd_name)


@click.group(
    cls=_LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="digest")
def cli() -> None:
    """Email digests as code: validate, build, preview and send one YAML edition.

    \b
    Typical month:
      digest validate content/2026-03.yaml
      digest preview  content/2026-03.yaml
      digest send     content/2026-03.yaml --subscribers subscribers.csv --dry-run
      digest send     content/2026-03.yaml --subscribers subscribers.csv

    Settings come from the environment or ./.env (see .env.example).
    """


def typed_command(*added: str) -> str | None:
    """The command line being run, as typed, with ``added`` appended (``--yes``, say): the
    next command to type. None outside a command."""
    ctx = click.get_current_context(silent=True)
    typed = ctx.meta.get(_TYPED) if ctx is not None else None
    if typed is None:
        return None
    return shlex.join(["digest", *typed, *(a for a in added if a not in typed)])


def main() -> None:
    code = run_guarded(cli)
    # The process ends here. Python's last collection at exit walks every object still alive
    # (60 ms after a send of 10,000 messages); frozen, they are left to the exit itself. Every
    # file and database is closed by its own writer before this point.
    gc.freeze()
    sys.exit(code)
