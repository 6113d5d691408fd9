"""The command line. It parses arguments, calls the core and prints; it is the only place that
exits. Each command lives in its own module and registers itself on :data:`cli`.

Exit codes (contract §3): 0 done; 1 bad input or configuration; 2 usage; 3 finished but some
recipients failed permanently; 4 stopped before the end (rerun to resume).
"""

from __future__ import annotations

import sys

import click

from digest import __version__
from digest.cli.output import run_guarded


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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


def _register() -> None:
    # Imported for their side effect of adding commands to `cli`; a module that is not there yet
    # (work in progress on a branch) must not break the others.
    import importlib

    for name in (
        "validate",
        "build",
        "preview",
        "send",
        "status",
        "schedule",
        "suppressions",
        "serve_unsubscribe",
    ):
        try:
            importlib.import_module(f"digest.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"digest.cli.{name}":
                raise


_register()


def main() -> None:
    sys.exit(run_guarded(cli))
