"""The checks every fault campaign ends with: nobody lost, nobody sent twice beyond the
documented in-flight window, every failure recorded with the server's own words."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from faults.ledger_view import Row, by_status


def audit_campaign(
    *,
    subscribed: set[str],
    received: Counter[str],
    rows: Mapping[str, Row],
    ambiguous: Counter[str],
    refusals: Mapping[str, Sequence[str]],
) -> dict[str, int]:
    """Assert the end state of a finished campaign; return its figures.

    ``received``: messages the server accepted per address; ``ambiguous``: per address, how many
    times the server accepted a message whose answer never reached the client (the in-flight
    window); ``refusals``: every refusal the server gave each address.
    """
    sent, failed, pending = (by_status(dict(rows), s) for s in ("sent", "failed", "pending"))
    delivered = set(received)
    assert set(rows) == subscribed, "the ledger must hold exactly the subscribed addresses"
    assert not pending, f"{len(pending)} recipients left pending after the final run"
    assert delivered <= subscribed, f"mail to strangers: {sorted(delivered - subscribed)[:5]}"
    assert sent <= delivered, f"recorded sent, never received: {sorted(sent - delivered)[:5]}"
    silently_dropped = subscribed - delivered - failed
    assert not silently_dropped, f"neither delivered nor failed: {sorted(silently_dropped)[:5]}"
    # Delivered and yet failed: only when an accepted message's answer was lost, then refused.
    assert all(ambiguous[a] for a in delivered & failed), sorted(delivered & failed)[:5]
    duplicates = 0
    for address, count in received.items():
        if count > 1:
            assert count - 1 <= ambiguous[address], (
                f"{address} got {count} copies; only {ambiguous[address]} accepted in flight"
            )
            duplicates += count - 1
    for address in failed:
        error = rows[address].last_error or ""
        replies = refusals.get(address, ())
        assert any(reply and reply in error for reply in replies), (
            f"{address}: ledger error {error!r} is not the server's reason {list(replies)[-1:]}"
        )
    return {
        "subscribed": len(subscribed),
        "messages": sum(received.values()),
        "delivered": len(delivered),
        "failed": len(failed),
        "duplicates": duplicates,
        "in_flight_accepted": sum(ambiguous.values()),
    }


def files_holding(secrets: Iterable[str], folders: Iterable[Path]) -> list[str]:
    """``path: secret`` for every file under ``folders`` whose bytes hold a secret, in UTF-8,
    UTF-16 or base64 (as an Authorization header would carry it)."""
    import base64

    needles: dict[bytes, str] = {}
    for secret in secrets:
        for form in (
            secret.encode(),
            secret.encode("utf-16-le"),
            base64.b64encode(secret.encode()),
        ):
            needles[form] = secret
    found = []
    for folder in folders:
        if not folder.exists():
            continue
        for path in [folder] if folder.is_file() else sorted(folder.rglob("*")):
            if path.is_file():
                data = path.read_bytes()
                found += [f"{path}: {s}" for form, s in needles.items() if form in data]
    return found


def texts_holding(secrets: Iterable[str], texts: Iterable[str]) -> list[str]:
    """Each secret found in ``texts`` as written, hex-encoded or URL-encoded, in any case."""
    from urllib.parse import quote, quote_plus

    joined = "\n".join(texts).lower()
    found = []
    for secret in secrets:
        forms = (secret, secret.encode().hex(), quote(secret, safe=""), quote_plus(secret))
        if any(form.lower() in joined for form in forms):
            found.append(secret)
    return found
