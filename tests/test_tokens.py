"""Unsubscribe tokens: verified with the secret alone, bound to one address and one edition,
the address unreadable (v2); tokens already mailed (v1) keep working."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from digest.tokens import (
    InvalidToken,
    TokenClaims,
    fill_url,
    make_proof_token,
    make_token,
    verify_token,
)

SECRET = "token-test-secret-91c2"


def v1_token(secret: str, address: str, slug: str) -> str:
    """A token exactly as the first version made them (and as mailed before v2): the readable
    base64url of ``v1\n<slug>\n<address>``, a dot, 16 bytes of its HMAC-SHA256."""
    payload = f"v1\n{slug}\n{address}".encode()
    mac = hmac.new(secret.encode(), payload, hashlib.sha256).digest()[:16]
    return f"{_b64(payload)}.{_b64(mac)}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_token_does_not_show_the_address() -> None:
    token = make_token(SECRET, "ada.lovelace@example.org", "2026-03")
    assert token.startswith("v2-") and len(token) <= 80
    decoded = base64.urlsafe_b64decode(token[3:] + "=" * (-len(token[3:]) % 4))
    for part in ("ada", "lovelace", "example", "2026"):
        assert part not in token.lower()
        assert part.encode() not in decoded.lower()
    # Deterministic: the same reader's link is the same in every copy and rerun.
    assert make_token(SECRET, "ada.lovelace@example.org", "2026-03") == token
    assert make_token(SECRET, "ada.lovelace@example.org", "2026-04") != token


def test_v1_tokens_already_mailed_keep_working() -> None:
    token = v1_token(SECRET, "ada@example.org", "2026-03")
    assert base64.urlsafe_b64decode(token.split(".")[0] + "==").endswith(b"ada@example.org")
    claims = verify_token(SECRET, token)
    assert claims == ("ada@example.org", "2026-03") and not claims.proof


def test_proof_tokens_are_valid_but_marked_and_distinct() -> None:
    proof = make_proof_token(SECRET, "ada@example.org", "2026-03")
    real = make_token(SECRET, "ada@example.org", "2026-03")
    assert proof != real
    claims = verify_token(SECRET, proof)
    assert claims == ("ada@example.org", "2026-03") and claims.proof
    assert not verify_token(SECRET, real).proof


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
    payload = f"v1\n{slug}\n{address}".encode()
    return f"{_b64(payload)}.{token.split('.')[1]}"


@pytest.mark.parametrize(
    ("address", "slug"),
    [
        ("bob@example.org", "2026-03"),
        ("ada@example.org", "2026-04"),
        ("ADA@example.org", "2026-03"),
    ],
)
def test_a_v1_token_cannot_be_moved_to_another_address_or_edition(address: str, slug: str) -> None:
    token = v1_token(SECRET, "ada@example.org", "2026-03")
    with pytest.raises(InvalidToken):
        verify_token(SECRET, _swap_payload(token, address, slug))


def test_a_forged_signature_is_refused() -> None:
    token = v1_token(SECRET, "ada@example.org", "2026-03")
    payload, mac = token.split(".")
    flipped = ("A" if mac[0] != "A" else "B") + mac[1:]
    with pytest.raises(InvalidToken):
        verify_token(SECRET, f"{payload}.{flipped}")


def test_every_changed_byte_of_a_v2_token_is_refused() -> None:
    token = make_token(SECRET, "ada@example.org", "2026-03")
    sealed = bytearray(base64.urlsafe_b64decode(token[3:] + "=" * (-len(token[3:]) % 4)))
    for index in range(len(sealed)):
        changed = bytearray(sealed)
        changed[index] ^= 0x01
        with pytest.raises(InvalidToken, match="signature"):
            verify_token(SECRET, "v2-" + _b64(bytes(changed)))
    with pytest.raises(InvalidToken):
        verify_token(SECRET, "v2-" + _b64(bytes(sealed[:-1])))
    with pytest.raises(InvalidToken):
        verify_token("another-secret", token)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "no-dot",
        "a.b.c",
        "!!!.???",
        ".",
        "x" * 5000 + ".y",
        "djE.AAAA",
        "v2-",
        "v2-AAAA",
        "v2-!!!!",
        "v2-" + "A" * 40,
    ],
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
