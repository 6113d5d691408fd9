"""Hostile subscriber rows, property-tested: names and fields with CR/LF, NUL, quotes,
non-ASCII, very long values; broken quoting; odd delimiters and BOMs.

`read_subscribers` never raises anything but SubscribersError; every row it yields builds a
message that parses to exactly the intended headers (no injected header, To holds exactly the
one subscriber, Subject exact), and whose HTML shows the name as text, never as markup.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from faults.figures import publish
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.audience.subscribers import SubscriberReport, read_subscribers
from digest.errors import SubscribersError
from hostile.messages import assert_exact_headers, factory
from hostile.payloads import hostile_text

EXAMPLES = 250
ADDRESSES = (
    "ada@example.org",
    "Bob@Example.ORG",
    "ada@example.org",  # the same address twice: sent once
    "o'neil+news@example.org",
    "δοκιμή@παράδειγμα.δοκιμή",
    "用户@例子.广告",
    "not-an-address",
    "eve@evil.example\r\nBcc: all@example.net",
    "a@b",
    "",
)
STATUSES = ("", "subscribed", "Subscribed", "unsubscribed", "bounced", "complained", "maybe")


@st.composite
def rows(draw: st.DrawFn) -> list[list[str]]:
    count = draw(st.integers(min_value=1, max_value=6))
    return [
        [
            draw(st.one_of(st.sampled_from(ADDRESSES), st.emails(), hostile_text)),
            draw(hostile_text),
            draw(st.sampled_from(STATUSES)),
            draw(hostile_text),
        ]
        for _ in range(count)
    ]


def csv_bytes(table: list[list[str]], delimiter: str, bom: bool, quoting: bool) -> bytes:
    header = ["email", "name", "status", "city"]
    if quoting:
        buffer = io.StringIO(newline="")
        csv.writer(buffer, delimiter=delimiter).writerows([header, *table])
        text = buffer.getvalue()
    else:  # joined by hand: quotes and line breaks in values break the rows, as they would
        text = "\n".join(delimiter.join(row) for row in [header, *table]) + "\n"
    data = text.encode("utf-8", "surrogatepass")
    return (b"\xef\xbb\xbf" if bom else b"") + data


def test_hostile_rows_are_refused_or_make_clean_messages(
    capsys: pytest.CaptureFixture[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    stats: Counter[str] = Counter()
    messages = factory()
    folder = Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp()))

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        rows(),
        st.sampled_from([",", ";", "\t"]),
        st.booleans(),
        st.booleans(),
    )
    def prop(table: list[list[str]], delimiter: str, bom: bool, quoting: bool) -> None:
        path = folder / "subscribers.csv"
        path.write_bytes(csv_bytes(table, delimiter, bom, quoting))
        report = SubscriberReport(path=str(path))
        stats["files"] += 1
        stats["rows"] += len(table)
        try:
            subscribers = list(read_subscribers(path, report))
        except SubscribersError as exc:
            assert exc.problems and all(p.path == str(path) for p in exc.problems)
            stats["files refused"] += 1
            return
        assert all(p.line is not None and p.line >= 2 for p in report.problems), report.problems
        stats["rows refused"] += len(report.problems)
        keys = [s.email.lower() for s in subscribers]
        assert len(keys) == len(set(keys)), "an address yielded twice"
        for subscriber in subscribers:
            message = messages.message_for(subscriber)
            parsed = assert_exact_headers(
                message.as_bytes(),
                subscriber,
                subject="Clippings, March 2026",
                newsletter="Clippings",
            )
            html = parsed.get_payload()[1].get_content()
            if subscriber.name:
                assert "<script" not in html.lower()
            stats["messages checked"] += 1

    prop()
    assert stats["messages checked"] and stats["rows refused"]
    publish("hostile CSV rows", dict(stats), tmp_path_factory=tmp_path_factory, capsys=capsys)
