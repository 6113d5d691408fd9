"""digest against a real Postfix 3.7 on loopback: STARTTLS with a private CA, VERP, DKIM,
Postfix's own DSNs, a forged DSN and Postfix's rate limit. Figures print with ``-s``."""

from __future__ import annotations

import email
import email.policy
import smtplib
import subprocess
from pathlib import Path

import dkim
import pytest
from faults.figures import publish

from digest.audience.suppressions import SuppressionStore
from digest.verp import verp_address
from postfix.conftest import (
    DOMAIN,
    READERS,
    SECRET,
    SLOW_READERS,
    UNKNOWN,
    Workspace,
)
from postfix.postfix_server import PostfixServer

pytestmark = pytest.mark.slow


def headers(data: bytes) -> email.message.Message:
    return email.message_from_bytes(data, policy=email.policy.compat32)


def public_key_record(key_file: Path) -> bytes:
    import base64

    der = subprocess.run(
        ["openssl", "rsa", "-in", str(key_file), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    return b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


def suppressed(workspace: Workspace) -> set[str]:
    with SuppressionStore(Path(workspace.env["DIGEST_STATE_DIR"])) as store:
        return {entry.address for entry in store.iter()}


@pytest.fixture(scope="module")
def sent(postfix: PostfixServer, workspace: Workspace) -> subprocess.CompletedProcess[str]:
    """Edition 2026-03 to 20 readers and 3 unknown users; waits until Postfix delivered all
    and bounced the unknown ones."""
    result = workspace.digest(
        "send", "content/2026-03.yaml", "--subscribers", "subscribers.csv", "--yes"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    postfix.wait_until(
        lambda: (
            all(postfix.messages(r) for r in READERS)
            and len(postfix.messages("bounces")) >= len(UNKNOWN)
        )
    )
    return result


def test_each_reader_gets_the_edition_exactly_once(
    sent: object, postfix: PostfixServer, capsys: pytest.CaptureFixture[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:  # fmt: skip
    postfix.wait_until(postfix.queue_is_empty)
    counts = {reader: len(postfix.messages(reader)) for reader in READERS}
    assert counts == dict.fromkeys(READERS, 1)
    for reader in READERS:
        message = headers(postfix.messages(reader)[0])
        assert message["To"].endswith(f"<{reader}@{DOMAIN}>")
        assert "STARTTLS" in message["Received"] or "ESMTPS" in message["Received"]
        assert "sender.example.org" in message["Received"]  # the HELO name
    publish(
        "postfix delivery",
        {
            "recipients": len(READERS) + len(UNKNOWN),
            "delivered": sum(counts.values()),
            "duplicates": sum(c - 1 for c in counts.values() if c > 1),
        },
        tmp_path_factory=tmp_path_factory,
        capsys=capsys,
    )


def test_return_path_is_the_bounce_address_in_its_verp_form(
    sent: object, postfix: PostfixServer, workspace: Workspace
) -> None:
    for reader in READERS:
        return_path = headers(postfix.messages(reader)[0])["Return-Path"].strip("<>")
        assert return_path == verp_address(SECRET, f"bounces@{DOMAIN}", f"{reader}@{DOMAIN}",
                                           "2026-03")  # fmt: skip
        assert return_path.startswith("bounces+2026-03.")
    # Without VERP: the bounce address itself (a proof copy, so nothing is recorded).
    proof = workspace.digest(
        "send", "content/2026-03.yaml", "--subscribers", "subscribers.csv",
        "--test", f"proof@{DOMAIN}", "--yes", DIGEST_VERP="no",
    )  # fmt: skip
    assert proof.returncode == 0, proof.stdout + proof.stderr
    postfix.wait_until(lambda: postfix.messages("proof"))
    assert headers(postfix.messages("proof")[0])["Return-Path"] == f"<bounces@{DOMAIN}>"


def test_dkim_signatures_made_by_digest_verify_on_the_delivered_files(
    sent: object, postfix: PostfixServer, workspace: Workspace,
    capsys: pytest.CaptureFixture[str], tmp_path_factory: pytest.TempPathFactory,
) -> None:  # fmt: skip
    record = public_key_record(Path(workspace.env["DKIM_PRIVATE_KEY_FILE"]))

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == f"news2026._domainkey.{DOMAIN}.".encode()
        return record

    files = [data for reader in READERS for data in postfix.messages(reader)]
    verified = sum(bool(dkim.verify(data, dnsfunc=dns)) for data in files)
    assert verified == len(files) == len(READERS)
    publish(
        "postfix dkim",
        {"delivered": len(files), "dkim_verified": verified},
        tmp_path_factory=tmp_path_factory,
        capsys=capsys,
    )


def test_postfix_dsns_suppress_exactly_the_unknown_users_and_a_forged_one_no_one(
    sent: object, postfix: PostfixServer, workspace: Workspace,
    capsys: pytest.CaptureFixture[str], tmp_path_factory: pytest.TempPathFactory,
) -> None:  # fmt: skip
    bounces = postfix.maildir("bounces")
    dsns = postfix.messages("bounces")
    assert len(dsns) == len(UNKNOWN)
    assert all(headers(d)["From"].startswith("Mail Delivery System") for d in dsns)
    result = workspace.digest("bounces", "import", str(bounces), "--verbose")
    assert result.returncode == 0, result.stdout + result.stderr
    assert suppressed(workspace) == {f"{name}@{DOMAIN}" for name in UNKNOWN}

    # A forged DSN, as anyone may mail it to the bounce address: an outsider's From, a
    # subscriber's address, Action: failed.
    forged = (
        f"From: Postmaster <postmaster@attacker.example.net>\r\nTo: bounces@{DOMAIN}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <forged-1@attacker>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="F"\r\n\r\n'
        "--F\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--F\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; attacker\r\n\r\n"
        f"Final-Recipient: rfc822; {READERS[0]}@{DOMAIN}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "\r\n--F--\r\n"
    )
    with smtplib.SMTP("127.0.0.1", postfix.port, timeout=10) as client:
        client.sendmail("", [f"bounces@{DOMAIN}"], forged.encode())
    postfix.wait_until(lambda: len(postfix.messages("bounces")) == len(UNKNOWN) + 1)
    again = workspace.digest("bounces", "import", str(bounces), "--verbose")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Not ours: 1 reports" in again.stdout
    assert f"{len(UNKNOWN)} already imported" in again.stdout
    assert suppressed(workspace) == {f"{name}@{DOMAIN}" for name in UNKNOWN}
    publish(
        "postfix bounces",
        {
            "postfix_dsns": len(dsns),
            "suppressed": len(suppressed(workspace)),
            "forged_reports_ignored": again.stdout.count("not ours  "),
        },
        tmp_path_factory=tmp_path_factory,
        capsys=capsys,
    )


def test_a_postfix_rate_limit_is_survived_without_a_permanent_failure(
    postfix: PostfixServer, workspace: Workspace,
    capsys: pytest.CaptureFixture[str], tmp_path_factory: pytest.TempPathFactory,
) -> None:  # fmt: skip
    result = workspace.digest(
        "send", "content/2026-04.yaml", "--subscribers", "slow.csv", "--yes",
        "--concurrency", "2", SMTP_PORT=str(postfix.limited_port),
    )  # fmt: skip
    # smtpd logs each refusal: "warning: Message delivery request rate limit exceeded".
    refusals = postfix.log().count("Message delivery request rate limit exceeded")
    postfix.wait_until(lambda: all(postfix.messages(r) for r in SLOW_READERS))
    counts = [len(postfix.messages(r)) for r in SLOW_READERS]
    publish(
        "postfix rate limit",
        {
            "recipients": len(SLOW_READERS),
            "limit": f"{postfix.rate_limit} per {4} s",
            "refusals_450": refusals,
            "delivered": sum(counts),
            "exit_code": result.returncode,
        },
        tmp_path_factory=tmp_path_factory,
        capsys=capsys,
    )
    assert refusals > 0  # the limit was really met
    assert result.returncode == 0, result.stdout + result.stderr
    assert counts == [1] * len(SLOW_READERS)
