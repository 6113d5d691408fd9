"""Printing for the CLI: one console for results (stdout), one for problems (stderr).

Colour only on a terminal and never when ``NO_COLOR`` is set (rich honours it). Every error the
core raises on purpose is printed as a message (with the next command to type when known), never
as a traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

import click
from rich.console import Console

from digest.errors import DigestError, Problem, ProblemsError

if TYPE_CHECKING:
    from digest.audience.suppressions import SuppressionStore

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def print_problems(problems: Iterable[Problem]) -> int:
    """Print each problem as ``PATH:LINE:COL: field: message`` on stderr; return how many."""
    count = 0
    for problem in problems:
        style = "yellow" if problem.severity == "warning" else "red"
        label = "warning" if problem.severity == "warning" else "error"
        err.print(f"{problem}", style=None, markup=False, end="")
        err.print(f"  [{style}]({label})[/{style}]" if err.is_terminal else "")
        count += 1
    return count


def print_error(exc: DigestError) -> None:
    if isinstance(exc, ProblemsError):
        print_problems(exc.problems)
        n = len(exc.problems)
        err.print(f"{n} problem{'s' if n != 1 else ''} found.", markup=False)
    else:
        err.print(f"error: {exc}", markup=False)
    if exc.hint:
        err.print(f"hint: {exc.hint}", markup=False)


def run_guarded(command: click.Group) -> int:
    """Run the click command; map our errors to exit codes; no traceback on bad input."""
    try:
        # Without standalone mode, click returns the command's return value (our exit code) and
        # the code of any click.exceptions.Exit instead of exiting itself.
        result = command.main(standalone_mode=False)
    except click.exceptions.Abort:
        err.print("Aborted.")
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except DigestError as exc:
        print_error(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("Interrupted. Rerun the same command to resume.")
        return 4
    except BrokenPipeError:
        # `digest status | head`: the reader went away; not an error of ours.
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - silence the interpreter's own flush
        return 0
    return result if isinstance(result, int) else 0


def print_already_suppressed(store: SuppressionStore, address: str) -> None:
    """What `add` and `unsubscribe` say when the address was on the list before."""
    existing = store.get(address)
    assert existing is not None  # add() just said it is there
    out.print(
        f"{existing.address} was already suppressed ({existing.reason}, "
        f"{existing.source}, since {existing.created_at}).",
        markup=False,
    )
