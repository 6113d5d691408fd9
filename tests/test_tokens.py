"""Unsubscribe tokens: verified with the secret alone, bound to one address and one edition."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from digest.tokens import InvalidToken, TokenClaims, fill_url, make_token, verify_token

SECRET = "token-test-secret-91c2"


def test_round_trip() -> None:
    token = make_token(SECRET, "ada@example.org", "2026-03")
    assert verify_token(SECRET, token) == TokenClaims("ada@example.org", "2026-03")


def test_non_ascii_address_round_trips_and_token_is_url_safe() -> None:
    token = make_token(SECRET, "zoë@bücher.example", "2026-03")
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    assert verify_token(SECRET, token).address == "zoë@bücher.example"
    url = fill_url("https://example.org/u/{token}?x=1", token)
    assert url == f"https://example.org/u/{token}?x=1"


def test_another_secret_does_not_verify() -> None:
    token = make_token(SECRET, "ada@example.org", "2026-03")
    with pytest.raises(InvalidToken, match="signature"):
        verify_token("another-secret", token)


def _swap_payload(token: str, address: str, slug: str) -> str:
    payload = base64.urlsafe_b64encode(f"v1\n{slug}\n{address}".encode()).rstrip(b"=").decode()
    return f"{payload}.{token.split('.')[1]}"


@pytest.mark.parametrize(
    ("address", "slug"),
    [
        ("bob@example.org", "2026-03"),
        ("ada@example.org", "2026-04"),
        ("ADA@example.org", "2026-03"),
    ],
)
def test_a_token_cannot_be_moved_to_another_address_or_edition(address: str, slug: str) -> None:
    token = make_token(SECRET, "ada@example.org", "2026-03")
    with pytest.raises(InvalidToken):
        verify_token(SECRET, _swap_payload(token, address, slug))


def test_a_forged_signature_is_refused() -> None:
    token = make_token(SECRET, "ada@example.org", "2026-03")
    payload, mac = token.split(".")
    flipped = ("A" if mac[0] != "A" else "B") + mac[1:]
    with pytest.raises(InvalidToken):
        verify_token(SECRET, f"{payload}.{flipped}")


@pytest.mark.parametrize(
    "token",
    ["", "no-dot", "a.b.c", "!!!.???", ".", "x" * 5000 + ".y", "djE.AAAA"],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidToken):
        verify_token(SECRET, token)


def test_a_validly_signed_but_malformed_payload_is_refused() -> None:
    # Signed with the right secret but not of our layout: still refused, not crashed on.
    payload = b"v2\nonly-two-parts"
    mac = hmac.new(SECRET.encode(), payload, hashlib.sha256).digest()[:16]
    b64 = lambda data: base64.urlsafe_b64encode(data).rstrip(b"=").decode()  # noqa: E731
    with pytest.raises(InvalidToken, match="payload"):
        verify_token(SECRET, f"{b64(payload)}.{b64(mac)}")


def test_empty_secret_and_multi_line_values_are_refused() -> None:
    with pytest.raises(InvalidToken):
        make_token("", "ada@example.org", "2026-03")
    with pytest.raises(InvalidToken):
        verify_token("", "a.b")
    with pytest.raises(InvalidToken):
        make_token(SECRET, "ada@example.org\nv1", "2026-03")
