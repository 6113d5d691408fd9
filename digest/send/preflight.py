"""The checks `digest validate --subscribers` and `digest send` share, before anything is sent.

Everything found is returned as :class:`~digest.errors.Problem` records, never raised one at a
time, so the curator fixes all of it in one go. A setting's value is never quoted in a message
when the setting is a secret.
"""

from __future__ import annotations

from dataclasses import replace
from email.utils import getaddresses
from pathlib import Path

from email_validator import EmailNotValidError, validate_email

from digest.audience.subscribers import SubscriberReport, read_subscribers
from digest.audience.suppressions import SuppressionStore
from digest.backends.base import load_backend
from digest.batching import batched
from digest.edition.model import Edition
from digest.errors import ConfigError, Problem, SubscribersError
from digest.settings import Settings
from digest.tokens import fill_url, make_token, secret_problem

_SUPPRESSION_CHUNK = 500  # addresses looked up in the suppression store per query


def check_send_setup(
    edition: Edition,
    subscribers: Path,
    settings: Settings,
    backend: str | None,
    *,
    test: bool = False,
    report: SubscriberReport | None = None,
    suppressions: SuppressionStore | None = None,
    strict: bool = False,
) -> list[Problem]:
    """Every problem of the subscribers file, the send settings and the backend's settings.

    ``backend`` defaults to ``DIGEST_BACKEND``. With ``test`` (a ``--test`` proof) the
    unsubscribe settings are not required, as :class:`~digest.send.message.MessageFactory`.
    ``report``, when given, is filled with what the list holds; with ``suppressions`` its
    ``suppressed`` counts the sendable addresses a send would leave out.
    """
    problems = subscriber_problems(subscribers, report, suppressions, strict=strict)
    problems += settings_problems(edition, settings, test=test)
    problems += backend_problems(settings, backend)
    return problems


def subscriber_problems(
    subscribers: Path,
    report: SubscriberReport | None = None,
    suppressions: SuppressionStore | None = None,
    *,
    strict: bool = False,
) -> list[Problem]:
    """Row problems of the CSV (each at its line), or why the file cannot be used at all.

    A bad row is a warning, as in ``send``, which skips it (contract §2); with ``strict`` it is
    an error. A file that cannot be used at all is always an error."""
    report = report if report is not None else SubscriberReport(path=str(subscribers))
    try:
        rows = read_subscribers(subscribers, report)
        if suppressions is None:
            for _ in rows:
                pass  # the report is what is wanted
        else:
            for chunk in batched(rows, _SUPPRESSION_CHUNK):
                report.suppressed += len(suppressions.filter(s.email for s in chunk))
    except SubscribersError as exc:
        return [*row_problems(report, strict=strict), *exc.problems]
    return row_problems(report, strict=strict)


def row_problems(report: SubscriberReport, *, strict: bool) -> list[Problem]:
    """The bad rows ``report`` found: errors with ``strict``, else warnings."""
    if strict:
        return list(report.problems)
    return [replace(problem, severity="warning") for problem in report.problems]


def settings_problems(edition: Edition, settings: Settings, *, test: bool = False) -> list[Problem]:
    where = settings_source()
    problems: list[Problem] = []

    def problem(setting: str, message: str) -> None:
        problems.append(Problem(path=where, line=None, col=None, message=message, field=setting))

    if not settings.from_address:
        problem("DIGEST_FROM", "missing: the sender, e.g. Clippings <clippings@example.org>")
    elif (reason := _address_problem(settings.from_address, ascii_only=True)) is not None:
        problem("DIGEST_FROM", reason)
    if settings.reply_to and (reason := _address_problem(settings.reply_to)) is not None:
        problem("DIGEST_REPLY_TO", reason)
    if settings.unsubscribe_mailto:
        target = settings.unsubscribe_mailto.removeprefix("mailto:").split("?", 1)[0]
        if (reason := _address_problem(target)) is not None:
            problem("DIGEST_UNSUBSCRIBE_MAILTO", reason)
    if test:
        return problems
    secret = settings.secret.get_secret_value() if settings.secret is not None else None
    if (reason := secret_problem(secret)) is not None:
        problem("DIGEST_SECRET", reason)
    if not settings.unsubscribe_url and not settings.unsubscribe_mailto:
        problem(
            "DIGEST_UNSUBSCRIBE_URL",
            "missing: every message needs an unsubscribe link; set DIGEST_UNSUBSCRIBE_URL "
            "(https, holding {token}) and/or DIGEST_UNSUBSCRIBE_MAILTO",
        )
    elif settings.unsubscribe_url and settings.secret is not None:
        # A sample link, to catch a template that makes no usable URL once filled in.
        sample = fill_url(
            settings.unsubscribe_url,
            make_token(settings.secret.get_secret_value(), "reader@example.org", edition.slug),
        )
        if " " in sample or not sample.lower().startswith(("https://", "http://")):
            problem("DIGEST_UNSUBSCRIBE_URL", "does not make a usable URL once {token} is filled")
    return problems


def backend_problems(settings: Settings, backend: str | None) -> list[Problem]:
    """The chosen backend exists and has the settings it needs (contacts nothing).

    ``backend`` is the name the command line gave (``--backend``), or None for DIGEST_BACKEND;
    an unknown name is reported where it came from."""
    where = settings_source()
    name = backend or settings.backend
    try:
        backend_class = load_backend(name)
    except ConfigError as exc:
        message = settings.scrub(str(exc))
        if backend is not None:
            return [Problem(path="--backend", line=None, col=None, message=message)]
        return [Problem(path=where, line=None, col=None, message=message, field="DIGEST_BACKEND")]
    try:
        backend_class.check_settings(settings)
    except ConfigError as exc:
        message = f"{name} backend: {settings.scrub(str(exc))}"
        return [Problem(path=where, line=None, col=None, message=message)]
    return []


def settings_source() -> str:
    """Where a curator fixes a setting: ``.env`` when the working folder has one."""
    return ".env" if Path(".env").is_file() else "environment"


def _address_problem(value: str, *, ascii_only: bool = False) -> str | None:
    found = getaddresses([value])
    if len(found) != 1 or "@" not in found[0][1]:
        return f"not an email address: {value!r} (write it as Name <address@domain>)"
    try:
        checked = validate_email(found[0][1], check_deliverability=False)
    except EmailNotValidError as exc:
        return f"invalid address {found[0][1]!r}: {exc}"
    if ascii_only and checked.ascii_email is None:
        return f"the sender's address must be ASCII, not {found[0][1]!r}"
    return None
