"""Reading Mailgun's unsubscribes, bounces and complaints, page by page, from a local server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mailgun_server import Fault, MailgunServer, sample_suppressions

from digest.audience.suppressions import SuppressionStore
from digest.backends.mailgun import fetch_suppressions
from digest.errors import BackendError, ConfigError
from digest.settings import Settings

API_KEY = "key-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
DOMAIN = "mg.example.org"
REASONS = {"unsubscribes": "unsubscribed", "bounces": "bounced", "complaints": "complained"}


@pytest.fixture
def server() -> Iterator[MailgunServer]:
    with MailgunServer(api_key=API_KEY, domain=DOMAIN, page_size=2) as running:
        for endpoint in REASONS:
            running.add_suppressions(endpoint, sample_suppressions(endpoint, 6))
        yield running


def make_settings(server: MailgunServer, **overrides: str) -> Settings:
    """Settings as the environment would give them; ``overrides`` by environment name."""
    raw = {"MAILGUN_API_KEY": API_KEY, "MAILGUN_DOMAIN": DOMAIN, "MAILGUN_API_URL": server.api_url}
    return Settings(raw={**raw, **overrides})


def get_requests(server: MailgunServer, endpoint: str) -> list[dict[str, list[str]]]:
    return [r.query for r in server.requests if r.path == f"/v3/{DOMAIN}/{endpoint}"]


def test_three_pages_of_each_kind_are_read_to_the_end(server: MailgunServer) -> None:
    fetched = list(fetch_suppressions(make_settings(server)))

    assert len(fetched) == 18
    for endpoint, reason in REASONS.items():
        expected = sample_suppressions(endpoint, 6)
        got = [entry for entry in fetched if entry[1] == reason]
        assert [(a, c) for a, _, c in got] == [(e["address"], e["created_at"]) for e in expected]
        queries = get_requests(server, endpoint)
        # Three full pages, then the empty one that says "no more".
        assert len(queries) == 4
        assert queries[0] == {"limit": ["1000"]}
        assert [q.get("address") for q in queries[1:]] == [
            [f"{endpoint[:-1]}1@example.net"],
            [f"{endpoint[:-1]}3@example.net"],
            [f"{endpoint[:-1]}5@example.net"],
        ]
    assert {(r.username, r.password) for r in server.requests} == {("api", API_KEY)}
    assert fetched[0] == (
        "unsubscribe0@example.net",
        "unsubscribed",
        "Sun, 01 Mar 2026 12:00:00 UTC",
    )


def test_fetched_entries_go_into_the_suppression_store(
    server: MailgunServer, tmp_path: Path
) -> None:
    with SuppressionStore(tmp_path) as store:
        added = store.add_many(
            (address, reason, "mailgun", None, None, created)
            for address, reason, created in fetch_suppressions(make_settings(server))
        )
        assert added == 18
        counts = store.count_by_reason()
        assert (counts["unsubscribed"], counts["bounced"], counts["complained"]) == (6, 6, 6)
        bounce = store.get("bounce2@example.net")
        assert bounce is not None and bounce.reason == "bounced"
        assert bounce.created_at == "2026-03-01T14:00:00Z"  # Mailgun's date, kept


def test_an_empty_domain_yields_nothing() -> None:
    with MailgunServer(api_key=API_KEY, domain=DOMAIN) as empty:
        assert list(fetch_suppressions(make_settings(empty))) == []
        assert len(empty.requests) == 3


def test_paging_links_never_take_the_key_to_another_host(server: MailgunServer) -> None:
    server.paging_api_url = "https://api.mailgun.net/v3"  # what the real API writes there
    fetched = list(fetch_suppressions(make_settings(server)))
    assert len(fetched) == 18  # every page was read from the configured host


def test_wrong_key_is_a_config_error(server: MailgunServer) -> None:
    settings = make_settings(server, MAILGUN_API_KEY="key-wrong")
    with pytest.raises(ConfigError, match=r"rejected the API key \(401\)") as caught:
        list(fetch_suppressions(settings))
    assert "key-wrong" not in str(caught.value) + str(caught.value.hint)


def test_unknown_domain_is_a_config_error(server: MailgunServer) -> None:
    with pytest.raises(ConfigError, match=r"does not know the domain 'other\.example\.org'"):
        list(fetch_suppressions(make_settings(server, MAILGUN_DOMAIN="other.example.org")))


def test_other_refusals_carry_mailguns_message(server: MailgunServer) -> None:
    server.fail_next(Fault.bad_request("Invalid limit"), endpoint="unsubscribes")
    with pytest.raises(BackendError, match="Invalid limit") as caught:
        list(fetch_suppressions(make_settings(server)))
    assert not caught.value.transient and caught.value.status == 400


def test_rate_limits_and_server_errors_are_retried(server: MailgunServer) -> None:
    server.fail_next(Fault.server_error(503), Fault.rate_limited(retry_after=0), endpoint="bounces")
    server.fail_next(Fault.truncated_json(), endpoint="complaints")
    fetched = list(fetch_suppressions(make_settings(server), backoff=0.01))
    assert len(fetched) == 18
    assert len(get_requests(server, "bounces")) == 4 + 2
    assert len(get_requests(server, "complaints")) == 4 + 1


def test_a_server_that_stays_down_stops_with_a_transient_error(server: MailgunServer) -> None:
    server.fail_next(*[Fault.server_error(502)] * 3, endpoint="unsubscribes")
    with pytest.raises(BackendError, match="502") as caught:
        list(fetch_suppressions(make_settings(server), retries=2, backoff=0.01))
    assert caught.value.transient
    assert len(get_requests(server, "unsubscribes")) == 3


def test_a_slow_server_times_out_and_is_retried(server: MailgunServer) -> None:
    server.fail_next(Fault.slow(1.0), endpoint="unsubscribes")
    with httpx.Client(timeout=0.3) as client:
        fetched = list(fetch_suppressions(make_settings(server), client=client, backoff=0.01))
    assert len(fetched) == 18


def test_missing_settings_are_named() -> None:
    with pytest.raises(ConfigError, match="MAILGUN_API_KEY, MAILGUN_DOMAIN"):
        list(fetch_suppressions(Settings()))


def test_the_page_size_asked_for_is_sent(server: MailgunServer) -> None:
    list(fetch_suppressions(make_settings(server), page_limit=2))
    assert server.requests[0].query["limit"] == ["2"]
    assert server.requests[1].query["page"] == ["next"]
