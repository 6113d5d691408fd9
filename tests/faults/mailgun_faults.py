"""A Mailgun-like server that misbehaves at seeded rates (built on tests/mailgun_server.py).

Per ``POST /messages`` it may answer 429 with "try again after <date>" (not accepted), 500, 502
or 503 (not accepted), 400 with Mailgun's message (the batch refused for good), a timeout (the
batch IS accepted, the answer comes after the client gave up: the in-flight window, the client
cannot know, retries, and that batch's recipients may get the edition twice) or a truncated body
(accepted, a 200 whose JSON is cut short: a 2xx means accepted, so no resend is expected).

Draws are seeded by (seed, first recipient, attempt). The server also notes, per address, when it
said to come back, and counts requests that came back earlier.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr, parsedate_to_datetime

from mailgun_server import Fault, MailgunServer, mailgun_date
from werkzeug import Request, Response

REFUSAL_400 = "'to' parameter is not a valid address. please check documentation"


@dataclass(frozen=True)
class MailgunFaultRates:
    rate_limited_429: float = 0.0
    server_error_5xx: float = 0.0  # 500, 502 and 503 in turn
    timeout: float = 0.0
    truncated: float = 0.0
    refused_400: float = 0.0


class FaultyMailgun(MailgunServer):
    def __init__(
        self,
        *,
        api_key: str,
        domain: str,
        rates: MailgunFaultRates,
        seed: int,
        slow_seconds: float = 0.8,
    ) -> None:
        super().__init__(api_key=api_key, domain=domain)
        self.rates = rates
        self.seed = seed
        self.slow_seconds = slow_seconds
        self.injected: Counter[str] = Counter()
        self.ambiguous: Counter[str] = Counter()  # accepted, answer lost (per address)
        self.cut_short: Counter[str] = Counter()  # accepted, 200 with a truncated body
        self.refusals: dict[str, list[str]] = {}
        self.not_before: dict[str, datetime] = {}  # "try again after" named per address
        self.early_retries = 0
        self.posts = 0  # every message request, answered or not
        self._attempts: Counter[str] = Counter()

    def _dispatch(self, request: Request) -> Response:
        if request.method != "POST" or not request.path.endswith("/messages"):
            return super()._dispatch(request)
        request.max_form_parts = 20_000
        request.max_form_memory_size = 25 * 1024 * 1024
        addresses = [parseaddr(entry)[1].lower() for entry in request.form.getlist("to")]
        first = addresses[0] if addresses else ""
        now = datetime.now(UTC)
        with self._lock:
            self.posts += 1
            self._attempts[first] += 1
            attempt = self._attempts[first]
            self.early_retries += sum(
                1 for a in addresses if a in self.not_before and now < self.not_before[a]
            )
        dice = random.Random(f"{self.seed}:{first}:{attempt}")
        draw = dice.random()
        rates = self.rates

        if draw < rates.rate_limited_429:
            fault = Fault.rate_limited(try_again_at=now + timedelta(seconds=1))
            named = parsedate_to_datetime(mailgun_date(now + timedelta(seconds=1)))
            return self._refuse("429", addresses, fault, until=named)
        draw -= rates.rate_limited_429
        if draw < rates.server_error_5xx:
            status = dice.choice((500, 502, 503))
            return self._refuse(str(status), addresses, Fault.server_error(status))
        draw -= rates.server_error_5xx
        if draw < rates.refused_400:
            return self._refuse("400", addresses, Fault.bad_request(REFUSAL_400))
        draw -= rates.refused_400
        if draw < rates.timeout:
            self._count("timeout")
            time.sleep(self.slow_seconds)  # the client has given up by now
            response = super()._dispatch(request)
            self._note_ambiguous(response, addresses)
            return response
        draw -= rates.timeout
        response = super()._dispatch(request)
        if draw < rates.truncated and response.status_code == 200:
            self._count("truncated")
            with self._lock:
                self.cut_short.update(addresses)
            body = response.get_data(as_text=True)
            return Response(body[: len(body) // 2], status=200, mimetype="application/json")
        return response

    def _count(self, kind: str) -> None:
        with self._lock:
            self.injected[kind] += 1

    def _refuse(
        self, kind: str, addresses: list[str], fault: Fault, until: datetime | None = None
    ) -> Response:
        message = fault.body.split('"message": "', 1)[-1].rstrip('"}')
        with self._lock:
            self.injected[kind] += 1
            for address in addresses:
                self.refusals.setdefault(address, []).append(message)
                if until is not None:
                    self.not_before[address] = until
        return Response(fault.body, status=fault.status, headers=fault.headers)

    def _note_ambiguous(self, response: Response, addresses: list[str]) -> None:
        if response.status_code == 200:
            with self._lock:
                self.ambiguous.update(addresses)

    def received(self) -> Counter[str]:
        """Messages accepted per address (what recipients would get)."""
        return Counter(delivery.address.lower() for delivery in self.deliveries())
