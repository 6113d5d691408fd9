"""The Mailgun backend against a local server that answers as Mailgun's API does."""

from __future__ import annotations

import asyncio
import gc
import html
import re
import textwrap
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from pathlib import Path

import pytest
from mailgun_server import Fault, MailgunServer
from pydantic import SecretStr

from digest.audience.subscribers import Subscriber
from digest.backends.base import (
    CampaignInfo,
    DeliveryResult,
    DeliveryStatus,
    OutgoingMessage,
    load_backend,
)
from digest.backends.mailgun import MailgunBackend, check_batch_is_private
from digest.errors import BackendError, ConfigError
from digest.ledger import Ledger
from digest.render.merge import MergeTemplate, SlotMarkers, escape_html, escape_text
from digest.retry import RetryPolicy
from digest.send.campaign import Campaign, RunResult, SendOptions
from digest.send.message import MessageFactory
from digest.settings import Settings
from digest.tokens import fill_url, make_token, verify_token

API_KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
DOMAIN = "mg.example.org"
SIGNING_SECRET = "digest-signing-secret-for-tests-4e2c"
SLUG = "2026-03"
UNSUBSCRIBE_URL = "https://news.example.org/unsubscribe/{token}"
MAILTO = "mailto:unsubscribe@example.org"
ADDRESS = re.compile(r"[\w.+-]+@example\.net")


@pytest.fixture
def server() -> Iterator[MailgunServer]:
    with MailgunServer(api_key=API_KEY, domain=DOMAIN) as running:
        yield running


def make_settings(server: MailgunServer, *, api_key: str = API_KEY) -> Settings:
    return Settings(
        from_address="Clippings <clippings@example.org>",
        reply_to="editor@example.org",
        backend="mailgun",
        secret=SecretStr(SIGNING_SECRET),
        unsubscribe_url=UNSUBSCRIBE_URL,
        unsubscribe_mailto=MAILTO,
        raw={
            "MAILGUN_API_KEY": api_key,
            "MAILGUN_DOMAIN": DOMAIN,
            "MAILGUN_API_URL": server.api_url,
        },
    )


def make_campaign(*, subject: str = "Clippings, March 2026: three papers") -> CampaignInfo:
    """A rendered-edition stand-in: html and text MergeTemplates built with SlotMarkers.

    The content holds text that looks like Mailgun's placeholders; it must stay literal."""
    markers = SlotMarkers()
    m = markers.marker
    page = textwrap.dedent(
        f"""\
        <html><body style="width:100%">
        <p>Hello {m("name")},</p>
        <p>Company: {m("field:company")}</p>
        <p>Literal: %recipient.email% and %unsubscribe_url%</p>
        <a href="{m("unsubscribe_url")}">Unsubscribe</a>
        </body></html>
        """
    )
    text = textwrap.dedent(
        f"""\
        Hello {m("name")},
        Company: {m("field:company")}
        Literal: %recipient.email% and %unsubscribe_url%
        Unsubscribe: {m("unsubscribe_url")}
        """
    )
    return CampaignInfo(
        slug=SLUG,
        subject=subject,
        from_address="Clippings <clippings@example.org>",
        reply_to="editor@example.org",
        list_id="Clippings <clippings.example.org>",
        html=markers.compile(page, escape=escape_html),
        text=markers.compile(text, escape=escape_text),
    )


def make_message(address: str, name: str, company: str = "Acme & Co") -> OutgoingMessage:
    token = make_token(SIGNING_SECRET, address, SLUG)
    link = fill_url(UNSUBSCRIBE_URL, token)
    return OutgoingMessage(
        address=address,
        name=name,
        message_id=f"<{token[:16]}.{SLUG}@example.org>",
        values={
            "email": address,
            "name": name,
            "unsubscribe_url": link,
            "field:company": company,
        },
        headers={
            "List-Unsubscribe": f"<{link}>, <{MAILTO}?subject=unsubscribe>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        build=lambda: b"",
    )


def make_messages(count: int) -> list[OutgoingMessage]:
    return [make_message(f"reader{i}@example.net", f"Reader {i}") for i in range(count)]


def run_backend(
    settings: Settings,
    batches: Sequence[Sequence[OutgoingMessage]],
    *,
    campaign: CampaignInfo | None = None,
    timeout: float | None = None,
) -> list[DeliveryResult]:
    """Open, send each batch, close: what the engine does."""

    async def go() -> list[DeliveryResult]:
        backend = MailgunBackend(settings, timeout=timeout)
        await backend.open(campaign or make_campaign())
        try:
            results: list[DeliveryResult] = []
            for batch in batches:
                results += await backend.send(batch)
            return results
        finally:
            await backend.close()
            await backend.close()  # safe twice

    return asyncio.run(go())


def send_error(settings: Settings, *, timeout: float | None = None) -> BackendError:
    with pytest.raises(BackendError) as caught:
        run_backend(settings, [make_messages(3)], timeout=timeout)
    return caught.value


# -- batches ---------------------------------------------------------------------------------


def test_2500_recipients_go_in_three_private_batches(server: MailgunServer) -> None:
    messages = make_messages(2500)
    size = MailgunBackend.batch_size
    started = time.perf_counter()
    results = run_backend(
        make_settings(server), [messages[i : i + size] for i in range(0, 2500, size)]
    )
    elapsed = time.perf_counter() - started

    requests = server.message_requests
    assert len(requests) == 3
    assert [len(r.all("to")) for r in requests] == [1000, 1000, 500]
    for request in requests:
        assert request.content_type.startswith("multipart/form-data")
        assert (request.username, request.password) == ("api", API_KEY)
        to_addresses = [parseaddr(entry)[1] for entry in request.all("to")]
        variables = request.recipient_variables
        assert list(variables) == to_addresses  # complete, and exactly the `to` list
        for address, values in variables.items():
            assert values["email"] == address
            assert values["unsubscribe_url"].startswith("https://news.example.org/unsubscribe/")
            assert values["list_unsubscribe"] == (
                f"<{values['unsubscribe_url']}>, <{MAILTO}?subject=unsubscribe>"
            )
            assert values["message_id"].endswith("@example.org>")
        assert "%recipient.unsubscribe_url%" in request.one("html")
        assert "%recipient.unsubscribe_url%" in request.one("text")
        assert not ADDRESS.search(request.one("html") + request.one("text"))
        headers = request.headers
        assert headers["List-Unsubscribe"] == "%recipient.list_unsubscribe%"
        assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert headers["List-Id"] == "Clippings <clippings.example.org>"
        assert headers["Reply-To"] == "editor@example.org"
        assert headers["Message-Id"] == "%recipient.message_id%"
    assert all(r.status is DeliveryStatus.SENT and r.provider_id for r in results)
    assert [r.address for r in results] == [m.address for m in messages]
    assert len({r.provider_id for r in results}) == 3  # one Mailgun id per request

    # What each reader gets once Mailgun fills the placeholders: their own data, nobody else's.
    deliveries = server.deliveries()
    assert len(deliveries) == 2500
    by_address = {m.address: m for m in messages}
    for delivery in deliveries:
        own = by_address[delivery.address]
        assert set(ADDRESS.findall(delivery.html + delivery.text + delivery.to)) == {own.address}
        assert f'href="{own.values["unsubscribe_url"]}"' in delivery.html
        assert f"Unsubscribe: {own.values['unsubscribe_url']}" in delivery.text
        assert delivery.headers["List-Unsubscribe"] == own.headers["List-Unsubscribe"]
        assert delivery.headers["Message-Id"] == own.message_id
        assert f"Hello {own.name}," in delivery.html
    print(f"\n2,500 recipients in 3 requests: {elapsed:.2f} s")


def test_one_call_larger_than_mailgun_allows_is_split(server: MailgunServer) -> None:
    results = run_backend(make_settings(server), [make_messages(1500)])
    assert [len(r.all("to")) for r in server.message_requests] == [1000, 500]
    assert len(results) == 1500 and {r.status for r in results} == {DeliveryStatus.SENT}


def test_the_messages_of_a_batch_are_let_go_while_mailgun_answers(server: MailgunServer) -> None:
    # Memory of a send grows with the requests in flight, not with their 1,000 messages each
    # (bench/send.py --mailgun: peak RSS 123 -> 99 MB with 4-5 requests in flight).
    server.fail_next(Fault.slow(1.0))

    async def go() -> tuple[list[DeliveryResult], list[bool]]:
        backend = MailgunBackend(make_settings(server))
        await backend.open(make_campaign())
        messages = make_messages(1000)
        alive = [weakref.ref(m) for m in messages]
        sending = asyncio.create_task(backend.send(messages))
        del messages  # as the engine does: the list is handed over
        while not server.message_requests:
            await asyncio.sleep(0.01)
        gc.collect()
        held = [ref() is not None for ref in alive]
        results = await sending
        await backend.close()
        return results, held

    results, held = asyncio.run(go())
    assert not any(held)
    assert len(results) == 1000 and {r.status for r in results} == {DeliveryStatus.SENT}
    assert [r.address for r in results] == [f"reader{i}@example.net" for i in range(1000)]


def test_content_that_looks_like_a_placeholder_stays_literal(server: MailgunServer) -> None:
    subject = "Why %recipient.email% and %unsubscribe_url% matter"
    run_backend(make_settings(server), [make_messages(2)], campaign=make_campaign(subject=subject))
    for delivery in server.deliveries():
        assert delivery.subject == subject
        # The browser shows the literal text; the address is not put in its place.
        assert "Literal: %recipient.email% and %unsubscribe_url%" in html.unescape(delivery.html)
        assert "Literal: %\u200brecipient.email% and %\u200bunsubscribe_url%" in delivery.text
        assert delivery.address not in html.unescape(delivery.html).split("Literal:")[1][:40]
        assert 'style="width:100%"' in delivery.html  # ordinary percent signs untouched


def test_names_are_quoted_and_values_are_data(server: MailgunServer) -> None:
    tricky = make_message("jane@example.net", 'Doe, Jane "JD" <boss@evil.example>')
    sneaky = make_message("sam@example.net", "Sam %recipient.email%", company="%recipient.name%")
    results = run_backend(make_settings(server), [[tricky, sneaky]])
    assert {r.status for r in results} == {DeliveryStatus.SENT}
    (request,) = server.message_requests
    assert request.all("to")[0] == '"Doe, Jane \\"JD\\" <boss@evil.example>" <jane@example.net>'
    deliveries = {d.address: d for d in server.deliveries()}
    assert "evil.example" not in deliveries["jane@example.net"].address
    sam = deliveries["sam@example.net"]
    assert "Hello Sam %recipient.email%," in sam.html  # a value is filled once, never re-read
    assert "Company: %recipient.name%" in sam.text


def test_values_are_html_escaped_in_the_html_body_only(server: MailgunServer) -> None:
    # Mailgun pastes values in as they are: the HTML body must get escaped copies, or a name
    # from the CSV becomes markup in every reader's mail client.
    eve = make_message("eve@example.net", '<img src=x onerror="alert(1)">', company="A&B <Co>")
    run_backend(make_settings(server), [[eve]])
    (delivery,) = server.deliveries()
    assert "<img" not in delivery.html
    assert "Hello &lt;img src=x onerror=&quot;alert(1)&quot;&gt;," in delivery.html
    assert "Company: A&amp;B &lt;Co&gt;" in delivery.html
    # The text body shows the values exactly.
    assert 'Hello <img src=x onerror="alert(1)">,' in delivery.text
    assert "Company: A&B <Co>" in delivery.text


def test_unusable_messages_fail_alone(server: MailgunServer) -> None:
    good = make_message("ok@example.net", "Ok")
    duplicate = make_message("OK@example.net", "Ok again")
    broken = make_message("broken@example.net", "Broken")
    broken = OutgoingMessage(
        address=broken.address,
        name=broken.name,
        message_id=broken.message_id,
        values=broken.values,
        headers={"List-Unsubscribe": "<https://x.example/u>\r\nBcc: victim@example.net"},
        build=broken.build,
    )
    results = run_backend(make_settings(server), [[good, duplicate, broken]])
    assert [r.status for r in results] == [
        DeliveryStatus.SENT,
        DeliveryStatus.FAILED,
        DeliveryStatus.FAILED,
    ]
    assert "twice" in (results[1].error or "")
    assert "line break" in (results[2].error or "")
    (request,) = server.message_requests
    assert request.all("to") == ['"Ok" <ok@example.net>']


def test_a_batch_without_matching_recipient_variables_is_refused() -> None:
    to = ["a@example.net", "b@example.net"]
    for variables in ("", "{}", '{"a@example.net": {}}', "not json"):
        with pytest.raises(BackendError, match="shown to everyone"):
            check_batch_is_private(to, to, variables)
    check_batch_is_private(to, to, '{"a@example.net": {}, "b@example.net": {}}')


# -- refusals --------------------------------------------------------------------------------


def test_wrong_api_key_stops_with_a_config_error(server: MailgunServer) -> None:
    wrong_key = "key-wrong0000000000000000000000000"
    with pytest.raises(ConfigError) as caught:
        run_backend(make_settings(server, api_key=wrong_key), [make_messages(3)])
    assert str(caught.value) == "Mailgun rejected the API key (401)"
    assert wrong_key not in repr(caught.value) and wrong_key not in str(caught.value.hint)


def test_400_surfaces_mailgun_message(server: MailgunServer) -> None:
    server.fail_next(Fault.bad_request("'from' parameter is not a valid address"))
    results = run_backend(make_settings(server), [make_messages(2)])
    assert [r.status for r in results] == [DeliveryStatus.FAILED] * 2
    assert results[0].error == (
        "Mailgun refused the request (400): 'from' parameter is not a valid address"
    )


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (lambda: Fault.rate_limited(try_again_at=datetime.now(UTC) + timedelta(seconds=120)), 120),
        (lambda: Fault.rate_limited(retry_after=7), 7),
        (lambda: Fault.rate_limited(), None),
    ],
    ids=["try-again-after-date", "retry-after-header", "no-time-named"],
)
def test_429_defers_until_the_time_mailgun_names(
    server: MailgunServer, fault: Callable[[], Fault], expected: float | None
) -> None:
    server.fail_next(fault())
    results = run_backend(make_settings(server), [make_messages(2)])
    assert [r.status for r in results] == [DeliveryStatus.DEFERRED] * 2
    if expected is None:
        assert results[0].retry_after is None
    else:
        assert results[0].retry_after == pytest.approx(expected, abs=3)
    assert "429" in (results[0].error or "")


def test_420_sending_limit_is_a_deferral_too(server: MailgunServer) -> None:
    until = datetime.now(UTC) + timedelta(minutes=30)
    message = (
        f"Domain {DOMAIN} is not allowed to send: recipient limit exceeded, try again after "
        + until.strftime("%a, %d %b %Y %H:%M:%S UTC")
    )
    server.fail_next(Fault(420, f'{{"message": "{message}"}}'))
    results = run_backend(make_settings(server), [make_messages(1)])
    assert results[0].status is DeliveryStatus.DEFERRED
    assert results[0].retry_after == pytest.approx(1800, abs=3)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_transient(server: MailgunServer, status: int) -> None:
    server.fail_next(Fault.server_error(status))
    error = send_error(make_settings(server))
    assert error.transient and error.status == status
    assert f"Server error {status}" in (error.response or "")
    # The next try goes through: nothing is left half-done on our side.
    assert len(run_backend(make_settings(server), [make_messages(3)])) == 3


def test_timeout_is_transient(server: MailgunServer) -> None:
    server.fail_next(Fault.slow(1.5))
    started = time.perf_counter()
    error = send_error(make_settings(server), timeout=0.3)
    assert error.transient and "in time" in str(error)
    assert time.perf_counter() - started < 1.4


@pytest.mark.parametrize("fault", [Fault.truncated_json(), Fault.invalid_json()])
def test_unreadable_200_counts_as_accepted(server: MailgunServer, fault: Fault) -> None:
    # Mailgun said 200: the batch was taken. Retrying would mail everyone in it twice.
    server.fail_next(fault)
    results = run_backend(make_settings(server), [make_messages(3)])
    assert [r.status for r in results] == [DeliveryStatus.SENT] * 3
    assert all(r.provider_id is None for r in results)
    assert len(server.message_requests) == 1


def test_unreachable_server_is_transient() -> None:
    stopped = MailgunServer(api_key=API_KEY, domain=DOMAIN).start()
    settings = make_settings(stopped)
    stopped.stop()
    error = send_error(settings)
    assert error.transient and "cannot reach Mailgun" in str(error)


def test_the_api_key_never_appears_in_results_or_errors(server: MailgunServer) -> None:
    settings = make_settings(server)
    seen: list[str] = []
    # A server that echoes the key back (some proxies do) must not get it into our output.
    server.fail_next(Fault.bad_request(f"invalid key {API_KEY}"))
    seen.append(repr(run_backend(settings, [make_messages(2)])))
    for fault in (Fault(503, f'{{"message": "upstream refused api:{API_KEY}"}}'), Fault.slow(1)):
        server.fail_next(fault)
        error = send_error(settings, timeout=0.3)
        seen += [str(error), repr(error), error.response or "", repr(error.__cause__)]
    with pytest.raises(ConfigError) as rejected:
        run_backend(make_settings(server, api_key=API_KEY + "x"), [make_messages(1)])
    seen += [str(rejected.value), repr(rejected.value), str(rejected.value.hint)]
    assert all(API_KEY not in text for text in seen)
    assert "***" in seen[0]


# -- settings --------------------------------------------------------------------------------


def test_missing_settings_are_named() -> None:
    with pytest.raises(ConfigError, match="MAILGUN_API_KEY, MAILGUN_DOMAIN, DIGEST_FROM"):
        MailgunBackend.check_settings(Settings())
    with pytest.raises(ConfigError, match="MAILGUN_DOMAIN"):
        MailgunBackend.check_settings(
            Settings(
                from_address="a@example.org",
                raw={"MAILGUN_API_KEY": API_KEY, "MAILGUN_DOMAIN": "https://mg.example.org/"},
            )
        )


def test_registered_as_the_mailgun_backend() -> None:
    assert load_backend("mailgun") is MailgunBackend
    assert MailgunBackend.batch_size == 1000


# -- through the sending engine ----------------------------------------------------------------


@dataclass(frozen=True)
class _Edition:
    newsletter: str = "Clippings"
    slug: str = SLUG
    subject: str = "Clippings, March 2026: three papers"


@dataclass(frozen=True)
class _Rendered:
    """What MessageFactory needs of a RenderedEdition, built without the renderer."""

    edition: _Edition
    html: MergeTemplate
    text: MergeTemplate


def test_a_campaign_through_mailgun_reaches_everyone_once(
    server: MailgunServer, tmp_path: Path
) -> None:
    settings = make_settings(server)
    template = make_campaign()
    rendered = _Rendered(_Edition(), template.html, template.text)  # type: ignore[arg-type]
    subscribers = [
        Subscriber(f"reader{i}@example.net", f"Reader {i}", {"company": f"Co {i}"}, i + 2)
        for i in range(1200)
    ]
    # The server fails twice on the way: both are retried by the engine.
    server.fail_next(Fault.server_error(503), Fault.rate_limited(retry_after=0))
    options = SendOptions(concurrency=2, retry=RetryPolicy(backoff=0.01, max_backoff=0.05))

    def run() -> RunResult:
        with Ledger(tmp_path) as ledger:
            campaign = Campaign(
                messages=MessageFactory(rendered, settings),
                backend=MailgunBackend(settings),
                recipients=subscribers,
                ledger=ledger,
                options=options,
            )
            return asyncio.run(campaign.run())

    result = run()
    assert (result.sent, result.failed) == (1200, 0)
    assert all(len(r.all("to")) <= 1000 for r in server.message_requests)
    deliveries = server.deliveries()
    assert sorted(d.address for d in deliveries) == sorted(s.email for s in subscribers)
    accepted_requests = len({d.provider_id for d in deliveries})
    assert len(server.message_requests) == accepted_requests + 2  # the two refused, retried
    for delivery in deliveries[:50]:
        i = int(delivery.address.removeprefix("reader").split("@")[0])
        assert f"Company: Co {i}" in delivery.text
        assert delivery.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert delivery.headers["List-Unsubscribe"].startswith("<https://news.example.org/")
        assert delivery.headers["List-Id"] == "Clippings <clippings.example.org>"
        assert delivery.headers["Message-Id"].endswith("@example.org>")
        token = delivery.headers["List-Unsubscribe"].split("/unsubscribe/")[1].split(">")[0]
        assert verify_token(SIGNING_SECRET, token).address == delivery.address
    with Ledger(tmp_path) as ledger:
        summary = ledger.summary(SLUG)
    assert (summary.sent, summary.failed, summary.pending) == (1200, 0, 0)

    requests_before = len(server.message_requests)
    assert run().sent == 0  # a rerun sends nobody twice
    assert len(server.message_requests) == requests_before


@pytest.mark.parametrize(
    ("newsletter", "namespace"),
    [
        ('Clip "the" <best>', "clip-the-best.example.org"),
        ("Ça & Là: Weekly!", "ca-la-weekly.example.org"),
        ("Back\\slash", "back-slash.example.org"),
    ],
)
def test_list_id_of_a_name_with_specials_stays_one_well_formed_header(
    server: MailgunServer, newsletter: str, namespace: str
) -> None:
    settings = make_settings(server)
    template = make_campaign()
    edition = _Edition(newsletter=newsletter)
    rendered = _Rendered(edition, template.html, template.text)  # type: ignore[arg-type]
    factory = MessageFactory(rendered, settings)
    subscriber = Subscriber("reader@example.net", "Reader", {"company": "Co"}, 2)

    results = run_backend(settings, [[factory.message_for(subscriber)]], campaign=factory.campaign)

    assert results[0].status is DeliveryStatus.SENT
    list_id = server.message_requests[0].headers["List-Id"]
    # A mail client parses the name and the list's namespace back, nothing bleeds across.
    assert parseaddr(list_id) == (newsletter, namespace)
    assert list_id.endswith(f"<{namespace}>")
