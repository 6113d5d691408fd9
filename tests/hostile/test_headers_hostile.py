"""Header injection, property-tested: hostile subjects, newsletter names and subscriber names.

Every message built parses (email.parser, policy.default) to exactly the intended header set;
Subject, From and To hold exactly their value; To holds exactly one address. A value holding a
line break is refused before any byte is written, never split into a new header.
"""

from __future__ import annotations

from collections import Counter

import pytest
from faults.figures import publish
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.audience.subscribers import Subscriber
from digest.errors import DigestError, EditionError
from hostile.messages import assert_exact_headers, factory
from hostile.payloads import PAYLOADS, hostile_text

EXAMPLES = 300
# One-line text (what validation lets through): any Unicode without control characters.
one_line = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="\ufffe\uffff"
    ),
    min_size=1,
    max_size=200,
).filter(lambda s: s.strip() == s and s.strip())
ADDRESS_TRICKS = (
    "Eve <eve@evil.example>",
    "a@evil.example, b@evil.example",
    '"Quoted" <x@evil.example>',
    "=?utf-8?b?PGV2ZUBldmlsLmV4YW1wbGU+?=",
    "Ada (comment) Lovelace",
    "Ada; Bob:",
    "\\",
    '"',
)
names = st.one_of(one_line, st.sampled_from(ADDRESS_TRICKS + PAYLOADS))


@pytest.mark.parametrize("what", ["subscriber names", "subjects and newsletter names"])
def test_every_message_has_exactly_the_intended_headers(
    what: str, capsys: pytest.CaptureFixture[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    stats: Counter[str] = Counter()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(name=names, subject=one_line, newsletter=one_line)
    def prop(name: str, subject: str, newsletter: str) -> None:
        stats["inputs"] += 1
        if what == "subscriber names":
            subject, newsletter = "Clippings, March 2026", "Clippings"
        else:
            name = "Ada Lovelace"
        try:
            messages = factory(newsletter, subject)
        except EditionError:
            stats["refused by validation"] += 1
            return
        subscriber = Subscriber(email="ada@example.org", name=name, fields={}, line=2)
        try:
            message = messages.message_for(subscriber)
        except DigestError as exc:
            assert any(ch in name for ch in "\r\n\x00\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"), exc
            stats["refused: line break"] += 1
            return
        assert_exact_headers(message.as_bytes(), subscriber, subject=subject, newsletter=newsletter)
        stats["messages checked"] += 1

    prop()
    assert stats["messages checked"]
    publish(
        f"hostile headers ({what})", dict(stats), tmp_path_factory=tmp_path_factory, capsys=capsys
    )


@pytest.mark.parametrize("name", [p for p in PAYLOADS if any(c in p for c in "\r\n\x00\x85\u2028")])
def test_a_line_break_in_a_name_is_refused_not_split(name: str) -> None:
    subscriber = Subscriber(email="ada@example.org", name=name, fields={}, line=2)
    with pytest.raises(DigestError, match="line break"):
        factory().message_for(subscriber).as_bytes()


@given(st.sampled_from(["\r\nBcc: x@evil.example", "\nX-Evil: 1", "\x00"]), hostile_text)
@settings(max_examples=50, deadline=None, derandomize=True, database=None)
def test_a_line_break_in_an_address_is_refused(trick: str, rest: str) -> None:
    subscriber = Subscriber(email=f"ada@example.org{trick}{rest}", name="Ada", fields={}, line=2)
    with pytest.raises(DigestError):
        factory().message_for(subscriber).as_bytes()
