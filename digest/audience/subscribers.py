"""The subscribers CSV (contract §2), streamed: a million rows in constant memory.

The file is read twice, both times as a stream. The first pass notes every address that has a
row which is not a clean ``subscribed`` row (unsubscribed, bounced, complained, or a row we could
not understand): such an address is never sent to, even when its blocking row comes after a
``subscribed`` one (the result is kept for the file's exact bytes, so reading the same list
again, as ``digest send`` does after its counting pass, skips this pass). The second pass yields
each sendable address once (its first row) and fills the :class:`SubscriberReport`. Addresses
are remembered as 8-byte digests in a flat table sized once from the first pass's row count, not
as strings: a million addresses cost 16 MB, not hundreds.

Line numbers are physical lines of the file: a quoted field may span lines, and a row is
reported at the line where it starts.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import io
import itertools
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from digest.addresses import normalise_address, why_invalid
from digest.audience.digest_set import DigestSet
from digest.errors import Problem, SubscribersError, similar_files
from digest.spreadsheet import ADDRESS_FORMULA_STARTS
from digest.subscriber import Subscriber

if TYPE_CHECKING:
    from _csv import Reader

STATUSES = ("subscribed", "unsubscribed", "bounced", "complained")
DELIMITERS = (",", ";", "\t")
MAX_PROBLEM_LINES = 10

# C0 and C1 control characters and the Unicode line separators: none belongs in a name or an
# address, and each could split a header or a line somewhere downstream.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Header names that mean the address column (compared by their letters only, lower-cased).
_EMAIL_LIKE = frozenset(
    {
        "email",
        "mail",
        "emails",
        "emailaddress",
        "mailaddress",
        "address",
        "emailadresse",
        "courriel",
    }
)
_NOT_LETTERS = re.compile(r"[^a-z]")
_QUOTED = re.compile(r'"[^"]*"')


@dataclass
class SubscriberReport:
    """What reading the file found. ``rows`` = subscribed + sum(by_status) + duplicates + the
    rows reported in ``problems``."""

    path: str
    rows: int = 0  # data rows read (blank lines are not rows)
    subscribed: int = 0  # sendable, unique
    by_status: Counter[str] = field(default_factory=Counter)  # unsubscribed/bounced/complained
    duplicates: int = 0
    problems: list[Problem] = field(default_factory=list)
    # Of the sendable ones, those on the suppression list (counted by callers that check it).
    suppressed: int = 0

    @property
    def invalid(self) -> int:
        return len(self.problems)

    def summary_lines(self) -> list[str]:
        """A short summary: the counts, then at most ten problems and how many more there are."""
        parts = [f"{self.subscribed - self.suppressed} to send"]
        if self.suppressed:
            parts.append(f"{self.suppressed} suppressed")
        parts += [f"{count} {status}" for status, count in sorted(self.by_status.items())]
        if self.duplicates:
            parts.append(f"{self.duplicates} duplicate{'s' if self.duplicates != 1 else ''}")
        if self.problems:
            n = len(self.problems)
            parts.append(f"{n} invalid row{'s' if n != 1 else ''} skipped")
        noun = "row" if self.rows == 1 else "rows"
        lines = [f"{self.path}: {self.rows} {noun}: {', '.join(parts)}"]
        lines += [f"  {problem}" for problem in self.problems[:MAX_PROBLEM_LINES]]
        if len(self.problems) > MAX_PROBLEM_LINES:
            lines.append(f"  ... and {len(self.problems) - MAX_PROBLEM_LINES} more")
        return lines


@dataclass(frozen=True, slots=True)
class _Columns:
    email: int
    name: int | None
    status: int | None
    others: tuple[tuple[int, str], ...]  # (index, header as written) of every other column
    width: int  # number of columns in the header


# One data row: the line it starts on, its cells (None when the csv module could not parse it)
# and then why. A plain tuple: a million of them are made per read.
_Row = tuple[int, list[str] | None, str | None]


@dataclass(frozen=True, slots=True)
class _FirstPass:
    """What the first pass over one version of a file found."""

    blocked: DigestSet  # digests of the addresses never sent to
    rows: int  # data rows: the most addresses the second pass can remember


def read_subscribers(path: Path, report: SubscriberReport) -> Iterator[Subscriber]:
    """Yield each sendable subscriber once, in file order, filling ``report`` as it goes.

    Raises :class:`SubscribersError` when the file cannot be used at all: missing, not UTF-8,
    no header, no ``email`` column, no data row, or no row that is not invalid (raised once the
    whole file is read: every sendable row has been yielded by then).
    """
    first = _first_pass(path, report.path)
    blocked = first.blocked
    any_blocked = len(blocked) > 0  # the common list has none: skip a lookup per row
    # Sized for every row at once: growing by doubling would hold the old and the new table
    # together (24 MB instead of 16 for a million rows) and re-insert every digest.
    seen = DigestSet(capacity=first.rows)
    shown_path = report.path
    with _table(path, shown_path) as (columns, rows):
        for line, values, error in rows:
            report.rows += 1
            outcome = _parse_row(line, values, error, columns, shown_path)
            if isinstance(outcome, Problem):
                report.problems.append(outcome)
                continue
            email, name, status, fields = outcome
            key = _digest(email)
            if status == "subscribed":
                # An address with any other row (even a later one) is not sent to. `add`
                # answers False when the address was seen before: one lookup, not two.
                if (any_blocked and key in blocked) or not seen.add(key):
                    report.duplicates += 1
                    continue
                report.subscribed += 1
                yield Subscriber(email, name, fields, line)
            elif not seen.add(key):
                report.duplicates += 1
            else:
                report.by_status[status] += 1
    if report.rows == 0:
        raise SubscribersError(
            [Problem(report.path, 1, None, "no subscriber row: the file holds only a header")]
        )
    if report.invalid == report.rows:
        # Not one row could be read: most likely the wrong file or a broken export, not a list
        # whose every reader left (that one is fine, and sends nothing).
        which = "its only row is" if report.rows == 1 else f"all {report.rows} rows are"
        raise SubscribersError(
            [Problem(report.path, None, None, f"no usable subscriber row: {which} invalid")]
        )


# The first pass of the last file read, keyed by a digest of its bytes: `digest send` reads the
# list twice (the pass that checks and counts it all before anything is sent, then the send),
# and the second read need not scan and parse every row a third time for it. Hashing the bytes
# costs ~1 ms per MB, a small fraction of the scan, and no rewrite of the file can fool it.
_last_first_pass: tuple[bytes, _FirstPass] | None = None


def _content_digest(path: Path) -> bytes | None:
    try:
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "blake2b").digest()
    except OSError:
        return None  # the read itself reports it, at the right place


def _first_pass(path: Path, shown_path: str) -> _FirstPass:
    global _last_first_pass
    version = _content_digest(path)
    if version is not None and _last_first_pass is not None and _last_first_pass[0] == version:
        return _last_first_pass[1]
    first = _scan_blocked(path, shown_path)
    # The digest was taken before the scan: a file changed while it was read gets another
    # digest next time, and is scanned again.
    if version is not None:
        _last_first_pass = (version, first)
    return first


def _scan_blocked(path: Path, shown_path: str) -> _FirstPass:
    """Digests of every address having a row that is not a clean ``subscribed`` row, and the
    number of data rows."""
    blocked = DigestSet()
    count = 0
    with _table(path, shown_path) as (columns, rows):
        status_at, width = columns.status, columns.width
        for _line, values, _error in rows:
            count += 1
            if values is None:
                continue
            status = ""
            if status_at is not None and status_at < len(values):  # a short row has none
                status = values[status_at]
                if status != "subscribed":  # as written in nearly every row: no copies
                    status = status.strip().lower()
            if status in ("", "subscribed") and _looks_clean(values, width):
                continue  # the common case, decided without validating the address
            # Not subscribed, or a row we could not understand (it may well have been an
            # unsubscribe): its address is never sent to.
            raw = values[columns.email] if columns.email < len(values) else ""
            email = normalise_address(raw.strip())
            if email is not None:
                blocked.add(_digest(email))
    return _FirstPass(blocked, count)


def _looks_clean(values: list[str], width: int) -> bool:
    if len(values) > width and any(v.strip() for v in values[width:]):
        return False
    return not _CONTROL.search("".join(values))


@contextlib.contextmanager
def _table(path: Path, shown_path: str) -> Iterator[tuple[_Columns, Iterator[_Row]]]:
    """The header's columns, and every non-blank data row with the line it starts on."""
    try:
        binary = path.open("rb")
    except FileNotFoundError as exc:
        nearby = similar_files(shown_path, (".csv", ".tsv", ".txt"))
        guess = f" (did you mean {nearby[0]}?)" if nearby else ""
        raise SubscribersError(
            [Problem(shown_path, None, None, f"cannot read: no such file{guess}")]
        ) from exc
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise SubscribersError([Problem(shown_path, None, None, f"cannot read: {reason}")]) from exc
    with binary:
        text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
        try:
            reader, columns = _header(text, shown_path)
            yield columns, _data_rows(reader)
        except UnicodeDecodeError as exc:
            binary.seek(0)
            line, col = _undecodable_position(binary)
            raise SubscribersError(
                [Problem(shown_path, line, col, "not UTF-8 text (save the file as UTF-8 CSV)")]
            ) from exc


def _header(text: io.TextIOWrapper, shown_path: str) -> tuple[Reader, _Columns]:
    """The CSV reader, past the header row, and the columns that row names."""
    first_line = text.readline()
    while first_line and not first_line.strip():
        first_line = text.readline()  # tolerate blank lines before the header
    if not first_line:
        raise SubscribersError(
            [
                Problem(
                    shown_path,
                    1,
                    None,
                    "empty file: a header row with an `email` column is required",
                )
            ]
        )
    delimiter = _delimiter_of(first_line)
    reader = csv.reader(itertools.chain((first_line,), text), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except csv.Error as exc:  # an unclosed quote, a header past the field size limit
        raise SubscribersError(
            [Problem(shown_path, reader.line_num or 1, None, f"the header row is not CSV ({exc})")]
        ) from None
    return reader, _columns_of(header, reader.line_num, shown_path)


def _data_rows(reader: Reader) -> Iterator[_Row]:
    previous_end = reader.line_num
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The reader resets itself on the next call, so the following rows still count.
            row: _Row = (previous_end + 1, None, f"cannot be parsed as CSV ({exc})")
            previous_end = reader.line_num
            yield row
            continue
        start = previous_end + 1
        previous_end = reader.line_num
        if not values or (len(values) == 1 and not values[0].strip()):
            continue  # a blank line is not a row
        yield start, values, None


def _delimiter_of(header_line: str) -> str:
    """Comma, semicolon or tab: whichever the header uses most (quoted parts ignored)."""
    unquoted = _QUOTED.sub("", header_line)
    counts = {d: unquoted.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])  # ties keep the order comma, semicolon, tab
    return best if counts[best] else ","


def _columns_of(header: list[str], line: int, shown_path: str) -> _Columns:
    names = [name.strip() for name in header]
    lowered = [name.lower() for name in names]
    problems = []
    for wanted in ("email", "name", "status"):
        if lowered.count(wanted) > 1:
            problems.append(Problem(shown_path, line, None, f"the header names `{wanted}` twice"))
    if "email" not in lowered:
        # Names cut short: a hostile header must not make the message megabytes long.
        shown = ", ".join(repr(n[:40]) for n in names[:8]) + (", ..." if len(names) > 8 else "")
        meant = [i for i, name in enumerate(names) if _letters(name) in _EMAIL_LIKE]
        if meant:
            # `E-mail`, `Email Address`: one word to change in the header, say which.
            fix = f"rename the column {names[meant[0]][:40]!r} to email"
            column: int | None = meant[0] + 1
        else:
            fix = "the first row must be a header such as: email,name"
            column = None
        problems.append(
            Problem(
                shown_path, line, column, f"no `email` column in the header (found {shown}); {fix}"
            )
        )
    for index, name in enumerate(names):
        if _CONTROL.search(name):
            problems.append(
                Problem(shown_path, line, index + 1, "a header name holds a control character")
            )
    if problems:
        raise SubscribersError(problems)
    others = tuple(
        (index, name)
        for index, name in enumerate(names)
        if name and lowered[index] not in ("email", "name", "status")
    )
    return _Columns(
        email=lowered.index("email"),
        name=lowered.index("name") if "name" in lowered else None,
        status=lowered.index("status") if "status" in lowered else None,
        others=others,
        width=len(names),
    )


def _letters(name: str) -> str:
    return _NOT_LETTERS.sub("", name.lower())


def _parse_row(
    line: int, values: list[str] | None, error: str | None, columns: _Columns, shown_path: str
) -> Problem | tuple[str, str, str, dict[str, str]]:
    """(email, name, status, fields) of a valid row, else the Problem that makes it invalid."""
    if values is None:
        return Problem(shown_path, line, None, error or "cannot be parsed as CSV")
    width = len(values)
    if width > columns.width:
        # Trailing empty cells (a spreadsheet's stray delimiters) are harmless.
        if any(v.strip() for v in values[columns.width :]):
            return Problem(
                shown_path,
                line,
                columns.width + 1,
                f"too many fields: {width} where the header has {columns.width}",
            )
        values = values[: columns.width]
        width = columns.width
    if _CONTROL.search("".join(values)):  # one search per row; find the column only then
        for index, value in enumerate(values):
            if match := _CONTROL.search(value):
                return Problem(
                    shown_path,
                    line,
                    index + 1,
                    f"holds a control character ({match.group()!r})",
                    field=_column_name(columns, index),
                )
    if width == columns.width:  # a full row, the common case: index it directly
        raw_email = values[columns.email].strip()
        name = "" if columns.name is None else values[columns.name].strip()
        raw_status = "" if columns.status is None else values[columns.status].strip()
    else:
        raw_email = _cell(values, columns.email)
        name = _cell(values, columns.name)
        raw_status = _cell(values, columns.status)
    if not raw_email:
        return Problem(shown_path, line, columns.email + 1, "no address", field="email")
    if raw_email.startswith(ADDRESS_FORMULA_STARTS):
        return Problem(
            shown_path,
            line,
            columns.email + 1,
            f"{raw_email!r}: starts with {raw_email[0]!r}, which RFC 5321 allows but no real "
            "reader's address does, and which a spreadsheet runs as a formula; fix or remove it",
            field="email",
        )
    email = normalise_address(raw_email)
    if email is None:
        reason = why_invalid(raw_email)
        return Problem(
            shown_path, line, columns.email + 1, f"{raw_email!r}: {reason}", field="email"
        )
    status = raw_status.lower() or "subscribed"
    if status not in STATUSES:
        assert columns.status is not None
        return Problem(
            shown_path,
            line,
            columns.status + 1,
            f"unknown status {raw_status!r} (use one of {', '.join(STATUSES)})",
            field="status",
        )
    others = columns.others
    fields = (
        {column: values[i].strip() if i < width else "" for i, column in others} if others else {}
    )
    return email, name, status, fields


def _cell(values: list[str], index: int | None) -> str:
    """A cell of a short row (one with fewer cells than the header): empty when missing."""
    return values[index].strip() if index is not None and index < len(values) else ""


def _column_name(columns: _Columns, index: int) -> str:
    if index == columns.email:
        return "email"
    if index == columns.name:
        return "name"
    if index == columns.status:
        return "status"
    for other_index, name in columns.others:
        if other_index == index:
            return name
    return f"column {index + 1}"


_UNSIGNED_64 = (1 << 64) - 1


def _digest(email: str) -> int:
    """Case-insensitive identity of an address in 8 bytes: Python's own string hash (SipHash
    with a key drawn per process, so a list cannot be crafted to collide), 7x cheaper than a
    BLAKE2b digest. Digests never leave the process, so a per-process key is all they need."""
    return hash(email.lower()) & _UNSIGNED_64


def _undecodable_position(binary: io.BufferedReader) -> tuple[int, int]:
    """Line and byte column (1-based) of the first bytes that are not UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    for number, raw_line in enumerate(binary, start=1):
        try:
            decoder.decode(raw_line)
        except UnicodeDecodeError as exc:
            return number, exc.start + 1
    return 1, 1
