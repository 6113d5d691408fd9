"""The send's fast paths (docs/sending.md "Speed") give exactly what the plain paths give.

* the SMTP wire form that MessageFactory assembles from pieces dot-stuffed once per run equals
  the generic transform of the whole message, and a real server gets the message back intact;
* the list's blocked addresses, remembered between the counting pass and the send, are never
  those of another version of the file;
* the shortcuts for a first send (empty ledger, empty suppression store) and for the bundled
  backends answer as the full look-ups do;
* a `digest send` over SMTP loads nothing of the preview server or the HTTP stack.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
from email_validator import validate_email
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from smtp_server import SMTPTestServer

from digest.addresses import normalise_address
from digest.audience.subscribers import Subscriber, SubscriberReport, read_subscribers
from digest.audience.suppressions import SuppressionStore
from digest.backends.base import backend_names, load_backend, smtp_data
from digest.backends.smtp import SMTPBackend
from digest.errors import ConfigError
from digest.ledger import Ledger
from digest.render.merge import MergeTemplate, escape_html, escape_text
from digest.send.message import MessageFactory
from digest.settings import load_settings

SECRET = "fast-path-test-secret-19c2-8b0e4f6a2d"
REPO = Path(__file__).resolve().parents[1]


def factory_settings(**extra: str) -> dict[str, str]:
    return {
        "DIGEST_FROM": "Clippings <clippings@example.org>",
        "DIGEST_SECRET": SECRET,
        "DIGEST_UNSUBSCRIBE_URL": "https://example.org/unsubscribe/{token}",
        **extra,
    }


def rendered_with(
    html: MergeTemplate,
    text: MergeTemplate,
    *,
    newsletter: str = "Clippings",
    subject: str = "Dots. Dots.",
) -> SimpleNamespace:
    edition = SimpleNamespace(newsletter=newsletter, slug="2026-03", subject=subject)
    return SimpleNamespace(edition=edition, html=html, text=text)


def template(literals: list[str], escape: object) -> MergeTemplate:
    slots = ("name", "field:city", "unsubscribe_url", "name")[: len(literals) - 1]
    return MergeTemplate(literals=tuple(literals), slots=slots, escape=escape)  # type: ignore[arg-type]


# Text where a dot often lands at the start of a line: after a newline, and after the soft line
# break quoted-printable puts every 76 characters.
dotted_text = st.text(alphabet=st.sampled_from(".\n a=é€"), max_size=300)
# What a CSV cell can hold: anything but control characters (the list refuses those).
cell_text = st.one_of(
    dotted_text.map(lambda text: text.replace("\n", "")),
    st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=40),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    html_literals=st.lists(dotted_text, min_size=1, max_size=5),
    text_literals=st.lists(dotted_text, min_size=1, max_size=5),
    name=cell_text,
    city=cell_text,
    # Long header text is folded: a continuation line must not start with a dot either.
    subject=cell_text.filter(str.strip),
    newsletter=cell_text.filter(str.strip),
)
def test_the_wire_form_equals_the_generic_smtp_transform(
    html_literals: list[str],
    text_literals: list[str],
    name: str,
    city: str,
    subject: str,
    newsletter: str,
) -> None:
    rendered = rendered_with(
        template(html_literals, escape_html),
        template(text_literals, escape_text),
        newsletter=newsletter,
        subject=subject,
    )
    factory = MessageFactory(rendered, load_settings(factory_settings(), env_file=None))
    message = factory.message_for(Subscriber("reader@example.org", name, {"city": city}, line=2))

    wire = message.as_smtp_data()

    # Each build stamps the Date of its second; the two builds may straddle a second boundary.
    assert _undated(wire) == _undated(smtp_data(message.as_bytes()))
    # The end-of-data line comes once, at the very end: no content can end the message early.
    assert wire.endswith(b"\r\n.\r\n") and wire.count(b"\r\n.\r\n") == 1


def _undated(message: bytes) -> bytes:
    head, blank, body = message.partition(b"\r\n\r\n")
    assert head.count(b"\r\nDate: ") == 1
    return re.sub(rb"\r\nDate: [^\r]*", b"\r\nDate: -", head, count=1) + blank + body


def test_the_generic_transform_doubles_leading_dots_and_fixes_line_ends() -> None:
    assert smtp_data(b".one\r\ntwo\r\n.\r\n..three") == b"..one\r\ntwo\r\n..\r\n...three\r\n.\r\n"
    assert smtp_data(b"bare\nline\rends\n.dot") == b"bare\r\nline\r\nends\r\n..dot\r\n.\r\n"


def test_a_message_full_of_leading_dots_arrives_intact(smtp_server: SMTPTestServer) -> None:
    text = template(
        ["Hello ", ",\n.a line starting with a dot\n." + "x." * 80, "\n.\n"], escape_text
    )
    html = template(["<p>.", "</p>\n.<p>", "</p>"], escape_html)
    factory = MessageFactory(
        rendered_with(html, text), load_settings(factory_settings(), env_file=None)
    )
    outgoing = [
        factory.message_for(Subscriber(f"r{n}@example.org", name, {"city": "."}, line=n + 2))
        for n, name in enumerate([".Dot", "..", "Plain Name"])
    ]
    backend = SMTPBackend(load_settings({**smtp_server.env()}, env_file=None))

    async def send() -> None:
        await backend.open(factory.campaign)
        try:
            for message in outgoing:
                await backend.send([message])
        finally:
            await backend.close()

    asyncio.run(send())

    received = {r.rcpt_tos[0]: r.data for r in smtp_server.messages}
    assert received == {m.address: m.as_bytes() for m in outgoing}


# -- the list read twice ----------------------------------------------------------------------


def read(path: Path) -> tuple[list[str], SubscriberReport]:
    report = SubscriberReport(path=path.name)
    return [s.email for s in read_subscribers(path, report)], report


def test_a_list_rewritten_in_place_is_read_anew(tmp_path: Path) -> None:
    path = tmp_path / "subscribers.csv"
    path.write_text("email,status\nann@example.org,subscribed\nbob@example.org,bounced\n")
    first = path.stat()
    assert read(path)[0] == ["ann@example.org"]

    # Same size, same modification time, same inode: only the bytes tell the versions apart.
    path.write_text("email,status\nann@example.org,bounced\nbob@example.org,subscribed\n")
    os.utime(path, ns=(first.st_atime_ns, first.st_mtime_ns))
    assert path.stat().st_size == first.st_size

    emails, report = read(path)
    assert emails == ["bob@example.org"]
    assert report.by_status == {"bounced": 1}


def test_the_counting_pass_and_the_send_read_the_same_list(tmp_path: Path) -> None:
    path = tmp_path / "subscribers.csv"
    path.write_text(
        textwrap.dedent(
            """\
            email,name,status
            ann@example.org,Ann,subscribed
            bob@example.org,Bob,subscribed
            cat@example.org,Cat,subscribed
            BOB@example.org,Bob,unsubscribed
            not-an-address,Nobody,subscribed
            """
        )
    )
    counted, count_report = read(path)
    sent, send_report = read(path)

    assert counted == sent == ["ann@example.org", "cat@example.org"]
    assert count_report == send_report
    assert [p.line for p in send_report.problems] == [6]


# -- shortcuts that must agree with the full look-ups ---------------------------------------


@pytest.mark.parametrize(
    "address", ["WWW@example.org", "Postmaster@Example.ORG", "Info@example.net"]
)
def test_role_mailboxes_are_normalised_as_email_validator_does(address: str) -> None:
    expected = validate_email(address, check_deliverability=False).normalized
    assert normalise_address(address) == expected
    assert expected.split("@")[0].islower()


def test_the_ledger_answers_for_a_first_send_and_after_it(tmp_path: Path) -> None:
    people = [Subscriber(f"p{n}@example.org", "", {}, n + 2) for n in range(3)]
    with Ledger(tmp_path) as ledger:
        ledger.enqueue("2026-02", people)  # another edition's rows
        assert ledger.statuses("2026-03", [p.email for p in people]) == {}

        ledger.enqueue("2026-03", people)
        ledger.mark_results(
            "2026-03",
            sent=[("P0@example.org", "queue-1")],
            failed=[("p1@example.org", "550 no such user")],
        )
        statuses = ledger.statuses("2026-03", [p.email for p in people])
        summary = ledger.summary("2026-03")

    assert statuses == {
        "p0@example.org": "sent",
        "p1@example.org": "failed",
        "p2@example.org": "pending",
    }
    assert (summary.sent, summary.failed, summary.pending) == (1, 1, 1)
    assert summary.failures == [("p1@example.org", 1, "550 no such user")]


def test_an_empty_suppression_store_suppresses_nobody_and_a_filled_one_does(
    tmp_path: Path,
) -> None:
    with SuppressionStore(tmp_path) as store:
        assert store.filter(["ann@example.org", "not an address"]) == set()
        store.add("Ann@Example.org", "unsubscribed", "test")
        assert store.filter(["ANN@example.org", "bob@example.org"]) == {"ann@example.org"}


def test_the_bundled_backends_load_by_name_and_others_are_listed() -> None:
    assert load_backend("smtp") is SMTPBackend
    assert {"smtp", "mailgun", "outbox"} <= set(backend_names())
    with pytest.raises(ConfigError, match=r"unknown backend 'smtps' \(installed: .*smtp"):
        load_backend("smtps")


# -- what a send loads ---------------------------------------------------------------------


def test_a_smtp_send_loads_no_preview_server_nor_http_stack(
    tmp_path: Path, smtp_server: SMTPTestServer, edition_file: Path
) -> None:
    subscribers = tmp_path / "subscribers.csv"
    subscribers.write_text("email,name\nann@example.org,Ann\nbob@example.org,Bob\n")
    loaded = tmp_path / "modules.txt"
    program = textwrap.dedent(
        f"""\
        import atexit, sys
        atexit.register(lambda: open({str(loaded)!r}, "w").write("\\n".join(sys.modules)))
        sys.argv = ["digest", *sys.argv[1:]]
        from digest.cli import main
        main()
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DIGEST_", "SMTP_"))}
    env.update(factory_settings(DIGEST_STATE_DIR=str(tmp_path / ".digest"), NO_COLOR="1"))
    env.update(smtp_server.env())
    done = subprocess.run(
        [sys.executable, "-c", program, "send", str(edition_file), "--subscribers",
         str(subscribers), "--backend", "smtp", "--yes"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert sorted(smtp_server.recipients()) == ["ann@example.org", "bob@example.org"]
    modules = set(loaded.read_text().split())
    unneeded = {"digest.preview", "digest.unsubscribe_app", "digest.backends.mailgun"}
    unneeded |= {"starlette", "uvicorn", "httpx", "watchfiles", "playwright"}
    assert not modules & unneeded


# -- the Markdown check's shortcut ------------------------------------------------------------

_MARKDOWN_ALPHABET = st.sampled_from(
    [*"ab :/.()!*_`#>-+=~|\\&;\n\t", "http://x.org", "javascript:", "](", "![", "&lt;", " "]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_MARKDOWN_ALPHABET, max_size=40).map("".join))
def test_prose_without_angle_or_square_brackets_is_never_refused_by_the_parser(
    text: str,
) -> None:
    """check_markdown skips the parser for such text (loading an edition then imports no
    parser): the parser itself must find nothing to refuse in it either."""
    from digest.edition.markdown import _checking_parser, _problem_of, iter_tokens

    clean = text.replace("<", "").replace("[", "")
    tokens = list(iter_tokens(_checking_parser().parse(clean)))
    assert [t.type for t in tokens if _problem_of(t)] == []


@pytest.mark.parametrize(
    "text",
    ["<b>bold</b>", "see <javascript:alert(1)>", "![chart](https://x.org/c.png)",
     "[x](javascript:alert(1))", "[x][r]\n\n[r]: ftp://x.org"],
)  # fmt: skip
def test_prose_with_them_is_still_parsed_and_refused(text: str) -> None:
    from digest.edition.markdown import MarkdownProblem, check_markdown

    with pytest.raises(MarkdownProblem):
        check_markdown(text)
