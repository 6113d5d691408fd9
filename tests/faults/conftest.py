"""Fixtures of the fault campaigns."""

from __future__ import annotations

import functools

import pytest

from digest.send.campaign import SendOptions

# Distinctive values: a grep of every output and file for them must find nothing.
SMTP_PASSWORD = "smtp-pw-Q7x!campaign-4f1e"
MAILGUN_API_KEY = "key-campaign-9d2b7a6c5e4f"
DIGEST_SECRET = "digest-secret-campaign-31c8a"
SECRETS = (SMTP_PASSWORD, MAILGUN_API_KEY, DIGEST_SECRET)


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """`digest send` as users run it, with the retry clock shortened so a campaign of hundreds
    of faults takes seconds: backoff 10 ms doubling (a server's "try again after" is still
    honoured, up to 5 s), the breaker after 0.5 s without success, 2 s of grace on a stop."""
    import digest.cli.send as send_cli

    quick = functools.partial(
        SendOptions, backoff_base=0.01, backoff_max=1.0, breaker_seconds=0.5, grace_seconds=2.0
    )
    monkeypatch.setattr(send_cli, "SendOptions", quick)
