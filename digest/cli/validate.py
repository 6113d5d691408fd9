"""``digest validate EDITION [--subscribers CSV]``: check before you build or send."""

from __future__ import annotations

import click

from digest.cli import cli
from digest.cli.options import backend_option
from digest.cli.output import err, out, print_problems
from digest.edition.load import load_edition
from digest.edition.model import Edition


@cli.command()
@click.argument("edition_path", metavar="EDITION", type=click.Path())
@click.option(
    "--subscribers",
    "subscribers_path",
    metavar="CSV",
    type=click.Path(dir_okay=False),
    help="Also check this subscribers list and the send settings (backend, sender, links).",
)
@click.option(
    "--backend",
    metavar="NAME",
    callback=backend_option,
    help="The backend whose settings to check with --subscribers (default: DIGEST_BACKEND).",
)
@click.option(
    "--strict",
    is_flag=True,
    help="With --subscribers: a bad row is an error (exit 1), not a warning that send skips.",
)
def validate(
    edition_path: str, subscribers_path: str | None, backend: str | None, strict: bool
) -> int:
    """Check EDITION (a YAML file) and print every problem as PATH:LINE:COL: field: message.

    Exits 1 when there is any problem, 0 when all is well. Warnings (those of `digest build`,
    bad subscriber rows without --strict) are printed and keep the exit code 0.

    \b
    Examples:
      digest validate content/2026-03.yaml
      digest validate content/2026-03.yaml --subscribers subscribers.csv
      digest validate content/2026-03.yaml --subscribers subscribers.csv --strict   # CI gate
    """
    if backend is not None and subscribers_path is None:
        raise click.UsageError("--backend is only used together with --subscribers")
    if strict and subscribers_path is None:
        raise click.UsageError("--strict is only used together with --subscribers")
    # EditionError carries every problem of the file; run_guarded prints them and exits 1.
    edition = load_edition(edition_path)
    out.print(f"{edition_path}: OK — {_summary(edition)}", markup=False)
    _print_warnings(edition)
    if subscribers_path is None:
        return 0
    return _check_send_setup(edition, subscribers_path, backend, strict=strict)


def _print_warnings(edition: Edition) -> None:
    """The one set of checks (digest.checks) that build, send and the preview run too, on the
    email as a sample subscriber gets it: the same warnings everywhere."""
    from digest.checks import Subject, run_checks, warnings_of
    from digest.errors import ConfigError
    from digest.render.email import render_edition
    from digest.render.sample import sample_values
    from digest.settings import Settings, load_settings

    try:
        settings = load_settings()
    except ConfigError:
        settings = Settings()  # the edition alone is checked; --subscribers checks settings
    rendered = render_edition(edition, archive_url=settings.archive_url)
    values = sample_values(settings, edition.slug)
    subject = Subject(edition, rendered.html.fill(values), rendered.text.fill(values))
    for finding in warnings_of(run_checks(subject)):
        err.print(f"warning: {finding}", markup=False)


def _check_send_setup(
    edition: Edition, subscribers_path: str, backend: str | None, *, strict: bool
) -> int:
    # Imported here: the send side is heavier and `validate` alone must not need it.
    from pathlib import Path

    from digest.audience.subscribers import SubscriberReport
    from digest.audience.suppressions import SuppressionStore
    from digest.send.preflight import check_send_setup
    from digest.settings import load_settings
    from digest.state import has_database

    settings = load_settings()
    report = SubscriberReport(path=subscribers_path)
    # Suppressed addresses are left out of every send: count them, but create no state folder.
    store = SuppressionStore(settings.state_dir) if has_database(settings.state_dir) else None
    try:
        problems = check_send_setup(
            edition,
            Path(subscribers_path),
            settings,
            backend,
            report=report,
            suppressions=store,
            strict=strict,
        )
    finally:
        if store is not None:
            store.close()
    print_problems(problems)
    if report.rows:
        out.print(report.summary_lines()[0], markup=False)
    errors = sum(1 for problem in problems if problem.severity != "warning")
    warnings = len(problems) - errors
    if errors:
        noun = "problem" if errors == 1 else "problems"
        err.print(f"{errors} {noun} found in the subscribers or send settings.", markup=False)
        return 1
    chosen = backend or settings.backend
    note = f" ({warnings} warning{'s' if warnings != 1 else ''})" if warnings else ""
    out.print(
        f"{subscribers_path}: OK — ready to send with the {chosen} backend{note}", markup=False
    )
    return 0


def _summary(edition: Edition) -> str:
    sections = len(edition.sections)
    items = len(edition.all_items())
    return (
        f"{edition.newsletter or ''}, {edition.edition}: "
        f"{sections} section{'s' if sections != 1 else ''}, {items} item{'s' if items != 1 else ''}"
    )
