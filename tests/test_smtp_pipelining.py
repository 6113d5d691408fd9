"""SMTP PIPELINING (RFC 2920): MAIL, RCPT and DATA in one write when the server offers it.

Against aiosmtpd on 127.0.0.1 (told to offer PIPELINING or not; it records the commands that
arrived in each read from its socket), and a scripted server for what aiosmtpd never does.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from smtp_server import FaultyHandler, SMTPTestServer
from test_smtp_backend import CAMPAIGN, backend_for, message, send_each
from tls_certs import make_certificates

from digest.backends.base import DeliveryResult, DeliveryStatus
from digest.backends.smtp import SMTPBackend
from digest.errors import BackendError
from digest.settings import load_settings

SENT, DEFERRED, FAILED = DeliveryStatus.SENT, DeliveryStatus.DEFERRED, DeliveryStatus.FAILED
MODES = pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one-by-one"])


@MODES
def test_pipelining_is_used_exactly_when_the_server_offers_it(pipelining: bool) -> None:
    # SIZE (aiosmtpd offers it) on every MAIL; SMTPUTF8 on the MAIL of the last address.
    addresses = [f"r{n}@example.org" for n in range(4)] + ["zoë@example.org"]
    with SMTPTestServer(FaultyHandler(pipelining=pipelining)) as server:
        results = asyncio.run(send_each(backend_for(server), addresses))
        reads = list(server.command_reads)
        received = {r.rcpt_tos[0]: r.data for r in server.messages}
        mail_options = [r.mail_options for r in server.messages]
    assert [r.status for r in results] == [SENT] * 5
    assert [[o.split("=")[0] for o in options] for options in mail_options] == [["SIZE"]] * 4 + [
        ["SIZE", "SMTPUTF8"]
    ]
    # Each message arrived whole and once, whichever way its envelope travelled.
    assert received == {a: message(a).as_bytes() for a in addresses}
    envelopes = [read for read in reads if read[0] == "MAIL"]
    if pipelining:
        assert envelopes == [("MAIL", "RCPT", "DATA")] * 5
    else:
        assert envelopes == [("MAIL",)] * 5
        assert all(len(read) == 1 for read in reads)


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_pipelining_over_tls_after_starttls_and_login(security: str, tmp_path: Path) -> None:
    """The reply reader takes over from aiosmtplib after the TLS handshake (implicit, or
    STARTTLS and the second EHLO) and the login, on the encrypted transport."""
    certificates = make_certificates(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates.cert_file, certificates.key_file)
    credentials = ("curator", "hunter2-long-pass")
    addresses = [f"r{n}@example.org" for n in range(3)]
    server = SMTPTestServer(
        FaultyHandler(pipelining=True),
        credentials=credentials,
        tls=context,
        implicit_tls=security == "tls",
    )
    with server:
        backend = backend_for(
            server,
            SMTP_SECURITY=security,
            SMTP_CA_FILE=str(certificates.ca_file),
            SMTP_USERNAME=credentials[0],
            SMTP_PASSWORD=credentials[1],
        )
        results = asyncio.run(send_each(backend, addresses))
        reads = list(server.command_reads)
        received = sorted(server.recipients())
    assert [r.status for r in results] == [SENT] * 3
    assert received == addresses
    assert server.logins == ["curator"]
    assert [read for read in reads if read[0] == "MAIL"] == [("MAIL", "RCPT", "DATA")] * 3


@MODES
def test_refusals_give_the_same_results_pipelined_or_not(pipelining: bool) -> None:
    handler = FaultyHandler(
        pipelining=pipelining,
        refuse_mail=["550 5.7.1 <clippings@example.org>: sender refused"],
        reject={"gone@example.org": "550 5.1.1 <gone@example.org>: mailbox unavailable"},
        defer={
            "busy@example.org": (1, "451 4.3.0 Mailbox busy, try later"),
            "closing@example.org": (1, "421 4.3.2 Service shutting down"),
        },
        refuse_data={"nodata@example.org": "554 5.6.0 no data from you"},
    )
    addresses = [
        "first@example.org",  # MAIL refused
        "gone@example.org",  # RCPT refused for good
        "busy@example.org",  # RCPT deferred
        "nodata@example.org",  # DATA refused
        "busy@example.org",
        "closing@example.org",  # 421 at RCPT: the server hangs up
        "after@example.org",
    ]
    with SMTPTestServer(handler) as server:
        results = asyncio.run(send_each(backend_for(server), addresses))
        delivered = [r.rcpt_tos for r in server.messages]
        connections = server.connections
    assert [(r.status, r.error) for r in results] == [
        (FAILED, "550 5.7.1 <clippings@example.org>: sender refused"),
        (FAILED, "550 5.1.1 <gone@example.org>: mailbox unavailable"),
        (DEFERRED, "451 4.3.0 Mailbox busy, try later"),
        (FAILED, "554 5.6.0 no data from you"),
        (SENT, None),
        (DEFERRED, "421 4.3.2 Service shutting down"),
        (SENT, None),
    ]
    # Nothing of a refused message reached the server, and the session stayed in step: the
    # queue ids of the replies belong to the messages they answer.
    assert delivered == [("busy@example.org",), ("after@example.org",)]
    assert [r.provider_id for r in results if r.status is SENT] == ["TEST000001", "TEST000002"]
    # The refusals kept the connection (RSET); the 421 did not.
    assert connections == 2


@MODES
def test_a_connection_dropped_before_the_end_of_data_is_retried_once(pipelining: bool) -> None:
    handler = FaultyHandler(pipelining=pipelining, drop_data={"flaky@example.org": 1})
    with SMTPTestServer(handler) as server:
        results = asyncio.run(send_each(backend_for(server), ["flaky@example.org"]))
        assert results[0].status is SENT
        assert server.recipients()["flaky@example.org"] == 1
        assert server.connections == 2


@MODES
def test_a_slow_server_times_out(pipelining: bool) -> None:
    handler = FaultyHandler(pipelining=pipelining, data_delay=2.0)
    with SMTPTestServer(handler) as server, pytest.raises(BackendError) as caught:
        asyncio.run(send_each(backend_for(server, SMTP_TIMEOUT="0.3"), ["slow@example.org"]))
    assert caught.value.transient


# -- a scripted server: what aiosmtpd does not do ------------------------------------------------

Session = Callable[[asyncio.StreamReader, asyncio.StreamWriter, list[bytes]], Awaitable[None]]


async def run_against(
    session: Session, addresses: list[str]
) -> tuple[list[DeliveryResult], list[list[bytes]]]:
    """Send to ``addresses`` through a server running ``session`` for each connection;
    returns the results and the lines each connection received."""
    sessions: list[list[bytes]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        lines: list[bytes] = []
        sessions.append(lines)
        writer.write(b"220 scripted ESMTP\r\n")
        try:
            await session(reader, writer, lines)
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    env = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "SMTP_SECURITY": "none",
           "SMTP_TIMEOUT": "5"}  # fmt: skip
    backend = SMTPBackend(load_settings(env, env_file=None))
    try:
        await backend.open(CAMPAIGN)
        results = [(await backend.send([message(a)]))[0] for a in addresses]
        await backend.close()
    finally:
        server.close()
    return results, sessions


async def read_line(reader: asyncio.StreamReader, lines: list[bytes]) -> bytes:
    line = await reader.readline()
    lines.append(line)
    return line


def test_a_354_after_a_refused_recipient_ends_with_an_empty_message() -> None:
    """RFC 2920: the client cannot take back a pipelined DATA; a server that answers it with
    354 although it refused the recipient gets only the final dot, and the message is refused."""

    async def session(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, lines: list[bytes]
    ) -> None:
        while line := await read_line(reader, lines):
            verb = line[:4].upper()
            if verb == b"EHLO":
                writer.write(b"250-scripted\r\n250 PIPELINING\r\n")
            elif verb == b"RCPT":
                writer.write(b"550 5.1.1 no such user\r\n")
            elif verb == b"DATA":
                writer.write(b"354 go ahead\r\n")
                while await read_line(reader, lines) != b".\r\n":
                    pass
                writer.write(b"250 2.0.0 queued as EMPTY\r\n")  # an empty message, to nobody
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                return
            else:
                writer.write(b"250 OK\r\n")

    results, sessions = asyncio.run(run_against(session, ["nobody@example.org"]))
    assert [(r.status, r.error) for r in results] == [(FAILED, "550 5.1.1 no such user")]
    [lines] = sessions
    after_data = lines[lines.index(b"DATA\r\n") + 1 :]
    assert after_data == [b".\r\n", b"RSET\r\n", b"QUIT\r\n"]


def test_a_connection_dropped_in_the_middle_of_a_group_is_retried_once() -> None:
    async def session(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, lines: list[bytes]
    ) -> None:
        while line := await read_line(reader, lines):
            verb = line[:4].upper()
            if verb == b"EHLO":
                writer.write(b"250-scripted\r\n250 PIPELINING\r\n")
            elif verb == b"MAIL" and dropped == []:
                dropped.append(line)  # the first group: answer MAIL, then hang up
                writer.write(b"250 OK\r\n")
                await writer.drain()
                writer.transport.abort()
                return
            elif verb == b"DATA":
                writer.write(b"354 go ahead\r\n")
                while await read_line(reader, lines) != b".\r\n":
                    pass
                writer.write(b"250 2.0.0 queued as SECOND\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                return
            else:
                writer.write(b"250 OK\r\n")

    dropped: list[bytes] = []
    results, sessions = asyncio.run(run_against(session, ["flaky@example.org"]))
    assert [(r.status, r.provider_id) for r in results] == [(SENT, "SECOND")]
    first, second = sessions
    assert b"DATA\r\n" not in first  # the group was cut short after the MAIL reply
    assert b"Hello flaky@example.org\r\n" in second


def test_the_replies_of_a_group_in_one_packet_are_each_paired_with_their_command() -> None:
    """What aiosmtplib's own reader cannot do, and what Postfix does: answer a whole group in
    one write, here with a reply on several lines among them."""

    async def session(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, lines: list[bytes]
    ) -> None:
        group: list[bytes] = []
        while line := await read_line(reader, lines):
            verb = line[:4].upper()
            if verb == b"EHLO":
                writer.write(b"250-scripted\r\n250 PIPELINING\r\n")
            elif verb in (b"MAIL", b"RCPT"):
                group.append(line)  # answered together with DATA
            elif verb == b"DATA":
                refused = b"gone@" in group[1]
                writer.write(
                    b"250 2.1.0 sender ok\r\n"
                    + (
                        b"550-5.1.1 <gone@example.org>: no such user\r\n"
                        b"550 5.1.1 try another address\r\n"
                        b"554 5.5.1 no valid recipients\r\n"
                        if refused
                        else b"250 2.1.5 recipient ok\r\n354 go ahead\r\n"
                    )
                )
                group.clear()
                if not refused:
                    while await read_line(reader, lines) != b".\r\n":
                        pass
                    writer.write(b"250 2.0.0 Ok: queued as ONEPACKET\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                return
            else:
                writer.write(b"250 OK\r\n")

    addresses = ["gone@example.org", "reader@example.org"]
    results, sessions = asyncio.run(run_against(session, addresses))
    assert [(r.status, r.error, r.provider_id) for r in results] == [
        (FAILED, "550 5.1.1 <gone@example.org>: no such user\n5.1.1 try another address", None),
        (SENT, None, "ONEPACKET"),
    ]
    assert len(sessions) == 1  # one connection, in step throughout
