"""The SMTP backend against a real SMTP server (aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from smtp_server import FaultyHandler, SMTPTestServer

from digest.backends.base import (
    CampaignInfo,
    DeliveryResult,
    DeliveryStatus,
    OutgoingMessage,
    load_backend,
)
from digest.backends.smtp import SMTPBackend
from digest.errors import BackendError, ConfigError
from digest.settings import load_settings

CAMPAIGN = CampaignInfo(
    slug="2026-03",
    subject="Test",
    from_address="Clippings <clippings@example.org>",
    reply_to=None,
    list_id="Clippings <clippings.example.org>",
    html=None,  # type: ignore[arg-type]  # the backend sends as_bytes(), never fills
    text=None,  # type: ignore[arg-type]
)


def message(address: str) -> OutgoingMessage:
    data = (
        f"From: clippings@example.org\r\nTo: {address}\r\nSubject: Test\r\n"
        f"Message-ID: <{address}@example.org>\r\n\r\nHello {address}\r\n"
    ).encode()
    return OutgoingMessage(address, "", f"<{address}>", {}, {}, build=lambda: data)


def backend_for(server: SMTPTestServer, **extra: str) -> SMTPBackend:
    return SMTPBackend(load_settings({**server.env(), **extra}, env_file=None))


async def send_each(backend: SMTPBackend, addresses: Sequence[str]) -> list[DeliveryResult]:
    await backend.open(CAMPAIGN)
    try:
        return [(await backend.send([message(a)]))[0] for a in addresses]
    finally:
        await backend.close()


def test_registered_under_its_name() -> None:
    assert load_backend("smtp") is SMTPBackend


def test_connections_are_reused_across_many_messages(smtp_server: SMTPTestServer) -> None:
    backend = backend_for(smtp_server)
    addresses = [f"r{n}@example.org" for n in range(60)]

    async def run() -> list[DeliveryResult]:
        await backend.open(CAMPAIGN)
        queue = list(addresses)
        results: list[DeliveryResult] = []

        async def worker() -> None:
            while queue:
                results.extend(await backend.send([message(queue.pop())]))

        await asyncio.gather(*(worker() for _ in range(4)))
        await backend.close()
        return results

    results = asyncio.run(run())
    assert {r.status for r in results} == {DeliveryStatus.SENT}
    assert sorted(smtp_server.recipients()) == sorted(addresses)
    assert set(smtp_server.recipients().values()) == {1}
    # Four callers at once: at most four connections for sixty messages.
    assert smtp_server.connections <= 4
    assert backend.connections_opened == smtp_server.connections
    # The provider id is the server's queue id from the 250 reply.
    assert all(r.provider_id and r.provider_id.startswith("TEST") for r in results)


def test_replies_map_to_sent_deferred_failed() -> None:
    handler = FaultyHandler(
        reject={"gone@example.org": "550 5.1.1 <gone@example.org>: mailbox unavailable"},
        defer={
            "busy@example.org": (1, "451 4.3.0 Mailbox busy, try later"),
            "closing@example.org": (1, "421 4.3.2 Service shutting down"),
        },
    )
    with SMTPTestServer(handler) as server:
        results = asyncio.run(
            send_each(
                backend_for(server),
                [
                    "gone@example.org",
                    "busy@example.org",
                    "closing@example.org",
                    "busy@example.org",
                    "closing@example.org",
                    "after@example.org",
                ],
            )
        )
    statuses = [r.status for r in results]
    assert statuses == [
        DeliveryStatus.FAILED,
        DeliveryStatus.DEFERRED,
        DeliveryStatus.DEFERRED,
        DeliveryStatus.SENT,
        DeliveryStatus.SENT,
        DeliveryStatus.SENT,
    ]
    assert results[0].error == "550 5.1.1 <gone@example.org>: mailbox unavailable"
    assert results[1].error is not None and results[1].error.startswith("451")
    assert results[2].error is not None and results[2].error.startswith("421")
    # The 550 did not cost the connection; the 421 did (the server hung up).
    assert server.connections == 2


def test_dropped_connection_mid_data_is_retried_once_on_a_new_connection() -> None:
    handler = FaultyHandler(drop_data={"flaky@example.org": 1})
    with SMTPTestServer(handler) as server:
        results = asyncio.run(send_each(backend_for(server), ["flaky@example.org"]))
        assert results[0].status is DeliveryStatus.SENT
        assert server.recipients()["flaky@example.org"] == 1
        assert server.connections == 2


def test_a_connection_dropped_twice_is_a_transient_backend_error() -> None:
    handler = FaultyHandler(drop_data={"flaky@example.org": 5})
    with SMTPTestServer(handler) as server, pytest.raises(BackendError) as caught:
        asyncio.run(send_each(backend_for(server), ["flaky@example.org"]))
    assert caught.value.transient


def test_server_down_is_a_transient_backend_error() -> None:
    server = SMTPTestServer().start()
    env = server.env()
    server.stop()
    backend = SMTPBackend(load_settings(env, env_file=None))
    with pytest.raises(BackendError) as caught:
        asyncio.run(backend.open(CAMPAIGN))
    assert caught.value.transient
    assert "connection refused" in str(caught.value) or "connect call failed" in str(caught.value)


def test_a_slow_server_times_out() -> None:
    handler = FaultyHandler(data_delay=2.0)
    with SMTPTestServer(handler) as server, pytest.raises(BackendError) as caught:
        asyncio.run(send_each(backend_for(server, SMTP_TIMEOUT="0.3"), ["slow@example.org"]))
    assert caught.value.transient


def test_starttls_is_required_when_asked_for(smtp_server: SMTPTestServer) -> None:
    backend = backend_for(smtp_server, SMTP_SECURITY="starttls")
    with pytest.raises(ConfigError, match="does not offer STARTTLS"):
        asyncio.run(backend.open(CAMPAIGN))
    assert smtp_server.messages == []


def test_login_on_a_local_plain_server() -> None:
    with SMTPTestServer(credentials=("curator", "hunter2-long-pass")) as server:
        backend = backend_for(server, SMTP_USERNAME="curator", SMTP_PASSWORD="hunter2-long-pass")
        results = asyncio.run(send_each(backend, ["reader@example.org"]))
        assert results[0].status is DeliveryStatus.SENT
        assert server.logins == ["curator"]


def test_a_refused_login_is_a_config_error_without_the_password() -> None:
    with SMTPTestServer(credentials=("curator", "right-password")) as server:
        backend = backend_for(server, SMTP_USERNAME="curator", SMTP_PASSWORD="wrong-password-x")
        with pytest.raises(ConfigError) as caught:
            asyncio.run(backend.open(CAMPAIGN))
        assert "refused the login" in str(caught.value)
        assert "wrong-password-x" not in str(caught.value)
        assert server.messages == []


def test_no_password_in_clear_text_to_a_remote_host() -> None:
    settings = load_settings(
        {
            "SMTP_HOST": "smtp.example.org",
            "SMTP_SECURITY": "none",
            "SMTP_USERNAME": "curator",
            "SMTP_PASSWORD": "secret-pass",
        },
        env_file=None,
    )
    with pytest.raises(ConfigError, match="unencrypted") as caught:
        SMTPBackend.check_settings(settings)
    assert "secret-pass" not in str(caught.value)


def test_clear_text_login_to_a_remote_host_only_when_explicitly_allowed() -> None:
    plain_remote = {
        "SMTP_HOST": "relay.lan.example",
        "SMTP_SECURITY": "none",
        "SMTP_USERNAME": "curator",
        "SMTP_PASSWORD": "secret-pass",
    }
    allowed = load_settings({**plain_remote, "SMTP_ALLOW_INSECURE_LOGIN": "yes"}, env_file=None)
    SMTPBackend.check_settings(allowed)  # no ConfigError
    refused = load_settings({**plain_remote, "SMTP_ALLOW_INSECURE_LOGIN": "no"}, env_file=None)
    with pytest.raises(ConfigError, match="unencrypted"):
        SMTPBackend.check_settings(refused)
    # A backend's own keys are read when it checks its settings (validate --subscribers, send).
    unclear = load_settings({**plain_remote, "SMTP_ALLOW_INSECURE_LOGIN": "maybe"}, env_file=None)
    with pytest.raises(ConfigError, match="SMTP_ALLOW_INSECURE_LOGIN must be yes or no"):
        SMTPBackend.check_settings(unclear)


def test_missing_host_is_named() -> None:
    with pytest.raises(ConfigError, match="SMTP_HOST"):
        SMTPBackend.check_settings(load_settings({}, env_file=None))
