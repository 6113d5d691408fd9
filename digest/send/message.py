"""One recipient's message: the edition rendered once, filled with their values (contract §5).

Speed matters (a send builds tens of thousands of messages), so the bytes are assembled, not
generated with :mod:`email.generator`:

* the headers that are the same for everyone (From, Subject, Reply-To, List-Id, MIME-Version)
  are encoded and folded once. Non-ASCII text becomes RFC 2047 base64 encoded words split
  between characters (the email package's own folder loses or adds blanks in some mixes);
  ASCII text is folded before a blank; every line stays within 78 octets but for an
  unsubscribe URL, which cannot be folded (and always within 998);
* each literal piece of the rendered HTML and text is quoted-printable encoded once, by the C
  code of :func:`binascii.b2a_qp`; per recipient only the short slot values are encoded and the
  pieces are joined with QP soft line breaks (``=`` CRLF), which decoding removes. The body thus
  decodes to exactly ``template.fill(values)`` and no line exceeds 78 octets.

Every header value is checked for line breaks right before it is written: content and CSV data
are validated earlier, this is the last guard against header injection.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import time
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.utils import format_datetime, getaddresses
from typing import Protocol

from email_validator import EmailNotValidError, validate_email

from digest.audience.subscribers import Subscriber
from digest.backends.base import CampaignInfo, Fillable, OutgoingMessage, dot_stuffed
from digest.errors import ConfigError, DigestError
from digest.message_ids import message_id, random_message_id
from digest.settings import Settings
from digest.tokens import fill_url, make_proof_token, make_token

CRLF = b"\r\n"
TEST_SUBJECT_PREFIX = "[TEST] "  # the subject of a --test proof
_SOFT_BREAK = b"=\r\n"
# Everything str.splitlines() splits on: a header value holding any of these could be split.
_LINE_BREAK = re.compile(r"[\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\x00]")
_NEWLINES = re.compile(r"\r\n|\r|\n")
_ATOM_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]+")
# The same, with the non-ASCII letters RFC 6532 allows in an atom (for Unicode header text).
_DISPLAY_WORDS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ \u00a0-\U0010ffff-]+")
_PROOF_TOKEN = "proof-copy"
_MAX_LINE = 998


class HeaderValueError(DigestError):
    """A header value would hold a line break: refused rather than split (header injection)."""


class RenderedLike(Protocol):
    """What :class:`MessageFactory` needs of ``digest.render.email.RenderedEdition``."""

    @property
    def edition(self) -> _EditionLike: ...
    @property
    def html(self) -> Fillable: ...
    @property
    def text(self) -> Fillable: ...


class _EditionLike(Protocol):
    @property
    def newsletter(self) -> str | None: ...
    @property
    def slug(self) -> str: ...
    @property
    def subject(self) -> str: ...


@dataclass(frozen=True, slots=True)
class _Mailbox:
    name: str
    address: str  # ASCII domain when the local part is ASCII
    domain: str  # ASCII (IDNA) form


class MessageFactory:
    """Personalised messages of one edition. Construct once per run; ``message_for`` per recipient.

    Raises :class:`ConfigError` when DIGEST_FROM is missing or invalid, and, for a real send
    (``test=False``), when DIGEST_SECRET or both DIGEST_UNSUBSCRIBE_URL and
    DIGEST_UNSUBSCRIBE_MAILTO are missing.
    """

    def __init__(self, rendered: RenderedLike, settings: Settings, *, test: bool = False) -> None:
        edition = rendered.edition
        self._slug = edition.slug
        if not settings.from_address:
            raise ConfigError(
                "missing setting: DIGEST_FROM (e.g. Clippings <clippings@example.org>)",
                hint="set it in the environment or in .env (see .env.example)",
            )
        name = edition.newsletter or ""
        sender = _mailbox("DIGEST_FROM", settings.from_address, default_name=name)
        reply_to = (
            _mailbox("DIGEST_REPLY_TO", settings.reply_to, default_name="")
            if settings.reply_to
            else None
        )
        if not test:
            missing = []
            if settings.secret is None:
                missing.append("DIGEST_SECRET")
            if not settings.unsubscribe_url and not settings.unsubscribe_mailto:
                missing.append("DIGEST_UNSUBSCRIBE_URL or DIGEST_UNSUBSCRIBE_MAILTO")
            if missing:
                raise ConfigError(
                    f"missing setting for the unsubscribe link: {'; '.join(missing)}",
                    hint="set it in the environment or in .env (see .env.example)",
                )
        self._secret = settings.secret.get_secret_value() if settings.secret else None
        self._test = test  # a proof: its links carry proof tokens, which unsubscribe no one
        self._unsubscribe_url = settings.unsubscribe_url
        self._unsubscribe_mailto = settings.unsubscribe_mailto
        self._domain = sender.domain

        list_id = _display_mailbox(name, list_id_namespace(name, sender.domain))
        # Human-readable forms (Unicode, quoted where needed) for backends that take them as is.
        from_display = str(Address(display_name=sender.name, addr_spec=sender.address))
        reply_display = (
            str(Address(display_name=reply_to.name, addr_spec=reply_to.address))
            if reply_to
            else None
        )
        # A proof says so in the inbox, so that it is never taken for the real thing.
        subject = TEST_SUBJECT_PREFIX + edition.subject if test else edition.subject
        for value in (subject, from_display, reply_display or "", list_id):
            _guard(value)
        self.campaign = CampaignInfo(
            slug=edition.slug,
            subject=subject,
            from_address=from_display,
            reply_to=reply_display,
            list_id=list_id,
            html=rendered.html,
            text=rendered.text,
            headers={"List-Id": list_id},
            test=test,
        )

        # Constant headers, encoded once, around the per-recipient ones: From, To, Subject,
        # Date, Message-ID, Reply-To, List-Id, List-Unsubscribe(-Post), MIME-Version.
        self._from_header = _address_header("From", sender.name, sender.address)
        self._subject_header = _unstructured("Subject", subject).encode("ascii")
        middle = b""
        if reply_to is not None:
            middle += _address_header("Reply-To", reply_to.name, reply_to.address)
        namespace = list_id_namespace(name, sender.domain)
        self._middle_headers = middle + _address_header("List-Id", name, namespace)
        # "=_" can never occur in quoted-printable output, so the boundary cannot clash.
        boundary = f"=_digest_{secrets.token_hex(12)}"
        self._last_headers = (
            "MIME-Version: 1.0\r\n"
            f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n\r\n'
        ).encode("ascii")
        part_head = (
            '--{b}\r\nContent-Type: text/{kind}; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        )
        self._text_head = part_head.format(b=boundary, kind="plain").encode("ascii")
        self._html_head = ("\r\n" + part_head.format(b=boundary, kind="html")).encode("ascii")
        self._closing = f"\r\n--{boundary}--\r\n".encode("ascii")
        self._text_body = _QPTemplate(rendered.text)
        self._html_body = _QPTemplate(rendered.html)
        self._date_second = -1
        self._date_header = b""

    def message_for(self, subscriber: Subscriber) -> OutgoingMessage:
        """The message for ``subscriber``: values, per-recipient headers and its bytes on demand."""
        _guard(subscriber.email)
        _guard(subscriber.name)
        token = self._token(subscriber.email)
        https_link = fill_url(self._unsubscribe_url, token) if self._unsubscribe_url else None
        mailto_link = self._mailto(token) if self._unsubscribe_mailto else None
        headers: dict[str, str] = {}
        links = [f"<{link}>" for link in (https_link, mailto_link) if link]
        if links:
            headers["List-Unsubscribe"] = ", ".join(links)
        if https_link:
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        for value in headers.values():
            _guard(value)

        values = {
            "email": subscriber.email,
            "name": subscriber.name,
            "unsubscribe_url": https_link or mailto_link or "",
        }
        for column, value in subscriber.fields.items():
            values[f"field:{column}"] = value
        message_id = self._message_id(subscriber.email)
        to_header = _address_header("To", subscriber.name, subscriber.email)
        unsubscribe_header = _list_unsubscribe_header(links, https_link is not None)

        def build() -> bytes:
            return self._build(to_header, message_id, unsubscribe_header, values)

        def build_smtp_data() -> bytes:
            return self._build(to_header, message_id, unsubscribe_header, values, wire=True)

        return OutgoingMessage(
            address=subscriber.email,
            name=subscriber.name,
            message_id=message_id,
            values=values,
            headers=headers,
            build=build,
            build_smtp_data=build_smtp_data,
        )

    def _build(
        self,
        to_header: bytes,
        message_id: str,
        unsubscribe_header: bytes,
        values: Mapping[str, str],
        *,
        wire: bool = False,
    ) -> bytes:
        """The message; with ``wire``, as SMTP sends it after DATA (``smtp_data`` of it).

        Every line ends in CRLF by construction (headers are folded with CRLF and refuse line
        breaks; bodies are quoted-printable of CRLF text), so the wire form only needs its dots
        doubled: no header line can start with a dot, and each body fragment starts a line
        (after a part's blank line or a soft break), so each is stuffed on its own, and the
        edition's fixed pieces only once per run.
        """
        headers = (
            self._from_header,
            to_header,
            self._subject_header,
            self._date(),
            b"Message-ID: ",
            message_id.encode("ascii"),
            CRLF,
            self._middle_headers,
            unsubscribe_header,
            self._last_headers,
            self._text_head,
        )
        return b"".join(
            (
                *headers,
                self._text_body.encode(values, wire=wire),
                self._html_head,
                self._html_body.encode(values, wire=wire),
                self._closing,
                b".\r\n" if wire else b"",
            )
        )

    def _message_id(self, address: str) -> str:
        # Keyed on the recipient, so `digest bounces import` can tell our messages from forgeries.
        if self._secret is None or self._test:
            return random_message_id(self._slug, self._domain)
        return message_id(self._secret, self._slug, address, self._domain)

    def _token(self, address: str) -> str:
        if self._secret is None:
            return _PROOF_TOKEN  # a --test proof without DIGEST_SECRET: a link that shows the form
        if self._test:
            return make_proof_token(self._secret, address, self._slug)
        return make_token(self._secret, address, self._slug)

    def _mailto(self, token: str) -> str:
        assert self._unsubscribe_mailto is not None
        joiner = "&" if "?" in self._unsubscribe_mailto else "?"
        return f"{self._unsubscribe_mailto}{joiner}subject=unsubscribe%20{token}"

    def _date(self) -> bytes:
        now = int(time.time())
        if now != self._date_second:  # formatted once a second, not per message
            self._date_second = now
            stamp = format_datetime(datetime.fromtimestamp(now, UTC))
            self._date_header = f"Date: {stamp}\r\n".encode("ascii")
        return self._date_header


class _QPTemplate:
    """A rendered body, quoted-printable encoded once; only slot values are encoded per message.

    ``encode(values, wire=True)`` gives the same bytes with SMTP's dots doubled: each fragment
    (a fixed piece or a slot value) starts a line, so each is stuffed on its own; the fixed
    pieces, nearly all of the 60 KB, once per run.
    """

    def __init__(self, template: Fillable) -> None:
        self._template = template
        literals = getattr(template, "literals", None)
        slots = getattr(template, "slots", None)
        self._escape = getattr(template, "escape", None)
        self._pieces: tuple[bytes, ...] | None = None
        self._wire_pieces: tuple[bytes, ...] = ()
        self._slots: tuple[str, ...] = ()
        if literals is not None and slots is not None and self._escape is not None:
            self._pieces = tuple(_qp(literal) for literal in literals)
            self._wire_pieces = tuple(dot_stuffed(piece) for piece in self._pieces)
            self._slots = tuple(slots)

    def encode(self, values: Mapping[str, str], *, wire: bool = False) -> bytes:
        if self._pieces is None:  # any other Fillable: encode the whole filled text
            body = _qp(self._template.fill(values))
            return dot_stuffed(body) if wire else body
        assert self._escape is not None
        pieces = self._wire_pieces if wire else self._pieces
        encoded: dict[str, bytes] = {}
        out = [pieces[0]]
        for slot, piece in zip(self._slots, pieces[1:], strict=True):
            value = encoded.get(slot)
            if value is None:
                value = _qp(self._escape(values.get(slot, "")))
                encoded[slot] = value = dot_stuffed(value) if wire else value
            out += (_SOFT_BREAK, value, _SOFT_BREAK, piece)
        return b"".join(out)


def _qp(text: str) -> bytes:
    """Quoted-printable of ``text`` with CRLF line ends and soft breaks, no trailing break."""
    data = _NEWLINES.sub("\r\n", text).encode("utf-8")
    # The appended CRLF makes binascii use CRLF for its soft breaks and encode trailing blanks.
    encoded = binascii.b2a_qp(data + CRLF, quotetabs=False, istext=True, header=False)
    return encoded[:-2]


def list_id_namespace(newsletter: str, domain: str) -> str:
    """RFC 2919 list-id: ``clippings.example.org`` for Clippings sent from example.org."""
    ascii_name = unicodedata.normalize("NFKD", newsletter).encode("ascii", "ignore").decode()
    label = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:63].strip("-")
    return f"{label or 'newsletter'}.{domain}"


def _display_mailbox(name: str, address: str) -> str:
    """``name <address>`` for a backend that takes a header as Unicode text (Mailgun's ``h:``
    fields): the name as is when it is words only, else a quoted string, so a newsletter named
    ``Clip "the" <best>`` cannot make a malformed List-Id."""
    if _DISPLAY_WORDS.fullmatch(name) and "=?" not in name:
        return f"{name} <{address}>"
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + f'" <{address}>'


def _mailbox(setting: str, value: str, *, default_name: str) -> _Mailbox:
    found = getaddresses([value])
    name, address = found[0] if len(found) == 1 else ("", "")
    if not address or "@" not in address:
        raise ConfigError(
            f"{setting} is not an email address: {value!r}",
            hint=f"write it as Name <address@domain>, e.g. {setting}=Clippings <news@example.org>",
        )
    try:
        checked = validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ConfigError(f"{setting} holds an invalid address {address!r}: {exc}") from exc
    if checked.ascii_email is None:
        raise ConfigError(f"{setting} must be an ASCII address, not {address!r}")
    return _Mailbox(
        name=name or default_name,
        address=checked.ascii_email,
        domain=checked.ascii_domain,
    )


def _guard(value: str) -> None:
    if match := _LINE_BREAK.search(value):
        raise HeaderValueError(
            f"refusing a header value holding a line break ({match.group()!r}): {value[:60]!r}"
        )


def _unstructured(name: str, text: str) -> str:
    """``Name: text`` CRLF for an unstructured header (Subject): ASCII folded before spaces,
    anything else as RFC 2047 encoded words (the email package's folder mishandles some mixes)."""
    _guard(text)
    if not text.isascii() or "=?" in text:  # "=?...?=" as written would be decoded by clients
        return f"{name}: {_encoded_words(text, 78 - len(name) - 2)}\r\n"
    words = text.split(" ")
    lines: list[str] = []
    current = f"{name}: {words[0]}"
    for word in words[1:]:
        # Fold before an existing space (unfolding gives the text back intact), never leaving a
        # line of blanks only.
        if word and len(current) + 1 + len(word) > 78 and current.strip():
            lines.append(current)
            current = ""
        current += " " + word
    lines.append(current)
    return "\r\n".join(lines) + "\r\n"


def _encoded_words(text: str, first_room: int = 77) -> str:
    """RFC 2047 base64 encoded words, split between characters, one per line, each line within
    78 characters (``first_room`` is what the header's name leaves on the first line).
    Whitespace between encoded words is not part of the text, so it decodes exactly."""

    def capacity(room: int) -> int:  # UTF-8 bytes whose encoded word fits in ``room``
        return max(3, (min(room, 75) - len("=?utf-8?b??=")) // 4 * 3)

    chunks: list[bytes] = []
    current = b""
    limit = capacity(first_room)
    for char in text:
        encoded = char.encode("utf-8")
        if current and len(current) + len(encoded) > limit:
            chunks.append(current)
            current = b""
            limit = capacity(77)  # a continuation line starts with one blank
        current += encoded
    chunks.append(current)
    return "\r\n ".join(
        f"=?utf-8?b?{base64.b64encode(chunk).decode('ascii')}?=" for chunk in chunks
    )


def _phrase(text: str, first_room: int) -> str:
    """A display name: as is when atoms do, quoted when ASCII, RFC 2047 encoded words when not.
    Text that itself looks like an encoded word ("=?") is encoded, or clients would decode it."""
    if "=?" in text:
        return _encoded_words(text, first_room)
    if _ATOM_PHRASE.fullmatch(text) and len(text) < 900:
        return text
    if text.isascii() and len(text) < 900:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return _encoded_words(text, first_room)


def _address_header(header: str, name: str, address: str) -> bytes:
    """``Header: name <address>`` CRLF. A non-ASCII local part stays UTF-8 (RFC 6532, SMTPUTF8)."""
    _guard(name)
    _guard(address)
    if not name:
        line = f"{header}: {address}\r\n"
    else:
        phrase = _phrase(name, 78 - len(header) - 2)
        line = f"{header}: {phrase} <{address}>\r\n"
        if len(line) > 80 or "\r\n" in phrase:
            line = f"{header}: {phrase}\r\n <{address}>\r\n"
    data = line.encode("utf-8")
    _check_line_lengths(data)
    return data


def _list_unsubscribe_header(links: list[str], one_click: bool) -> bytes:
    if not links:
        return b""
    header = "List-Unsubscribe: " + ",\r\n ".join(links) + "\r\n"
    if one_click:
        header += "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    data = header.encode("utf-8")
    _check_line_lengths(data)
    return data


def _check_line_lengths(data: bytes) -> None:
    for line in data.split(CRLF):
        if len(line) > _MAX_LINE:
            raise HeaderValueError(f"a header line would exceed {_MAX_LINE} octets: {line[:60]!r}")
