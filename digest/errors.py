"""The typed errors the core raises. The CLI maps them to exit codes; the core never exits.

Every error that concerns a place in a file carries :class:`Problem` records that print as
``PATH:LINE:COL: field: message`` so editors and CI annotate the exact spot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One mistake at one place of one file."""

    path: str
    line: int | None
    col: int | None
    message: str
    field: str | None = None
    severity: str = "error"  # "error" or "warning"

    def __str__(self) -> str:
        where = self.path
        if self.line is not None:
            where += f":{self.line}"
            if self.col is not None:
                where += f":{self.col}"
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.message}"


class DigestError(Exception):
    """Base of every error the core raises on purpose. Exit code 1 unless a subclass says else."""

    exit_code = 1
    hint: str | None = None  # the next command to type, when there is one

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint


class ProblemsError(DigestError):
    """A file holds one or more mistakes; all of them are listed, not just the first."""

    def __init__(self, problems: Sequence[Problem], *, hint: str | None = None) -> None:
        self.problems = list(problems)
        first = str(self.problems[0]) if self.problems else "invalid input"
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(first + more, hint=hint)


class EditionError(ProblemsError):
    """The edition file cannot be read or does not match the schema."""


class SubscribersError(ProblemsError):
    """The subscribers CSV cannot be used at all (no header, no email column, no rows...)."""


class ConfigError(DigestError):
    """A setting is missing or wrong (DIGEST_FROM, SMTP_HOST, ...). Nothing was sent."""


class TemplateError(DigestError):
    """An email template (packaged or ./email_templates/) is broken (syntax, undefined, MJML)."""


class BackendError(DigestError):
    """A provider refused or failed. Carries the provider's response, never a secret.

    ``transient`` errors (SMTP 4xx, HTTP 429/5xx, timeouts, dropped connections) are retried;
    the others fail the recipient(s) concerned.
    """

    def __init__(
        self,
        message: str,
        *,
        transient: bool,
        status: int | None = None,
        response: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.transient = transient
        self.status = status
        self.response = response
        self.retry_after = retry_after


class SendStopped(DigestError):
    """The run stopped before the end (interrupt, server down). Rerun the same command to resume."""

    exit_code = 4


class LockedError(DigestError):
    """Another run holds this edition's send lock."""


def files_beside(shown: str, suffixes: tuple[str, ...]) -> list[str]:
    """Files in the folder of ``shown`` (a path as the user typed it) whose names end in one of
    ``suffixes``, as paths written the same way; newest-named first (2026-04 before 2026-03)."""
    import os

    folder = os.path.dirname(shown)
    try:
        names = [
            entry.name
            for entry in os.scandir(folder or ".")
            if entry.name.lower().endswith(suffixes) and entry.is_file()
        ]
    except OSError:
        return []
    return [os.path.join(folder, name) for name in sorted(names, reverse=True)]


def similar_files(shown: str, suffixes: tuple[str, ...]) -> list[str]:
    """Of :func:`files_beside`, those whose names look like a slip for ``shown``'s, closest
    first: the material of a "did you mean ...?" hint."""
    import difflib
    import os

    candidates = {os.path.basename(path): path for path in files_beside(shown, suffixes)}
    wanted = os.path.basename(shown)
    close = difflib.get_close_matches(wanted, list(candidates), n=3, cutoff=0.6)
    return [candidates[name] for name in close]
