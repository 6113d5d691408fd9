"""Hostile mail in the bounce mailbox: `digest bounces import` never crashes and imports the rest.

A message nested a thousand levels deep used to end the import in a RecursionError (and every
rerun at the same message). Now every message over a limit (size, parts, nesting) is skipped with
a note naming it, and the valid reports after it are imported. A property test builds MIME trees
(depth, width, encodings, broken boundaries, truncation) and checks the same of each.
"""

from __future__ import annotations

import base64
import quopri
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from faults.figures import publish
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_bounces import HARD, TRUST_EVERY_REPORT, dsn, record_sent, to_verp

from digest.audience.bounces import import_bounces
from digest.audience.mail_limits import MAX_MESSAGE_BYTES
from digest.audience.suppressions import SuppressionStore

EXAMPLES = 2_000
MBOX_FROM = b"From MAILER-DAEMON Tue Mar 31 09:05:00 2026\n"


def nested(levels: int, message_id: str = "deep@attacker.example") -> bytes:
    """One message of ``levels`` nested multipart/mixed parts (64 KB for 1,000 levels)."""
    head = f"From: x@attacker.example\nMessage-ID: <{message_id}>\nMIME-Version: 1.0\n".encode()
    opening = b"".join(
        f'Content-Type: multipart/mixed; boundary="b{n}"\n\n--b{n}\n'.encode()
        for n in range(levels)
    )
    closing = b"".join(f"--b{n}--\n".encode() for n in reversed(range(levels)))
    return head + opening + b"Content-Type: text/plain\n\nhi\n" + closing


def mbox_bytes(*messages: bytes) -> bytes:
    return b"".join(MBOX_FROM + m.rstrip(b"\n") + b"\n\n" for m in messages)


def valid_report(address: str, message_id: str) -> bytes:
    block = HARD.replace("gone@example.net", address).replace("Gone@Example.net", address)
    return dsn(message_id, block).encode()


def test_a_deeply_nested_message_is_skipped_and_the_report_after_it_imported(
    run_digest: object, tmp_path: Path
) -> None:
    deep = nested(1_000)
    assert 60_000 < len(deep) < 70_000
    secret = "hostile-mail-test-secret-0123456789"
    record_sent(tmp_path / "state", "2026-03", "gone@example.net")
    genuine = to_verp(
        valid_report("gone@example.net", "r1@mx").decode(), secret, "gone@example.net"
    )
    mbox = tmp_path / "bounces.mbox"
    mbox.write_bytes(mbox_bytes(deep, genuine.encode()))
    env = {"DIGEST_STATE_DIR": str(tmp_path / "state"), "DIGEST_SECRET": secret}
    result = run_digest("bounces", "import", str(mbox), env=env)  # type: ignore[operator]
    assert "Traceback" not in result.output
    assert result.exit_code == 0
    assert "message 1 (<deep@attacker.example>): 1000 multipart or message parts" in result.stderr
    assert "skipped" in result.stderr
    assert "2 messages, 1 delivery reports" in result.stdout
    with SuppressionStore(tmp_path / "state") as store:
        assert store.get("gone@example.net").reason == "bounced"
    # Every rerun goes past it too, and counts nothing twice.
    again = run_digest("bounces", "import", str(mbox), env=env)  # type: ignore[operator]
    assert again.exit_code == 0 and "(1 already imported)" in again.stdout


@pytest.mark.parametrize(
    ("name", "message", "note"),
    [
        ("too large", b"Message-ID: <big@x>\n\n" + b"x" * (MAX_MESSAGE_BYTES + 1), "larger than"),
        (
            "too many parts",
            b"Content-Type: multipart/mixed; boundary=b\n\n" + b"--b\n\n" * 5_000,
            "part boundaries",
        ),
        ("too many containers", b"Content-Type: message/rfc822\n\n" * 200, "multipart or message"),
        (
            "digest of digests",
            nested(40).replace(b"multipart/mixed", b"multipart/digest"),
            "nested",
        ),
    ],
)
def test_each_limit_skips_one_message_with_a_note(
    tmp_path: Path, name: str, message: bytes, note: str
) -> None:
    mbox = tmp_path / "bounces.mbox"
    mbox.write_bytes(mbox_bytes(message, valid_report("gone@example.net", "r1@mx")))
    with SuppressionStore(tmp_path / "state") as store:
        report = import_bounces(mbox, store, TRUST_EVERY_REPORT)
        assert store.contains("gone@example.net"), name
    assert report.messages == 2 and report.reports == 1
    assert len(report.refused) == 1 and note in report.refused[0], report.refused
    assert report.refused[0].startswith("message 1")


# -- generated MIME trees -------------------------------------------------------------------

ENCODINGS = ("7bit", "8bit", "base64", "quoted-printable", "x-uuencode", "BASE64", "")
LEAF_TYPES = (
    "text/plain",
    "message/delivery-status",
    "message/global-delivery-status",
    "text/rfc822-headers",
    "application/octet-stream",
    "message/rfc822",
    "",
)
CONTAINER_TYPES = (
    "multipart/mixed",
    "multipart/report; report-type=delivery-status",
    "multipart/report; report-type=global-delivery-status",
    "multipart/alternative",
    "multipart/digest",
    "message/rfc822",
)
BLOCK_LINES = (
    "Reporting-MTA: dns; mx.example.org",
    "Final-Recipient: rfc822; gone@example.net",
    "Original-Recipient: rfc822;<>",
    "Final-Recipient: ;",
    "Final-Recipient: rfc822; a@b@c\x00",
    "Action: failed",
    "Action: delayed",
    "Action: \udcff",
    "Status: 5.1.1",
    "Status: 4.",
    "Diagnostic-Code: smtp; 550 gone",
    "Content-Type: multipart/mixed; boundary=x",
    "",
)


@st.composite
def leaf(draw: st.DrawFn) -> bytes:
    content_type = draw(st.sampled_from(LEAF_TYPES))
    encoding = draw(st.sampled_from(ENCODINGS))
    if content_type.endswith("delivery-status"):
        lines = draw(st.lists(st.sampled_from(BLOCK_LINES), max_size=12))
        body = "\n".join(lines).encode("utf-8", "surrogateescape")
    else:
        body = draw(st.binary(max_size=200))
    if encoding.lower() == "base64" and draw(st.booleans()):
        body = base64.b64encode(body)
    elif encoding == "quoted-printable" and draw(st.booleans()):
        body = quopri.encodestring(body)
    head = b""
    if content_type:
        head += f"Content-Type: {content_type}\n".encode()
    if encoding:
        head += f"Content-Transfer-Encoding: {encoding}\n".encode()
    return head + b"\n" + body + b"\n"


def container(children: st.SearchStrategy[list[bytes]]) -> st.SearchStrategy[bytes]:
    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        content_type = draw(st.sampled_from(CONTAINER_TYPES))
        parts = draw(children)
        if content_type == "message/rfc822":
            inner = parts[0] if parts else b"\n"
            return b"Content-Type: message/rfc822\n\nSubject: inner\n" + inner
        boundary = draw(st.sampled_from(["b", "B1", "=_x", "same", ""]))
        closed = draw(st.booleans())
        head = f'Content-Type: {content_type}; boundary="{boundary}"\n\npreamble\n'.encode()
        body = b"".join(f"--{boundary}\n".encode() + part for part in parts)
        return head + body + (f"--{boundary}--\n".encode() if closed else b"")

    return build()


mime_tree = st.recursive(
    leaf(), lambda inner: container(st.lists(inner, max_size=4)), max_leaves=12
)


@st.composite
def hostile_message(draw: st.DrawFn) -> bytes:
    tree = draw(mime_tree)
    for n in range(draw(st.integers(0, 120))):  # extra nesting, past the limit at times
        tree = f'Content-Type: multipart/mixed; boundary="n{n}"\n\n--n{n}\n'.encode() + tree
    message = b"From: MAILER-DAEMON@mx.example.org\nMIME-Version: 1.0\n" + tree
    if draw(st.booleans()):
        message = message[: draw(st.integers(0, len(message)))]  # truncated anywhere
    if draw(st.booleans()):
        message = message.replace(b"\n", b"\r\n")
    return message


def test_generated_mime_trees_never_crash_the_import(
    capsys: pytest.CaptureFixture[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    stats: Counter[str] = Counter()
    folder = Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp()))
    mbox = folder / "bounces.mbox"
    store = SuppressionStore(folder / "state")

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(hostile_message())
    def prop(message: bytes) -> None:
        stats["examples"] += 1
        address = f"gone{stats['examples']}@example.net"
        mbox.write_bytes(mbox_bytes(message, valid_report(address, f"r{stats['examples']}@mx")))
        report = import_bounces(mbox, store, TRUST_EVERY_REPORT)
        # The valid report after the hostile message is always imported.
        assert store.contains(address)
        stats["refused"] += len(report.refused)
        stats["other reports"] += report.reports - 1
        stats["skipped, not a report"] += report.not_reports

    try:
        prop()
    finally:
        store.close()
    assert stats["examples"] == EXAMPLES
    publish(
        "hostile mail",
        {"messages": EXAMPLES, **{k: v for k, v in stats.items() if k != "examples"}},
        tmp_path_factory=tmp_path_factory,
        capsys=capsys,
    )
