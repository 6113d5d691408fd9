"""Fixtures of the fault campaigns."""

from __future__ import annotations

# Distinctive values: a grep of every output and file for them must find nothing.
SMTP_PASSWORD = "smtp-pw-Q7x!campaign-4f1e"
MAILGUN_API_KEY = "key-campaign-9d2b7a6c5e4f"
DIGEST_SECRET = "digest-secret-campaign-31c8a-e94b07d2"
SECRETS = (SMTP_PASSWORD, MAILGUN_API_KEY, DIGEST_SECRET)


# `digest send` as users run it, with the retry clock shortened so a campaign of hundreds of
# faults takes seconds: backoff 10 ms doubling up to 1 s (a server's "try again after" is still
# honoured, up to 5 s), and the run stops as "server down" after 0.5 s without any success.
FAST_RETRY = ("--retry", "backoff=0.01s,max-backoff=1s,outage=0.5s")
