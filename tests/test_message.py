"""Every message sent (contract §5), read back the way a mail client reads it."""

from __future__ import annotations

import textwrap
import time
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import SMALL_EDITION

from digest.audience.subscribers import Subscriber
from digest.edition.load import load_edition, load_edition_text
from digest.errors import ConfigError
from digest.render.email import RenderedEdition, render_edition
from digest.render.merge import SlotMarkers, escape_html, escape_text
from digest.send.message import HeaderValueError, MessageFactory, list_id_namespace
from digest.settings import Settings, load_settings
from digest.tokens import verify_token

SECRET = "message-test-secret-4d1f-0c8e2a6b9f"
REPO = Path(__file__).parents[1]

# The shared small edition, with the real subject (long and holding a comma and digits).
EDITION = SMALL_EDITION.replace(
    '"Clippings, March 2026: a small test edition"',
    '"Clippings, March 2026: Gemini 3.1 Flash Live, VoXtream2 and a 25 MB TTS"',
)


def make_settings(**overrides: str) -> Settings:
    environ = {
        "DIGEST_FROM": "Clippings <clippings@example.org>",
        "DIGEST_REPLY_TO": "Editor <editor@example.org>",
        "DIGEST_SECRET": SECRET,
        "DIGEST_UNSUBSCRIBE_URL": "https://example.org/unsubscribe/{token}",
        "DIGEST_UNSUBSCRIBE_MAILTO": "unsubscribe@example.org",
    }
    environ.update(overrides)
    return load_settings({k: v for k, v in environ.items() if v}, env_file=None)


@pytest.fixture(scope="module")
def rendered() -> RenderedEdition:
    edition = load_edition_text(textwrap.dedent(EDITION), "content/2026-03.yaml")
    return render_edition(edition, archive_url="https://example.org/archive/{slug}/")


def parse(data: bytes) -> EmailMessage:
    message = BytesParser(policy=default).parsebytes(data)
    assert isinstance(message, EmailMessage)
    return message


def body_lines(data: bytes) -> list[bytes]:
    return data.split(b"\r\n\r\n", 1)[1].split(b"\r\n")


ADA = Subscriber("ada@example.org", "Ada Lovelace", {"city": "London"}, 2)


def test_headers_are_those_of_the_contract(rendered: RenderedEdition) -> None:
    factory = MessageFactory(rendered, make_settings())
    outgoing = factory.message_for(ADA)
    message = parse(outgoing.as_bytes())

    assert message["From"] == "Clippings <clippings@example.org>"
    assert message["To"] == "Ada Lovelace <ada@example.org>"
    assert message["Reply-To"] == "Editor <editor@example.org>"
    assert message["Subject"] == rendered.edition.subject
    assert message["MIME-Version"] == "1.0"
    assert message["List-Id"] == "Clippings <clippings.example.org>"
    sent_at = parsedate_to_datetime(message["Date"])
    assert sent_at.tzinfo is not None and abs(sent_at.timestamp() - time.time()) < 5

    token = outgoing.values["unsubscribe_url"].rsplit("/", 1)[1]
    assert verify_token(SECRET, token) == ("ada@example.org", "2026-03")
    assert message["List-Unsubscribe"] == (
        f"<https://example.org/unsubscribe/{token}>, "
        f"<mailto:unsubscribe@example.org?subject=unsubscribe%20{token}>"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Message-ID"] == outgoing.message_id
    assert outgoing.message_id.startswith("<") and outgoing.message_id.endswith("@example.org>")
    # Each header exactly once: nothing doubled by the per-recipient/constant split.
    for name in ("From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe", "List-Id"):
        assert len(message.get_all(name, [])) == 1, name


def test_text_comes_before_html_and_both_decode_to_the_filled_templates(
    rendered: RenderedEdition,
) -> None:
    outgoing = MessageFactory(rendered, make_settings()).message_for(ADA)
    message = parse(outgoing.as_bytes())
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    for part, template in zip(parts, (rendered.text, rendered.html), strict=True):
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
        body = part.get_content().replace("\r\n", "\n")
        assert body == template.fill(outgoing.values).replace("\r\n", "\n")
        # The recipient's own unsubscribe link and the "view in browser" link are in both.
        assert outgoing.values["unsubscribe_url"] in body
        assert "https://example.org/archive/2026-03/" in body


def test_the_bundled_edition_has_no_line_over_998_octets_and_builds_fast() -> None:
    rendered = render_edition(load_edition(REPO / "content" / "2026-03.yaml"))
    factory = MessageFactory(rendered, make_settings())
    data = factory.message_for(ADA).as_bytes()
    assert b"\n" not in data.replace(b"\r\n", b"")  # CRLF throughout, no bare LF
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    assert max(len(line) for line in body_lines(data)) <= 78
    started = time.perf_counter()
    for n in range(500):
        factory.message_for(Subscriber(f"r{n}@example.org", "Zoë Ünal", {}, n)).as_bytes()
    per_message = (time.perf_counter() - started) / 500
    assert per_message < 0.002  # target 0.5 ms; generous so a busy machine does not flake


@dataclass(frozen=True)
class FakeEdition:
    newsletter: str
    slug: str
    subject: str


@dataclass(frozen=True)
class FakeRendered:
    edition: Any
    html: Any
    text: Any


def handmade(body_html: str, body_text: str, **edition: str) -> FakeRendered:
    """A rendered edition built from literal strings with {name}/{email} slots."""

    def compile_(source: str, escape: Any) -> Any:
        markers = SlotMarkers()
        for slot in ("name", "email", "unsubscribe_url", "field:city"):
            source = source.replace("{" + slot + "}", markers.marker(slot))
        return markers.compile(source, escape=escape)

    fields = {"newsletter": "Clippings", "slug": "2026-03", "subject": "Hello"} | edition
    return FakeRendered(
        FakeEdition(**fields), compile_(body_html, escape_html), compile_(body_text, escape_text)
    )


def test_long_lines_trailing_blanks_and_non_ascii_survive_quoted_printable() -> None:
    html = "<p>" + "é" * 3000 + "</p>   \n<p>{name} from {field:city}</p>\t\n" + "x" * 5000
    text = "Dear {name},  \n" + ". a line starting with a dot\r\nFrom here\rand there " * 40
    rendered = handmade(html, text)
    outgoing = MessageFactory(rendered, make_settings()).message_for(
        Subscriber("ada@example.org", "Ada <& Co>", {"city": "Zürich"}, 2)
    )
    data = outgoing.as_bytes()
    assert max(len(line) for line in body_lines(data)) <= 78
    message = parse(data)
    (html_part,) = [p for p in message.iter_parts() if p.get_content_type() == "text/html"]
    (text_part,) = [p for p in message.iter_parts() if p.get_content_type() == "text/plain"]
    expected_html = rendered.html.fill(outgoing.values)
    assert "Ada &lt;&amp; Co&gt; from Zürich" in expected_html
    normalise = lambda s: s.replace("\r\n", "\n").replace("\r", "\n")  # noqa: E731
    assert normalise(html_part.get_content()) == normalise(expected_html)
    assert normalise(text_part.get_content()) == normalise(rendered.text.fill(outgoing.values))


@pytest.mark.parametrize(
    "name",
    ["Zoë Ünal", "José Martínez", "李伟", "Nadia O'Brien, PhD", 'Dr. "Bob" \\ Smith', ""],
)
def test_names_round_trip_through_a_mail_parser(rendered: RenderedEdition, name: str) -> None:
    subscriber = Subscriber("reader@example.org", name, {}, 2)
    data = MessageFactory(rendered, make_settings()).message_for(subscriber).as_bytes()
    (address,) = parse(data)["To"].addresses
    assert (address.display_name, address.addr_spec) == (name, "reader@example.org")
    to_line = next(line for line in data.split(b"\r\n") if line.startswith(b"To:"))
    assert to_line.isascii()


def test_a_long_non_ascii_name_is_folded_and_decodes_exactly(rendered: RenderedEdition) -> None:
    name = "Zoë Ünal-Çelik " * 12 + "the Ninth"
    data = (
        MessageFactory(rendered, make_settings())
        .message_for(Subscriber("reader@example.org", name, {}, 2))
        .as_bytes()
    )
    head = data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    to_header = head.split("\r\nTo: ", 1)[1] if "\r\nTo: " in head else head.split("To: ", 1)[1]
    lines = [to_header.split("\r\n")[0]]
    for line in to_header.split("\r\n")[1:]:
        if not line.startswith(" "):
            break
        lines.append(line)
    assert all(len(line) <= 78 for line in lines)
    phrase = "\r\n".join(lines).rsplit("<", 1)[0]
    # RFC 2047 decoding (the email package's address parser adds blanks between encoded words).
    assert str(make_header(decode_header(phrase))) == name


def test_non_ascii_subject_and_newsletter_are_encoded_and_decode_exactly() -> None:
    subject = "Clippings, März 2026 — VoXtream2, 日本語 and a 25 MB TTS for everyone who reads"
    rendered = handmade("<p>{name}</p>", "{name}", newsletter="Clïppings Hebdo", subject=subject)
    factory = MessageFactory(rendered, make_settings(DIGEST_FROM="news@example.org"))
    data = factory.message_for(ADA).as_bytes()
    head = data.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    # Every header line short, but for the unsubscribe URLs, which cannot be folded.
    assert all(len(line) <= 78 for line in head.split(b"\r\n") if b"unsubscribe" not in line)
    message = parse(data)
    assert message["Subject"] == subject
    assert message["From"].addresses[0].display_name == "Clïppings Hebdo"
    assert message["List-Id"].endswith("<clippings-hebdo.example.org>")
    assert factory.campaign.list_id == "Clïppings Hebdo <clippings-hebdo.example.org>"


@pytest.mark.parametrize(
    "name",
    ["Ada\r\nBcc: evil@example.org", "Ada\nBcc: evil@example.org", "Ada\rX", "Ada\u2028X"],
)
def test_a_line_break_in_a_name_never_becomes_a_header(
    rendered: RenderedEdition, name: str
) -> None:
    factory = MessageFactory(rendered, make_settings())
    with pytest.raises(HeaderValueError, match="line break"):
        factory.message_for(Subscriber("ada@example.org", name, {}, 2))


def test_a_line_break_in_the_subject_is_refused() -> None:
    with pytest.raises(HeaderValueError):
        MessageFactory(handmade("x", "x", subject="Hi\r\nBcc: evil@example.org"), make_settings())


def test_no_secret_in_the_message(rendered: RenderedEdition) -> None:
    settings = make_settings()
    outgoing = MessageFactory(rendered, settings).message_for(ADA)
    data = outgoing.as_bytes()
    for secret in settings.secrets():
        assert secret.encode() not in data
        assert all(secret not in v for v in outgoing.values.values())


def test_message_ids_are_unique_and_on_the_senders_domain(rendered: RenderedEdition) -> None:
    factory = MessageFactory(rendered, make_settings(DIGEST_FROM="News <news@Mail.Example.org>"))
    ids = {factory.message_for(ADA).message_id for _ in range(1000)}
    assert len(ids) == 1000
    assert all(i.endswith("@mail.example.org>") for i in ids)


def test_mailto_only_has_no_one_click_header(rendered: RenderedEdition) -> None:
    factory = MessageFactory(rendered, make_settings(DIGEST_UNSUBSCRIBE_URL=""))
    outgoing = factory.message_for(ADA)
    message = parse(outgoing.as_bytes())
    assert message["List-Unsubscribe"].startswith("<mailto:unsubscribe@example.org?subject=")
    assert "List-Unsubscribe-Post" not in message
    assert outgoing.values["unsubscribe_url"].startswith("mailto:")
    assert "List-Unsubscribe-Post" not in outgoing.headers


def test_values_and_campaign_for_the_backends(rendered: RenderedEdition) -> None:
    factory = MessageFactory(rendered, make_settings())
    outgoing = factory.message_for(ADA)
    assert outgoing.values["email"] == "ada@example.org"
    assert outgoing.values["name"] == "Ada Lovelace"
    assert outgoing.values["field:city"] == "London"
    assert set(outgoing.headers) == {"List-Unsubscribe", "List-Unsubscribe-Post"}
    campaign = factory.campaign
    assert campaign.from_address == "Clippings <clippings@example.org>"
    assert campaign.reply_to == "Editor <editor@example.org>"
    assert campaign.list_id == "Clippings <clippings.example.org>"
    assert campaign.headers == {"List-Id": campaign.list_id}
    assert campaign.subject == rendered.edition.subject and campaign.slug == "2026-03"
    assert campaign.html is rendered.html and campaign.text is rendered.text


def test_list_id_namespace() -> None:
    assert list_id_namespace("Clippings", "example.org") == "clippings.example.org"
    assert list_id_namespace("Ça & Là: Weekly!", "example.org") == "ca-la-weekly.example.org"
    assert list_id_namespace("日本語", "example.org") == "newsletter.example.org"


@pytest.mark.parametrize(
    ("overrides", "missing"),
    [
        ({"DIGEST_FROM": ""}, "DIGEST_FROM"),
        ({"DIGEST_SECRET": ""}, "DIGEST_SECRET"),
        (
            {"DIGEST_UNSUBSCRIBE_URL": "", "DIGEST_UNSUBSCRIBE_MAILTO": ""},
            "DIGEST_UNSUBSCRIBE_URL or DIGEST_UNSUBSCRIBE_MAILTO",
        ),
        ({"DIGEST_FROM": "Clippings <not an address>"}, "DIGEST_FROM"),
    ],
)
def test_a_real_send_refuses_to_start_without_its_settings(
    rendered: RenderedEdition, overrides: dict[str, str], missing: str
) -> None:
    with pytest.raises(ConfigError, match=missing):
        MessageFactory(rendered, make_settings(**overrides))


def test_a_test_proof_needs_only_the_sender(rendered: RenderedEdition) -> None:
    settings = make_settings(DIGEST_SECRET="", DIGEST_UNSUBSCRIBE_MAILTO="")
    factory = MessageFactory(rendered, settings, test=True)
    assert factory.campaign.test is True
    message = parse(factory.message_for(ADA).as_bytes())
    assert message["To"] == "Ada Lovelace <ada@example.org>"
    assert message["List-Unsubscribe"].startswith("<https://example.org/unsubscribe/")
