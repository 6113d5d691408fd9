"""DKIM (RFC 6376): a TXT record at ``<selector>._domainkey.<domain>`` with ``v=DKIM1`` and a
``p=`` public key, RSA of at least 1024 bits (Gmail's floor; 2048 advised) or ed25519; when
DKIM_PRIVATE_KEY_FILE is set, the published key is its public half."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, replace

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from digest.backends.dkim import DkimSigner
from digest.doctor.lookup import DnsLookup, LookupFailed
from digest.doctor.report import Finding, Fix, shorten, txt_line
from digest.doctor.tags import parse_tags

MIN_RSA_BITS = 1024
ADVISED_RSA_BITS = 2048
# Selectors that relays and providers use (Google Workspace, Microsoft 365, Mailgun, SendGrid,
# Mailchimp, and the generic ones), tried in turn when DKIM_SELECTOR is not set.
COMMON_SELECTORS = (
    "default", "dkim", "mail", "google", "selector1", "selector2", "s1", "s2", "k1", "k2",
    "smtp", "mx", "krs", "pic", "mailo", "pdk1",
)  # fmt: skip
_PUBLIC_KEY_HOWTO = (
    "the public key, one line of base64, from: openssl pkey -in KEY.pem -pubout "
    "| grep -v -- ----- | tr -d '\\n'"
)


@dataclass(frozen=True)
class PublicKey:
    """A DKIM public key as DNS publishes it (``k=`` and ``p=``) and its size."""

    kind: str  # "rsa" or "ed25519"
    p: str  # base64: SubjectPublicKeyInfo for RSA, the 32 raw bytes for ed25519 (RFC 8463)
    bits: int


def signer_public_key(signer: DkimSigner) -> PublicKey:
    """The public half of the key digest signs with: the record receivers must find."""
    public = signer.key.public_key()
    if isinstance(public, ed25519.Ed25519PublicKey):
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return PublicKey("ed25519", base64.b64encode(raw).decode("ascii"), 256)
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return PublicKey("rsa", base64.b64encode(der).decode("ascii"), public.key_size)


def published_public_key(kind: str, p_value: str) -> PublicKey:
    """The key of a ``k=`` / ``p=`` pair, normalised as :func:`signer_public_key` writes it;
    ValueError saying what is wrong (receivers cannot use such a key either)."""
    try:
        data = base64.b64decode(p_value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("p= is not valid base64 (cut short or garbled?)") from None
    if kind == "ed25519":
        if len(data) != 32:
            raise ValueError("p= is not a valid ed25519 key (cut short or garbled?)")
        return PublicKey("ed25519", base64.b64encode(data).decode("ascii"), 256)
    try:  # SubjectPublicKeyInfo, as published; a bare PKCS #1 key is read too
        public = serialization.load_der_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        public = None
    if not isinstance(public, rsa.RSAPublicKey):
        raise ValueError("p= is not a whole RSA public key (cut short or garbled?)")
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return PublicKey("rsa", base64.b64encode(der).decode("ascii"), public.key_size)


def check_dkim(
    lookup: DnsLookup,
    domain: str,
    selector: str | None,
    *,
    signer: DkimSigner | None = None,
    signer_problem: str | None = None,
    mailgun: bool = False,
) -> Finding:
    """The DKIM finding for ``domain``; without a selector the common ones are tried (a relay or
    Mailgun that signs for you publishes its key under one of them, most of the time)."""
    if signer_problem is not None:
        return Finding("DKIM", domain, "FAIL", f"digest cannot sign: {signer_problem}")
    own = signer_public_key(signer) if signer is not None else None
    if selector:
        return _check_selector(lookup, selector, domain, own)
    try:
        found = _probe(lookup, domain)
    except LookupFailed as exc:
        return Finding("DKIM", domain, "ERROR", str(exc))
    if found is not None:
        finding = _check_selector(lookup, found, domain, own)
        probed = (
            f"DKIM_SELECTOR is not set; {found!r} is the first of the common selectors that "
            "holds a key: if your mail is signed with another, run DKIM_SELECTOR=<the s= of "
            "its DKIM-Signature header> digest doctor"
        )
        return replace(finding, notes=(*finding.notes, probed))
    message = (
        "DKIM_SELECTOR is not set and none of the common selectors holds a key; Gmail and "
        "Yahoo require DKIM for bulk senders"
    )
    if mailgun:
        return Finding(
            "DKIM",
            domain,
            "FAIL",
            message,
            notes=(
                "Mailgun signs for this domain: find its selector (the name before ._domainkey) "
                "in Mailgun's DNS records page and run: DKIM_SELECTOR=<selector> digest doctor",
            ),
        )
    # digest signs once all three are set (then rerun: the record to publish is printed).
    return Finding(
        "DKIM",
        domain,
        "FAIL",
        message,
        fixes=(
            Fix("set", f"DKIM_DOMAIN={domain}"),
            Fix("set", "DKIM_SELECTOR=<a name, e.g. news2026>"),
            Fix("set", "DKIM_PRIVATE_KEY_FILE=<key.pem from: openssl genrsa -out key.pem 2048>"),
        ),
        notes=(
            "with these three set digest signs every message; rerun digest doctor for the "
            "record to publish (see docs/deliverability.md)",
            "if your relay signs instead, run DKIM_SELECTOR=<the s= of the DKIM-Signature "
            "header in a message it sent> digest doctor",
        ),
    )


def _probe(lookup: DnsLookup, domain: str) -> str | None:
    """The first common selector with a TXT record under ``domain``; LookupFailed when the DNS
    fails (the other guesses would wait for it too)."""
    for selector in COMMON_SELECTORS:
        if lookup.txt(f"{selector}._domainkey.{domain}").records:
            return selector
    return None


def _check_selector(
    lookup: DnsLookup, selector: str, domain: str, own: PublicKey | None
) -> Finding:
    name = f"{selector}._domainkey.{domain}"
    if own is not None:
        wanted = txt_line(name, f"v=DKIM1; k={own.kind}; p={own.p}")
    else:
        wanted = txt_line(name, "v=DKIM1; k=rsa; p=<public key>")
    howto = () if own else (f"<public key>: {_PUBLIC_KEY_HOWTO}",)
    try:
        answer = lookup.txt(name)
    except LookupFailed as exc:
        return Finding("DKIM", name, "ERROR", str(exc))
    if not answer.records:
        return Finding(
            "DKIM",
            name,
            "FAIL",
            "no DKIM record: receivers cannot verify digest's signatures",
            fixes=(Fix("add", wanted),),
            notes=howto,
        )
    if len(answer.records) > 1:
        return Finding(
            "DKIM",
            name,
            "FAIL",
            f"{len(answer.records)} TXT records at the selector; keep exactly one DKIM key",
            fixes=(Fix("change", wanted),),
            notes=howto,
        )
    record = answer.records[0]
    shown = shorten(record, 60)
    tags = parse_tags(record)
    if tags is None:
        return Finding(
            "DKIM",
            name,
            "FAIL",
            f"{shown}: cannot be read (not tag=value; pairs)",
            fixes=(Fix("change", wanted),),
            notes=howto,
        )
    if tags.get("v", "DKIM1") != "DKIM1":
        return Finding(
            "DKIM",
            name,
            "FAIL",
            f"{shown}: v={tags['v']} (it must be v=DKIM1)",
            fixes=(Fix("change", wanted),),
            notes=howto,
        )
    if "p" not in tags:
        return Finding(
            "DKIM",
            name,
            "FAIL",
            f"{shown}: no p= public key",
            fixes=(Fix("change", wanted),),
            notes=howto,
        )
    if not tags["p"]:
        return Finding(
            "DKIM",
            name,
            "FAIL",
            "p= is empty: the key has been revoked",
            fixes=(Fix("change", wanted),),
            notes=howto,
        )
    algorithm = tags.get("k", "rsa").lower()
    notes: list[str] = []
    if "v" not in tags:
        notes.append("add v=DKIM1 at the start of the record (recommended)")
    testing = "y" in tags.get("t", "").split(":")
    if testing:
        notes.append("t=y marks the key as a test: some receivers treat the mail as unsigned")
    if algorithm not in ("rsa", "ed25519"):
        return Finding(
            "DKIM",
            name,
            "FAIL",
            f"k={algorithm}: not a key type receivers know (rsa, ed25519)",
            fixes=(Fix("change", wanted),),
            notes=howto,
        )
    try:
        published = published_public_key(algorithm, tags["p"])
    except ValueError as exc:
        return Finding("DKIM", name, "FAIL", str(exc), fixes=(Fix("change", wanted),), notes=howto)
    if published.kind == "rsa" and published.bits < MIN_RSA_BITS:
        return Finding(
            "DKIM",
            name,
            "FAIL",
            f"RSA key of {published.bits} bits: Gmail requires at least {MIN_RSA_BITS}, "
            f"{ADVISED_RSA_BITS} is advised",
            fixes=(Fix("change", wanted),),
            notes=(*howto, f"make a new key: openssl genrsa -out dkim.pem {ADVISED_RSA_BITS}"),
        )
    if own is not None and own != published:
        return Finding(
            "DKIM",
            name,
            "FAIL",
            "the published key is not the public half of DKIM_PRIVATE_KEY_FILE: every "
            "signature digest makes will fail",
            fixes=(Fix("change", wanted),),
        )
    if published.kind == "ed25519":
        notes.append("not every receiver verifies ed25519 yet: sign with an RSA key as well")
        described = "ed25519 key"
    else:
        if published.bits < ADVISED_RSA_BITS:
            notes.append(f"{ADVISED_RSA_BITS}-bit keys are advised; {published.bits} bits pass")
        described = f"RSA key, {published.bits} bits"
    matched = ", matches DKIM_PRIVATE_KEY_FILE" if own is not None else ""
    return Finding(
        "DKIM",
        name,
        "WARN" if testing else "OK",
        f"{described}{matched}",
        notes=tuple(notes),
    )
