"""Mailgun: one HTTP request per batch of up to 1,000 recipients, and the suppressions fetch.

Batch sending: one ``POST {MAILGUN_API_URL}/{domain}/messages`` names every recipient in ``to``
and carries ``recipient-variables``, a JSON object keyed by address with each recipient's values.
The bodies and per-recipient headers hold ``%recipient.<var>%`` placeholders that Mailgun fills
for each recipient. Without ``recipient-variables`` Mailgun would send ONE message showing every
address to everyone, so a request with several recipients is never built without it.

Values inside ``recipient-variables`` are data: Mailgun substitutes them once and never evaluates
them again. The edition's own text is not data, though: a literal ``%recipient.x%`` (or Mailgun's
``%unsubscribe_url%``) in a body or subject would be filled by Mailgun, so such text is
neutralised here (an HTML character reference in the HTML, a zero-width space in the text, a
per-recipient variable for subject and headers) whatever the renderer already did.
"""

from __future__ import annotations

import base64
import html as html_module
import json
import re
import secrets
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from digest.backends.base import (
    Backend,
    CampaignInfo,
    DeliveryResult,
    DeliveryStatus,
    OutgoingMessage,
)
from digest.errors import BackendError, ConfigError
from digest.placeholders import holds_placeholder, neutralise_html, neutralise_text
from digest.settings import DIGEST_FROM, Setting, Settings, secret_setting

MAX_RECIPIENTS_PER_REQUEST = 1000  # Mailgun's hard limit for batch sending
SUPPRESSION_KINDS = (
    ("unsubscribes", "unsubscribed"),
    ("bounces", "bounced"),
    ("complaints", "complained"),
)
# 429 is the API's rate limit; 420 is what Mailgun answers when a domain's sending limit is
# reached ("... not allowed to send: recipient limit exceeded, try again after <date>").
_RATE_LIMIT_STATUSES = frozenset({420, 429})
_DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=120.0, write=120.0, pool=30.0)
_MAX_ERROR_CHARS = 500
_USER_AGENT = "digest (+https://pypi.org/project/digest)"

_TRY_AGAIN_AFTER = re.compile(r"try again after\s+([^\"\n]+?)\s*(?:[.\"}]|$)", re.IGNORECASE)
# Headers Mailgun builds from its own parameters, or that this backend sets from the campaign.
_NOT_PASSED_AS_HEADERS = frozenset(
    {
        "to",
        "from",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "reply-to",
        "list-id",
    }
)
_BUILTIN_SLOTS = ("email", "name", "unsubscribe_url")
# What str.isspace() or a C0 control would find in an address, and what must never be in a header;
# one search each instead of a Python test per character (a request carries 1,000 recipients).
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f]")
_BREAK_OR_NUL = re.compile(r"[\r\n\x00]")
DEFAULT_API_URL = "https://api.mailgun.net/v3"


def _api_url(text: str) -> str:
    url = urlsplit(text)
    if url.scheme not in ("https", "http") or not url.hostname:
        raise ValueError(f"must be an http(s) URL, not {text!r}")
    return text.rstrip("/")


def _domain_name(text: str) -> str:
    if any(c in text for c in "/?#@ \t") or text.startswith("."):
        raise ValueError(f"must be a domain name such as mg.example.org, not {text!r}")
    return text


MAILGUN_API_KEY = secret_setting(
    "MAILGUN_API_KEY",
    "the private API key (sending; read access for `suppressions sync`)",
    required=True,
    # HTTP Basic auth sends it as base64("api:KEY"): hidden in that form too.
    hidden_forms=lambda key, _raw: [base64.b64encode(f"api:{key}".encode()).decode("ascii")],
)
MAILGUN_DOMAIN = Setting(
    "MAILGUN_DOMAIN",
    "the sending domain, e.g. mg.example.org",
    _domain_name,
    None,
    required=True,
    example="mg.example.org",
)
MAILGUN_API_URL = Setting(
    "MAILGUN_API_URL",
    "default https://api.mailgun.net/v3; the EU region uses https://api.eu.mailgun.net/v3",
    _api_url,
    DEFAULT_API_URL,
    example=DEFAULT_API_URL,
)


# -- helpers shared by sending and fetching ----------------------------------------------------


def _shown(text: str, settings: Settings) -> str:
    """A server's text as we may show it: no secret (:meth:`Settings.scrub`), cut to a sane size."""
    text = settings.scrub(text)
    if len(text) > _MAX_ERROR_CHARS:
        text = text[:_MAX_ERROR_CHARS] + "…"
    return text


def _mailgun_message(response: httpx.Response) -> str:
    """Mailgun's ``message`` field, else the raw body (Mailgun's 401 is a bare "Forbidden")."""
    try:
        data = response.json()
    except (ValueError, UnicodeDecodeError):
        data = None
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return data["message"]
    return response.text.strip() or response.reason_phrase


def _retry_after_seconds(response: httpx.Response, message: str) -> float | None:
    """Seconds to wait, from ``Retry-After`` (seconds or HTTP date) or the "try again after
    <date>" of Mailgun's message; the later of both when both are there."""
    candidates: list[float] = []
    header = response.headers.get("Retry-After", "").strip()
    if header:
        try:
            candidates.append(max(0.0, float(header)))
        except ValueError:
            if (seconds := _seconds_until(header)) is not None:
                candidates.append(seconds)
    match = _TRY_AGAIN_AFTER.search(message)
    if match and (seconds := _seconds_until(match.group(1))) is not None:
        candidates.append(seconds)
    return max(candidates) if candidates else None


def _seconds_until(date_text: str) -> float | None:
    try:
        when = parsedate_to_datetime(date_text.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _check_mailgun_settings(settings: Settings, *, sending: bool) -> None:
    """The declared keys; a send needs DIGEST_FROM too, a suppressions fetch does not."""
    settings.check(
        MailgunBackend.declared_settings, also_required=[DIGEST_FROM.env] if sending else []
    )


def _api_key(settings: Settings) -> str:
    key = settings[MAILGUN_API_KEY]
    assert key is not None  # checked by _check_mailgun_settings
    return key.get_secret_value()


def _domain_url(settings: Settings, endpoint: str) -> str:
    domain = quote(settings[MAILGUN_DOMAIN] or "", safe="")
    return f"{settings[MAILGUN_API_URL]}/{domain}/{endpoint}"


# -- building one request ----------------------------------------------------------------------


def _header_safe(value: str, what: str) -> str:
    if any(ch in value for ch in "\r\n\x00"):
        raise ValueError(f"{what} holds a line break or NUL")
    return value


def _recipient_entry(name: str, address: str) -> str:
    """A ``to`` entry: the name always quoted, so commas, ``<`` or ``@`` in it stay the name."""
    _header_safe(address, "address")
    clean = "".join(" " if ord(ch) < 32 or ord(ch) == 127 else ch for ch in name).strip()
    if not clean:
        return address
    quoted = clean.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}" <{address}>'


class _VariableNames:
    """Maps slot and header names to unique, safe Mailgun variable names."""

    def __init__(self) -> None:
        self._by_key: dict[str, str] = {}
        self._taken: set[str] = set()

    def __call__(self, key: str, readable: str | None = None) -> str:
        """The variable for ``key``, named after ``readable`` (default: the key itself)."""
        if key in self._by_key:
            return self._by_key[key]
        base = re.sub(r"[^a-z0-9_]+", "_", (readable or key).lower()).strip("_") or "value"
        if not base[0].isalpha():
            base = "v_" + base
        name, n = base, 1
        while name in self._taken:
            n += 1
            name = f"{base}_{n}"
        self._taken.add(name)
        self._by_key[key] = name
        return name


class _SlotRecorder(Mapping[str, str]):
    """Handed to ``Fillable.fill``: answers every slot with a unique marker and notes its name,
    so the bodies' slot names are learnt without knowing the template's type."""

    def __init__(self) -> None:
        self.nonce = secrets.token_hex(8)
        self.names: list[str] = []

    def marker(self, index: int) -> str:
        return f"zzmailgun{self.nonce}s{index}zz"

    def __getitem__(self, key: str) -> str:
        if key not in self.names:
            self.names.append(key)
        return self.marker(self.names.index(key))

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.names))

    def __len__(self) -> int:
        return len(self.names)


@dataclass(frozen=True)
class _Bodies:
    """The campaign's html and text with ``%recipient.<var>%`` in every slot (built once)."""

    html: str
    text: str
    slot_variables: dict[str, str]  # slot name -> variable name (the value as is: text body)
    html_variables: dict[str, str]  # slot name -> variable name (the value HTML-escaped)


def _bodies(campaign: CampaignInfo, names: _VariableNames) -> _Bodies:
    for slot in _BUILTIN_SLOTS:
        names(slot)  # the well-known slots keep their own names
    names("message_id")
    recorder = _SlotRecorder()
    html = neutralise_html(campaign.html.fill(recorder, raw=True))
    text = neutralise_text(campaign.text.fill(recorder, raw=True))
    # The well-known values travel even when the templates do not show them (they are small,
    # and a curator's Mailgun-side features such as webhooks may use them).
    slot_variables = {slot: names(slot) for slot in (*_BUILTIN_SLOTS, *recorder.names)}
    # Mailgun substitutes values as they are: in the HTML body a CSV name such as
    # "<img src=x onerror=...>" would become markup. The HTML's slots take escaped copies.
    html_variables: dict[str, str] = {}
    for index, slot in enumerate(recorder.names):
        marker = recorder.marker(index)
        text = text.replace(marker, f"%recipient.{slot_variables[slot]}%")
        if marker in html:
            html_variables[slot] = names(f"html:{slot}", f"{slot}_html")
            html = html.replace(marker, f"%recipient.{html_variables[slot]}%")
    return _Bodies(
        html=html, text=text, slot_variables=slot_variables, html_variables=html_variables
    )


def _message_headers(message: OutgoingMessage) -> dict[str, str]:
    """The per-recipient headers to pass as ``h:``; List-Unsubscribe-Post added when the
    List-Unsubscribe header holds an https link (RFC 8058) and the message lacks it."""
    headers = {
        name: value
        for name, value in message.headers.items()
        if name.lower() not in _NOT_PASSED_AS_HEADERS
    }
    lowered = {name.lower(): name for name in headers}
    unsubscribe = headers.get(lowered.get("list-unsubscribe", ""), "")
    if "<https://" in unsubscribe.lower() and "list-unsubscribe-post" not in lowered:
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return headers


def check_batch_is_private(to: Sequence[str], addresses: Sequence[str], variables: str) -> None:
    """Raise unless ``variables`` (the recipient-variables JSON) holds exactly one entry per
    address in ``to``: without it Mailgun would show every address to every recipient."""
    try:
        parsed = json.loads(variables) if variables else None
    except ValueError:
        parsed = None
    if (
        len(to) != len(addresses)
        or not isinstance(parsed, dict)
        or set(parsed) != set(addresses)
        or len(set(addresses)) != len(addresses)
    ):
        raise BackendError(
            "refusing a Mailgun batch whose recipient-variables do not match its recipients"
            " (every address would be shown to everyone)",
            transient=False,
        )


@dataclass(frozen=True)
class _Request:
    data: dict[str, str | list[str]]
    files: list[tuple[str, tuple[None, bytes, None]]]


# -- the backend -------------------------------------------------------------------------------


class MailgunBackend(Backend):
    """Sends through Mailgun's HTTP API, ``batch_size`` recipients per request."""

    name = "mailgun"
    batch_size = MAX_RECIPIENTS_PER_REQUEST
    declared_settings = (MAILGUN_API_KEY, MAILGUN_DOMAIN, MAILGUN_API_URL)
    connection_settings = (MAILGUN_API_URL, MAILGUN_DOMAIN)

    def __init__(self, settings: Settings, *, timeout: httpx.Timeout | float | None = None) -> None:
        super().__init__(settings)
        if timeout is None:
            self._timeout = _DEFAULT_TIMEOUT
        elif isinstance(timeout, httpx.Timeout):
            self._timeout = timeout
        else:
            self._timeout = httpx.Timeout(timeout)
        self._client: httpx.AsyncClient | None = None
        self._campaign: CampaignInfo | None = None
        self._names = _VariableNames()
        self._bodies: _Bodies | None = None

    @classmethod
    def check_settings(cls, settings: Settings) -> None:
        _check_mailgun_settings(settings, sending=True)

    @property
    def messages_url(self) -> str:
        return _domain_url(self.settings, "messages")

    async def open(self, campaign: CampaignInfo) -> None:
        self.check_settings(self.settings)
        self._campaign = campaign
        self._names = _VariableNames()
        self._bodies = _bodies(campaign, self._names)
        self._client = httpx.AsyncClient(
            auth=("api", _api_key(self.settings)),
            timeout=self._timeout,
            headers={"User-Agent": _USER_AGENT},
            follow_redirects=False,
        )

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def send(self, messages: Sequence[OutgoingMessage]) -> list[DeliveryResult]:
        if self._client is None or self._campaign is None:
            raise BackendError("the Mailgun backend was not opened", transient=False)
        count = len(messages)
        results: dict[int, DeliveryResult] = {}
        requests = self._encoded_requests(messages, results)
        # Every request is encoded: the 1,000 messages of a batch (~1.7 MB) are not needed while
        # Mailgun answers, and the engine keeps no reference to the list it passes. Let them go,
        # so the memory of a send grows with the requests in flight, not with their messages.
        del messages
        for indices, addresses, outgoing in requests:
            chunk_results = await self._post(outgoing, addresses)
            for index, result in zip(indices, chunk_results, strict=True):
                results[index] = result
        return [results[i] for i in range(count)]

    # -- internals -----------------------------------------------------------------------------

    @staticmethod
    def _problem_with(message: OutgoingMessage, seen: set[str]) -> str | None:
        if not message.address or _SPACE_OR_CONTROL.search(message.address):
            return "not a usable address"
        if message.address.lower() in seen:
            # recipient-variables are keyed by address: two copies cannot be told apart.
            return "the same address appears twice in one batch; sent once"
        for name, value in message.headers.items():
            if _BREAK_OR_NUL.search(name) or _BREAK_OR_NUL.search(value):
                return f"header {name} holds a line break or NUL"
        return None

    def _encoded_requests(
        self, messages: Sequence[OutgoingMessage], results: dict[int, DeliveryResult]
    ) -> list[tuple[list[int], list[str], httpx.Request]]:
        """The requests of one batch, each encoded, with the indices and addresses of its
        messages; a message that cannot be sent gets its result in ``results`` instead."""
        sendable: list[tuple[int, OutgoingMessage]] = []
        seen: set[str] = set()
        for index, message in enumerate(messages):
            problem = self._problem_with(message, seen)
            if problem is not None:
                results[index] = DeliveryResult(
                    message.address, DeliveryStatus.FAILED, error=problem
                )
            else:
                seen.add(message.address.lower())
                sendable.append((index, message))
        # Requests never exceed Mailgun's limit, and messages whose per-recipient header names
        # differ go in separate requests (a header is either in every copy of a request or none).
        groups: dict[tuple[str, ...], list[tuple[int, OutgoingMessage]]] = {}
        for index, message in sendable:
            key = tuple(sorted(name.lower() for name in _message_headers(message)))
            groups.setdefault(key, []).append((index, message))
        requests = []
        for group in groups.values():
            for start in range(0, len(group), MAX_RECIPIENTS_PER_REQUEST):
                chunk = group[start : start + MAX_RECIPIENTS_PER_REQUEST]
                chunk_messages = [m for _, m in chunk]
                requests.append(
                    (
                        [i for i, _ in chunk],
                        [m.address for m in chunk_messages],
                        self._encoded(chunk_messages),
                    )
                )
        return requests

    def _encoded(self, messages: Sequence[OutgoingMessage]) -> httpx.Request:
        """One request, its form encoded into one buffer: streamed, httpx writes each of the
        1,000 `to` fields as its own small chunk, a socket write each (~0.5 s a request). What
        it was built from (the recipient variables, the form's fields) is freed here."""
        assert self._client is not None
        try:
            request = self._build_request(messages)
        except ValueError as exc:  # a campaign-wide value with a line break
            raise BackendError(f"cannot build the Mailgun request: {exc}", transient=False) from exc
        outgoing = self._client.build_request(
            "POST", self.messages_url, data=request.data, files=request.files
        )
        outgoing.read()
        return outgoing

    def _build_request(self, messages: Sequence[OutgoingMessage]) -> _Request:
        campaign, bodies, names = self._campaign, self._bodies, self._names
        assert campaign is not None and bodies is not None
        per_recipient: dict[str, dict[str, str]] = {m.address: {} for m in messages}
        shared: dict[str, str] = {}  # campaign-wide values that must travel as variables

        def constant(key: str, value: str) -> str:
            """A campaign-wide value; if it holds text Mailgun would fill, send it as data."""
            _header_safe(value, key)
            if not holds_placeholder(value):
                return value
            variable = names(key)
            shared[variable] = value
            return f"%recipient.{variable}%"

        to = [_recipient_entry(m.name, m.address) for m in messages]
        data: dict[str, str | list[str]] = {
            "from": constant("from", campaign.from_address),
            "subject": constant("subject", campaign.subject),
            "to": to,
            "o:tag": campaign.slug[:128],
            "v:digest-slug": campaign.slug,
        }
        headers: dict[str, str] = {"List-Id": campaign.list_id}
        if campaign.reply_to:
            headers["Reply-To"] = campaign.reply_to
        for name, value in campaign.headers.items():
            if name.lower() not in {h.lower() for h in headers} | _NOT_PASSED_AS_HEADERS:
                headers[name] = value
        for name, value in headers.items():
            data[f"h:{name}"] = constant(f"header {name}", value)

        # Per-recipient headers: the same value for all -> sent once; else a variable each.
        message_headers = [_message_headers(m) for m in messages]
        for name in message_headers[0]:
            values = [h[name] for h in message_headers]
            if len(set(values)) == 1 and not holds_placeholder(values[0]):
                data[f"h:{name}"] = values[0]
                continue
            variable = names(f"header:{name}", name)
            data[f"h:{name}"] = f"%recipient.{variable}%"
            for message, value in zip(messages, values, strict=True):
                per_recipient[message.address][variable] = value
        message_id_variable = names("message_id")
        data["h:Message-Id"] = f"%recipient.{message_id_variable}%"

        for message in messages:
            variables = per_recipient[message.address]
            variables[message_id_variable] = message.message_id
            defaults = {"email": message.address, "name": message.name}
            for slot, variable in bodies.slot_variables.items():
                variables[variable] = message.values.get(slot, defaults.get(slot, ""))
            variables.update(shared)
        html_body = self._html_body(messages, per_recipient)
        recipient_variables = json.dumps(per_recipient, ensure_ascii=False)
        check_batch_is_private(to, [m.address for m in messages], recipient_variables)
        data["recipient-variables"] = recipient_variables
        # Bodies as multipart fields: no URL-encoding of a 100 kB HTML body.
        files = [
            ("text", (None, bodies.text.encode("utf-8"), None)),
            ("html", (None, html_body.encode("utf-8"), None)),
        ]
        return _Request(data=data, files=files)

    def _html_body(
        self, messages: Sequence[OutgoingMessage], per_recipient: dict[str, dict[str, str]]
    ) -> str:
        """The HTML body of one request. A slot whose values all read the same escaped uses the
        text's variable; otherwise each recipient gets an escaped copy of the value."""
        bodies = self._bodies
        assert bodies is not None
        html = bodies.html
        for slot, html_variable in bodies.html_variables.items():
            variable = bodies.slot_variables[slot]
            escaped = {
                m.address: html_module.escape(per_recipient[m.address][variable], quote=True)
                for m in messages
            }
            if all(escaped[m.address] == per_recipient[m.address][variable] for m in messages):
                html = html.replace(f"%recipient.{html_variable}%", f"%recipient.{variable}%")
                continue
            for address, value in escaped.items():
                per_recipient[address][html_variable] = value
        return html

    async def _post(self, outgoing: httpx.Request, addresses: list[str]) -> list[DeliveryResult]:
        assert self._client is not None
        try:
            response = await self._client.send(outgoing)
        except httpx.TimeoutException as exc:
            raise BackendError(
                f"Mailgun did not answer in time ({type(exc).__name__}); the batch may or may"
                " not have been accepted",
                transient=True,
            ) from None
        except httpx.HTTPError as exc:
            detail = self._shown(str(exc)) or type(exc).__name__
            raise BackendError(f"cannot reach Mailgun: {detail}", transient=True) from None
        return self._results(response, addresses)

    def _results(self, response: httpx.Response, addresses: list[str]) -> list[DeliveryResult]:
        status = response.status_code
        if 200 <= status < 300:
            provider_id = self._accepted_id(response)
            return [
                DeliveryResult(address, DeliveryStatus.SENT, provider_id=provider_id)
                for address in addresses
            ]
        message = self._shown(_mailgun_message(response))
        if status in _RATE_LIMIT_STATUSES:
            wait = _retry_after_seconds(response, message)
            error = f"Mailgun rate limit ({status}): {message}"
            return [
                DeliveryResult(address, DeliveryStatus.DEFERRED, error=error, retry_after=wait)
                for address in addresses
            ]
        if status >= 500 or status < 400:
            raise BackendError(
                f"Mailgun answered {status}: {message}",
                transient=True,
                status=status,
                response=message,
            )
        if status == 401:
            # The key is wrong for every batch to come: stop the run, fail no recipient.
            raise ConfigError(
                "Mailgun rejected the API key (401)",
                hint="check MAILGUN_API_KEY and MAILGUN_DOMAIN, then rerun the same command",
            )
        error = f"Mailgun refused the request ({status}): {message}"
        return [
            DeliveryResult(address, DeliveryStatus.FAILED, error=error) for address in addresses
        ]

    def _accepted_id(self, response: httpx.Response) -> str | None:
        """Mailgun's id for an accepted batch. A 2xx whose body is cut or unreadable still means
        Mailgun took the batch: retrying it would mail up to 1,000 people twice, so it counts as
        sent, without an id."""
        try:
            data: Any = response.json()
        except (ValueError, UnicodeDecodeError):
            return None
        provider_id = data.get("id") if isinstance(data, dict) else None
        return provider_id if isinstance(provider_id, str) else None

    def _shown(self, text: str) -> str:
        return _shown(text, self.settings)


# -- suppressions ------------------------------------------------------------------------------


def fetch_suppressions(
    settings: Settings,
    *,
    client: httpx.Client | None = None,
    page_limit: int = 1000,
    retries: int = 4,
    backoff: float = 0.5,
    max_wait: float = 60.0,
) -> Iterator[tuple[str, str, str | None]]:
    """Yield ``(address, reason, created_at)`` for every unsubscribe, bounce and complaint
    Mailgun holds for ``MAILGUN_DOMAIN``, following ``paging.next`` until a page is empty.

    ``created_at`` is Mailgun's text ("Fri, 21 Oct 2011 11:02:55 UTC") or None. A 429, a 5xx or a
    timeout is retried ``retries`` times with exponential backoff (or the time Mailgun names);
    a rejected key or unknown domain raises ConfigError, any other refusal BackendError.
    """
    _check_mailgun_settings(settings, sending=False)
    own_client = client is None
    http = client or httpx.Client(timeout=_DEFAULT_TIMEOUT, headers={"User-Agent": _USER_AGENT})
    auth = ("api", _api_key(settings))
    try:
        for endpoint, reason in SUPPRESSION_KINDS:
            url: str | None = _domain_url(settings, endpoint)
            params: dict[str, int] | None = {"limit": page_limit}
            seen: set[str] = set()
            while url is not None:
                page = _get_page(
                    http, url, params, auth, settings, endpoint, retries, backoff, max_wait
                )
                items = page.get("items")
                if not isinstance(items, list) or not items:
                    break
                for item in items:
                    if isinstance(item, dict) and isinstance(item.get("address"), str):
                        created = item.get("created_at")
                        yield item["address"], reason, created if isinstance(created, str) else None
                seen.add(_page_key(url, params))
                url, params = _next_page(page, settings), None
                if url is not None and _page_key(url, params) in seen:
                    break  # a server pointing back at a page already read: stop, not loop
    finally:
        if own_client:
            http.close()


def _page_key(url: str, params: Mapping[str, int] | None) -> str:
    return url + ("?" + json.dumps(params, sort_keys=True) if params else "")


def _next_page(page: Mapping[str, Any], settings: Settings) -> str | None:
    """``paging.next`` moved onto the configured API host: the key is sent to no other host."""
    paging = page.get("paging")
    next_url = paging.get("next") if isinstance(paging, dict) else None
    if not isinstance(next_url, str) or not next_url:
        return None
    base = urlsplit(settings[MAILGUN_API_URL])
    target = urlsplit(next_url)
    return urlunsplit((base.scheme, base.netloc, target.path, target.query, ""))


def _get_page(
    http: httpx.Client,
    url: str,
    params: Mapping[str, int] | None,
    auth: tuple[str, str],
    settings: Settings,
    endpoint: str,
    retries: int,
    backoff: float,
    max_wait: float,
) -> dict[str, Any]:
    what = f"Mailgun {endpoint}"
    for attempt in range(retries + 1):
        wait = min(max_wait, backoff * 2**attempt)
        try:
            response = http.get(url, params=params, auth=auth)
        except httpx.TimeoutException:
            problem = BackendError(f"{what}: no answer in time", transient=True)
        except httpx.HTTPError as exc:
            detail = _shown(str(exc), settings) or type(exc).__name__
            problem = BackendError(f"cannot reach Mailgun ({endpoint}): {detail}", transient=True)
        else:
            status = response.status_code
            if status == 200:
                try:
                    data = response.json()
                except (ValueError, UnicodeDecodeError):
                    data = None
                if isinstance(data, dict):
                    return data
                problem = BackendError(
                    f"{what}: unreadable answer",
                    transient=True,
                    status=status,
                    response=_shown(response.text, settings),
                )
            else:
                message = _shown(_mailgun_message(response), settings)
                if status == 401:
                    raise ConfigError(
                        f"Mailgun rejected the API key (401) while reading {endpoint}",
                        hint="check MAILGUN_API_KEY (it needs read access, not only sending)",
                    )
                if status == 404:
                    raise ConfigError(
                        f"Mailgun does not know the domain {settings[MAILGUN_DOMAIN]!r} (404):"
                        f" {message}",
                        hint="check MAILGUN_DOMAIN, and MAILGUN_API_URL for the EU region",
                    )
                if status not in _RATE_LIMIT_STATUSES and status < 500:
                    raise BackendError(
                        f"{what}: Mailgun refused the request ({status}): {message}",
                        transient=False,
                        status=status,
                        response=message,
                    )
                named = _retry_after_seconds(response, message)
                if named is not None:
                    wait = min(max_wait, named)
                problem = BackendError(
                    f"{what}: Mailgun answered {status}: {message}",
                    transient=True,
                    status=status,
                    response=message,
                    retry_after=named,
                )
        if attempt == retries:
            raise problem
        time.sleep(wait)
    raise AssertionError("unreachable")  # the loop returns or raises


__all__ = [
    "MAX_RECIPIENTS_PER_REQUEST",
    "MailgunBackend",
    "check_batch_is_private",
    "fetch_suppressions",
]
