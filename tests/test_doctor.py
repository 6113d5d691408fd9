"""`digest doctor` against a real DNS server (dnslib on 127.0.0.1): what the user reads for a
good domain, for missing records and for broken ones, and when the DNS fails."""

from __future__ import annotations

import base64
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import CliResult
from dns_server import DnsZone, start_dns_server, stop_dns_server

LINE = re.compile(r"^(OK|WARN|FAIL|ERROR)\s+(\S+)\s+(.+?): (.*)$")


@dataclass(frozen=True)
class Key:
    pem: Path  # the private key, as DKIM_PRIVATE_KEY_FILE
    public: str  # what openssl says the p= value is


def make_key(folder: Path, bits: int) -> Key:
    pem = folder / f"dkim-{bits}.pem"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{bits}",
         "-out", str(pem)],
        check=True, capture_output=True,
    )  # fmt: skip
    der = subprocess.run(
        ["openssl", "pkey", "-in", str(pem), "-pubout", "-outform", "DER"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    return Key(pem, base64.b64encode(der).decode("ascii"))


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Key]:
    folder = tmp_path_factory.mktemp("keys")
    # 3072 bits: the DKIM answer no longer fits a 512-byte UDP answer (TCP retry).
    return {"good": make_key(folder, 3072), "other": make_key(folder, 2048),
            "short": make_key(folder, 512)}  # fmt: skip


@pytest.fixture
def dns() -> Iterator[DnsZone]:
    zone = DnsZone()
    servers = start_dns_server(zone)
    yield zone
    stop_dns_server(zone, servers)


@pytest.fixture(autouse=True)
def no_outside_dkim_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """DKIM_* are not among the prefixes run_digest clears; the machine's must not leak in."""
    import os

    for name in list(os.environ):
        if name.startswith("DKIM_"):
            monkeypatch.delenv(name)


def good_zone(dns: DnsZone, key: Key, domain: str = "example.org") -> None:
    """Everything Gmail and Yahoo ask, bounces on a subdomain."""
    dns.txt[domain] = [
        "v=spf1 mx include:_spf.relay.example.net -all",
        "google-site-verification=x",
    ]
    dns.txt["_spf.relay.example.net"] = ["v=spf1 ip4:192.0.2.0/24 ~all"]
    dns.txt[f"sel1._domainkey.{domain}"] = [f"v=DKIM1; k=rsa; p={key.public}"]
    dns.txt[f"_dmarc.{domain}"] = [f"v=DMARC1; p=quarantine; rua=mailto:dmarc@{domain}"]
    dns.mx[domain] = [(10, f"mx1.{domain}"), (20, f"mx2.{domain}")]
    dns.txt[f"bounces.{domain}"] = ["v=spf1 mx -all"]
    dns.mx[f"bounces.{domain}"] = [(10, f"mx1.{domain}")]


def settings(dns: DnsZone, key: Key | None = None, **more: str) -> dict[str, str]:
    env = {
        "DIGEST_FROM": "Clippings <clippings@example.org>",
        "DIGEST_BOUNCE_ADDRESS": "bounces@bounces.example.org",
        "DIGEST_UNSUBSCRIBE_URL": "https://example.org/unsubscribe/{token}",
        "DIGEST_DNS_SERVER": dns.address,
        "DKIM_SELECTOR": "sel1",
    }
    if key is not None:  # digest signs: all three DKIM settings
        env["DKIM_PRIVATE_KEY_FILE"] = str(key.pem)
        env["DKIM_DOMAIN"] = "example.org"
    env.update(more)
    return {k: v for k, v in env.items() if v}


def verdicts(result: CliResult) -> dict[tuple[str, str], tuple[str, str]]:
    """(check, subject) -> (verdict, message) for every verdict line."""
    found = {}
    for line in result.stdout.splitlines():
        if match := LINE.match(line):
            found[(match[2], match[3])] = (match[1], match[4])
    return found


def fixes_after(result: CliResult, check: str, subject: str) -> list[str]:
    """The `add:` / `change:` / `set:` / `note:` lines under one verdict line."""
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if (m := LINE.match(line)) and
                 (m[2], m[3]) == (check, subject))  # fmt: skip
    below = []
    for line in lines[start + 1 :]:
        if not line.startswith(" "):
            break
        below.append(line.strip())
    return below


Run = Callable[..., CliResult]


def test_a_good_domain_passes_every_check(
    dns: DnsZone, keys: dict[str, Key], run_digest: Run
) -> None:
    good_zone(dns, keys["good"])
    result = run_digest("doctor", env=settings(dns, keys["good"]))

    assert result.exit_code == 0, result.output
    assert verdicts(result) == {
        ("SPF", "example.org"): (
            "OK",
            "v=spf1 mx include:_spf.relay.example.net -all (2 of 10 DNS look-ups)",
        ),
        ("SPF", "bounces.example.org"): ("OK", "v=spf1 mx -all (1 of 10 DNS look-ups)"),
        ("DKIM", "sel1._domainkey.example.org"): (
            "OK",
            "RSA key, 3072 bits, matches DKIM_PRIVATE_KEY_FILE",
        ),
        ("DMARC", "_dmarc.example.org"): (
            "OK",
            "v=DMARC1; p=quarantine; rua=mailto:dmarc@example.org",
        ),
        ("MX", "example.org"): ("OK", "10 mx1.example.org, 20 mx2.example.org"),
        ("MX", "bounces.example.org"): ("OK", "10 mx1.example.org"),
        ("Alignment", "From example.org"): (
            "OK",
            "aligned with DKIM d=example.org (DKIM_DOMAIN) and SPF bounces.example.org "
            "(DIGEST_BOUNCE_ADDRESS)",
        ),
        ("Unsubscribe", "DIGEST_UNSUBSCRIBE_URL"): (
            "OK",
            "https link: every message carries List-Unsubscribe and List-Unsubscribe-Post "
            "(one-click, RFC 8058)",
        ),
    }
    assert result.stdout.rstrip().endswith("All required checks pass.")
    # The 3072-bit key does not fit a 512-byte UDP answer: it was fetched again over TCP.
    assert ("udp", "sel1._domainkey.example.org", "TXT") in dns.queries
    assert ("tcp", "sel1._domainkey.example.org", "TXT") in dns.queries


def test_missing_records_each_get_the_line_to_add(
    dns: DnsZone, keys: dict[str, Key], run_digest: Run
) -> None:
    dns.txt["example.org"] = ["google-site-verification=x"]  # exists, but holds no SPF
    result = run_digest("doctor", env=settings(dns, keys["other"], DIGEST_BOUNCE_ADDRESS=""))

    assert result.exit_code == 1, result.output
    found = verdicts(result)
    assert found[("SPF", "example.org")][0] == "FAIL"
    assert fixes_after(result, "SPF", "example.org")[0] == (
        'add: example.org. 3600 IN TXT "v=spf1 mx ~all"'
    )
    assert found[("DKIM", "sel1._domainkey.example.org")] == (
        "FAIL",
        "no DKIM record: receivers cannot verify digest's signatures",
    )
    # The record to add carries the public half of DKIM_PRIVATE_KEY_FILE, as openssl gives it.
    (dkim_fix,) = fixes_after(result, "DKIM", "sel1._domainkey.example.org")
    name, ttl, klass, rtype, value = dkim_fix.removeprefix("add: ").split(" ", 4)
    assert (name, ttl, klass, rtype) == ("sel1._domainkey.example.org.", "3600", "IN", "TXT")
    strings = re.findall(r'"([^"]*)"', value)
    assert all(len(s) <= 255 for s in strings)
    assert "".join(strings) == f"v=DKIM1; k=rsa; p={keys['other'].public}"
    assert found[("DMARC", "_dmarc.example.org")][0] == "FAIL"
    assert fixes_after(result, "DMARC", "_dmarc.example.org")[0] == (
        'add: _dmarc.example.org. 3600 IN TXT "v=DMARC1; p=none; '
        'rua=mailto:dmarc-reports@example.org"'
    )
    assert found[("MX", "example.org")] == (
        "FAIL",
        "no MX record: replies and bounces to example.org cannot be delivered",
    )
    assert fixes_after(result, "MX", "example.org")[0] == (
        "add: example.org. 3600 IN MX 10 mail.example.org."
    )
    assert (
        result.stdout.rstrip()
        .splitlines()[-1]
        .startswith(
            "4 required checks do not pass: SPF example.org, DKIM sel1._domainkey.example.org, "
            "DMARC _dmarc.example.org, MX example.org."
        )
    )


def test_an_ed25519_key_is_checked_against_its_own_record(
    dns: DnsZone, keys: dict[str, Key], run_digest: Run, tmp_path: Path
) -> None:
    pem = tmp_path / "ed25519.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(pem)], check=True)
    der = subprocess.run(
        ["openssl", "pkey", "-in", str(pem), "-pubout", "-outform", "DER"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    raw = base64.b64encode(der[-32:]).decode("ascii")  # RFC 8463: the bare 32-byte key
    good_zone(dns, keys["good"])
    env = settings(dns, Key(pem, raw))

    result = run_digest("doctor", env=env)
    assert fixes_after(result, "DKIM", "sel1._domainkey.example.org") == [
        f'change: sel1._domainkey.example.org. 3600 IN TXT "v=DKIM1; k=ed25519; p={raw}"'
    ]

    dns.txt["sel1._domainkey.example.org"] = [f"v=DKIM1; k=ed25519; p={raw}"]
    result = run_digest("doctor", env=env)
    assert result.exit_code == 0, result.output
    assert verdicts(result)[("DKIM", "sel1._domainkey.example.org")] == (
        "OK",
        "ed25519 key, matches DKIM_PRIVATE_KEY_FILE",
    )


def test_a_half_set_dkim_signature_is_reported(
    dns: DnsZone, keys: dict[str, Key], run_digest: Run
) -> None:
    good_zone(dns, keys["good"])
    result = run_digest("doctor", env=settings(dns, keys["good"], DKIM_DOMAIN=""))
    assert result.exit_code == 1
    assert verdicts(result)[("DKIM", "example.org")] == (
        "FAIL",
        "digest cannot sign: DKIM signing needs DKIM_DOMAIN, DKIM_SELECTOR, "
        "DKIM_PRIVATE_KEY_FILE; missing: DKIM_DOMAIN",
    )


def test_without_a_selector_it_says_how_to_set_one(
    dns: DnsZone, keys: dict[str, Key], run_digest: Run
) -> None:
    good_zone(dns, keys["good"])
    result = run_digest("doctor", env=settings(dns, DKIM_SELECTOR=""))
    assert result.exit_code == 1
    verdict, message = verdicts(result)[("DKIM", "example.org")]
    assert verdict == "FAIL"
    assert message.startswith("DKIM_SELECTOR is not set and none of the common selectors")
    below = fixes_after(result, "DKIM", "example.org")
    assert below[:3] == [
        "set: DKIM_DOMAIN=example.org",
        "set: DKIM_SELECTOR=<a name, e.g. news2026>",
        "set: DKIM_PRIVATE_KEY_FILE=<key.pem from: openssl genrsa -out key.pem 2048>",
    ]
    assert "if your relay signs instead, run DKIM_SELECTOR=" in below[4]


def test_without_a_selector_a_relays_common_selector_is_found(
    dns: DnsZone, keys: dict[str, Key], run_digest: Run
) -> None:
    """A relay that signs for you (here with Google Workspace's selector): no DKIM_* set."""
    good_zone(dns, keys["good"])
    dns.txt["google._domainkey.example.org"] = [f"v=DKIM1; k=rsa; p={keys['other'].public}"]
    result = run_digest("doctor", env=settings(dns, DKIM_SELECTOR=""))
    assert result.exit_code == 0, result.output
    assert verdicts(result)[("DKIM", "google._domainkey.example.org")] == (
        "OK",
        "RSA key, 2048 bits",
    )
    assert "'google' is the first of the common selectors" in "".join(
        fixes_after(result, "DKIM", "google._domainkey.example.org")
    )


@pytest.mark.parametrize(
    ("change", "check", "subject", "verdict", "message", "fix"),
    [
        pytest.param(
            {"example.org": ["v=spf1 mx -all", "v=spf1 include:_spf.relay.example.net ~all"]},
            "SPF", "example.org", "FAIL",
            "2 SPF records; receivers then fail SPF (permerror): keep exactly one",
            'change: example.org. 3600 IN TXT "v=spf1 mx include:_spf.relay.example.net -all"',
            id="two-spf-records",
        ),
        pytest.param(
            {"example.org": ["v=spf1 mx +all"]},
            "SPF", "example.org", "FAIL",
            "v=spf1 mx +all: '+all' lets anyone in the world send as example.org",
            'change: example.org. 3600 IN TXT "v=spf1 mx ~all"',
            id="spf-plus-all",
        ),
        pytest.param(
            {"example.org": ["v=spf1 mx"]},
            "SPF", "example.org", "WARN",
            "v=spf1 mx: no 'all' at the end: mail from other servers is neither passed nor "
            "failed (1 of 10 DNS look-ups)",
            'change: example.org. 3600 IN TXT "v=spf1 mx ~all"',
            id="spf-without-all",
        ),
        pytest.param(
            {"example.org": ["v=spf1 mx inclde:_spf.relay.example.net -all"]},
            "SPF", "example.org", "FAIL",
            "v=spf1 mx inclde:_spf.relay.example.net -all: cannot be read "
            "('inclde:_spf.relay.example.net' is no SPF term); receivers fail SPF (permerror)",
            'change: example.org. 3600 IN TXT "v=spf1 mx -all"',
            id="spf-typo",
        ),
        pytest.param(
            {"example.org": ["v=spf1 include:_spf.gone.example.net -all"]},
            "SPF", "example.org", "FAIL",
            "v=spf1 include:_spf.gone.example.net -all: include:_spf.gone.example.net has no "
            "SPF record; receivers fail SPF (permerror)",
            None,
            id="spf-include-missing",
        ),
        pytest.param(
            {"_dmarc.example.org": ["v=DMARC1; rua=mailto:dmarc@example.org"]},
            "DMARC", "_dmarc.example.org", "FAIL",
            "v=DMARC1; rua=mailto:dmarc@example.org: no p= policy, so the record does not count",
            'change: _dmarc.example.org. 3600 IN TXT "v=DMARC1; p=none; '
            'rua=mailto:dmarc@example.org"',
            id="dmarc-without-p",
        ),
        pytest.param(
            {"_dmarc.example.org": ["v=DMARC1; p=rejct"]},
            "DMARC", "_dmarc.example.org", "FAIL",
            "v=DMARC1; p=rejct: p=rejct is no policy (none, quarantine or reject)",
            'change: _dmarc.example.org. 3600 IN TXT "v=DMARC1; p=none"',
            id="dmarc-bad-policy",
        ),
        pytest.param(
            {"_dmarc.example.org": ["v=DMARC1; p=none", "v=DMARC1; p=reject"]},
            "DMARC", "_dmarc.example.org", "FAIL",
            "2 DMARC records: receivers ignore DMARC then; keep exactly one",
            'change: _dmarc.example.org. 3600 IN TXT "v=DMARC1; p=none; '
            'rua=mailto:dmarc-reports@example.org"',
            id="two-dmarc-records",
        ),
        pytest.param(
            {"_dmarc.example.org": ["hello world"]},
            "DMARC", "_dmarc.example.org", "FAIL",
            "no DMARC record (the TXT there is no DMARC record: 'hello world'): Gmail and "
            "Yahoo require one for bulk senders",
            'add: _dmarc.example.org. 3600 IN TXT "v=DMARC1; p=none; '
            'rua=mailto:dmarc-reports@example.org"',
            id="dmarc-garbage",
        ),
        pytest.param(
            {"sel1._domainkey.example.org": ["v=DKIM1; k=rsa"]},
            "DKIM", "sel1._domainkey.example.org", "FAIL",
            "v=DKIM1; k=rsa: no p= public key",
            "change: sel1._domainkey.example.org. 3600 IN TXT \"v=DKIM1; k=rsa; p={good}\"",
            id="dkim-without-p",
        ),
        pytest.param(
            {"sel1._domainkey.example.org": ["v=DKIM1; k=rsa; p={good_cut}"]},
            "DKIM", "sel1._domainkey.example.org", "FAIL",
            "p= is not valid base64 (cut short or garbled?)",
            None,
            id="dkim-truncated-key",
        ),
        pytest.param(
            {"sel1._domainkey.example.org": ["v=DKIM1; k=rsa; p={good_cut4}"]},
            "DKIM", "sel1._domainkey.example.org", "FAIL",
            "p= is not a whole RSA public key (cut short or garbled?)",
            None,
            id="dkim-truncated-at-a-base64-boundary",
        ),
        pytest.param(
            {"sel1._domainkey.example.org": ["k=rsa p=abc"]},
            "DKIM", "sel1._domainkey.example.org", "FAIL",
            "k=rsa p=abc: cannot be read (not tag=value; pairs)",
            None,
            id="dkim-garbage",
        ),
        pytest.param(
            {"sel1._domainkey.example.org": ["v=DKIM1; k=rsa; p={short}"]},
            "DKIM", "sel1._domainkey.example.org", "FAIL",
            "RSA key of 512 bits: Gmail requires at least 1024, 2048 is advised",
            None,
            id="dkim-short-key",
        ),
        pytest.param(
            {"sel1._domainkey.example.org": ["v=DKIM1; k=rsa; p={other}"]},
            "DKIM", "sel1._domainkey.example.org", "FAIL",
            "the published key is not the public half of DKIM_PRIVATE_KEY_FILE: every "
            "signature digest makes will fail",
            "change: sel1._domainkey.example.org. 3600 IN TXT \"v=DKIM1; k=rsa; p={good}\"",
            id="dkim-other-key",
        ),
    ],
)  # fmt: skip
def test_broken_records_say_what_to_change(
    dns: DnsZone,
    keys: dict[str, Key],
    run_digest: Run,
    change: dict[str, list[str]],
    check: str,
    subject: str,
    verdict: str,
    message: str,
    fix: str | None,
) -> None:
    good_zone(dns, keys["good"])
    good = keys["good"].public
    values = {"good": good, "good_cut": good[:-7], "good_cut4": good[:-8],
              "other": keys["other"].public, "short": keys["short"].public}  # fmt: skip
    for name, records in change.items():
        dns.txt[name] = [r.format(**values) for r in records]

    result = run_digest("doctor", env=settings(dns, keys["good"]))

    assert verdicts(result)[(check, subject)] == (verdict, message), result.stdout
    if fix is not None:
        expected = fix.format(**values)
        # A long key is several 255-character strings in one record: compare the joined value.
        first = fixes_after(result, check, subject)[0]
        assert re.sub(r'" "', "", first) == expected
    # Only this line changed: every other check still passes.
    others = {k: v[0] for k, v in verdicts(result).items() if k != (check, subject)}
    assert set(others.values()) == {"OK"}, result.stdout
    assert result.exit_code == (1 if verdict == "FAIL" else 0)


def test_dmarc_p_none_passes_but_says_what_stronger_means(
    dns: DnsZone, keys: dict[str, Key], run_digest: Run
) -> None:
    good_zone(dns, keys["good"])
    dns.txt["_dmarc.example.org"] = ["v=DMARC1; p=none"]
    result = run_digest("doctor", env=settings(dns, keys["good"]))
    assert result.exit_code == 0, result.output
    assert verdicts(result)[("DMARC", "_dmarc.example.org")] == (
        "WARN",
        "v=DMARC1; p=none: policy none, but no rua= to receive the reports",
    )
    below = fixes_after(result, "DMARC", "_dmarc.example.org")
    assert below[0] == (
        'change: _dmarc.example.org. 3600 IN TXT "v=DMARC1; p=none; '
        'rua=mailto:dmarc-reports@example.org"'
    )
    assert any("stronger: p=quarantine" in line and "p=reject" in line for line in below)


def test_a_subdomain_sender_falls_under_its_organizations_dmarc(
    dns: DnsZone, keys: dict[str, Key], run_digest: Run
) -> None:
    good_zone(dns, keys["good"])
    dns.txt["news.example.org"] = ["v=spf1 mx -all"]
    dns.mx["news.example.org"] = [(10, "mx1.example.org")]
    env = settings(
        dns, keys["good"], DIGEST_FROM="news@news.example.org", DKIM_DOMAIN="example.org"
    )
    result = run_digest("doctor", env=env)
    assert result.exit_code == 0, result.output
    found = verdicts(result)
    assert found[("DMARC", "_dmarc.example.org")][0] == "OK"
    assert "news.example.org has no record of its own" in "\n".join(
        fixes_after(result, "DMARC", "_dmarc.example.org")
    )
    assert found[("Alignment", "From news.example.org")] == (
        "OK",
        "aligned with DKIM d=example.org (DKIM_DOMAIN) and SPF bounces.example.org "
        "(DIGEST_BOUNCE_ADDRESS)",
    )


def test_null_mx_and_unknown_domain(dns: DnsZone, keys: dict[str, Key], run_digest: Run) -> None:
    good_zone(dns, keys["good"])
    dns.mx["bounces.example.org"] = [(0, "")]
    result = run_digest(
        "doctor", env=settings(dns, keys["good"], DIGEST_BOUNCE_ADDRESS="b@nowhere.example.net")
    )
    found = verdicts(result)
    assert found[("SPF", "nowhere.example.net")] == (
        "FAIL",
        "nowhere.example.net does not exist in DNS (NXDOMAIN): no one can receive or verify "
        "its mail",
    )
    assert found[("MX", "nowhere.example.net")] == (
        "FAIL",
        "nowhere.example.net does not exist in DNS (NXDOMAIN): bounces are lost",
    )
    assert found[("Alignment", "From example.org")][0] == "OK"  # DKIM aligns

    result = run_digest("doctor", env=settings(dns, keys["good"]))
    assert verdicts(result)[("MX", "bounces.example.org")] == (
        "FAIL",
        "null MX ('0 .'): bounces.example.org declares it takes no mail, so bounces are refused",
    )
    assert result.exit_code == 1


def test_mailgun_domain_is_the_envelope_and_dkim_domain(
    dns: DnsZone, keys: dict[str, Key], run_digest: Run
) -> None:
    good_zone(dns, keys["good"])
    dns.txt["mg.example.org"] = ["v=spf1 include:mailgun.org ~all"]
    dns.txt["mailgun.org"] = ["v=spf1 include:_spf.mailgun.org ~all"]
    dns.txt["_spf.mailgun.org"] = ["v=spf1 ip4:198.51.100.0/24 ~all"]
    dns.txt["krs._domainkey.mg.example.org"] = [f"k=rsa; p={keys['other'].public}"]
    env = settings(
        dns,
        DIGEST_BACKEND="mailgun",
        MAILGUN_DOMAIN="mg.example.org",
        MAILGUN_API_KEY="key-1",
        DKIM_SELECTOR="krs",
        DIGEST_BOUNCE_ADDRESS="",
    )
    result = run_digest("doctor", env=env)
    found = verdicts(result)
    assert found[("SPF", "mg.example.org")] == (
        "OK",
        "v=spf1 include:mailgun.org ~all (2 of 10 DNS look-ups)",
    )
    assert found[("DKIM", "krs._domainkey.mg.example.org")][0] == "OK"
    assert found[("MX", "mg.example.org")][0] == "FAIL"
    assert fixes_after(result, "MX", "mg.example.org")[:2] == [
        "add: mg.example.org. 3600 IN MX 10 mxa.mailgun.org.",
        "add: mg.example.org. 3600 IN MX 10 mxb.mailgun.org.",
    ]
    assert found[("Alignment", "From example.org")] == (
        "OK",
        "aligned with DKIM d=mg.example.org (MAILGUN_DOMAIN) and SPF mg.example.org "
        "(MAILGUN_DOMAIN)",
    )
    assert "key-1" not in result.output


def test_domains_that_do_not_align_fail(
    dns: DnsZone, keys: dict[str, Key], run_digest: Run
) -> None:
    good_zone(dns, keys["good"])
    good_zone(dns, keys["good"], domain="example.net")
    env = settings(
        dns, DKIM_DOMAIN="example.net", DIGEST_BOUNCE_ADDRESS="bounces@bounces.example.net"
    )
    result = run_digest("doctor", env=env)
    assert result.exit_code == 1
    assert verdicts(result)[("Alignment", "From example.org")] == (
        "FAIL",
        "aligned with neither DKIM d=example.net (DKIM_DOMAIN) nor SPF bounces.example.net "
        "(DIGEST_BOUNCE_ADDRESS): every message fails DMARC",
    )
    assert fixes_after(result, "Alignment", "From example.org") == [
        "set: DKIM_DOMAIN=example.org",
        "set: DIGEST_BOUNCE_ADDRESS=bounces@example.org",
    ]


@pytest.mark.parametrize(
    ("url", "mailto", "message"),
    [
        ("", "", "not set: no one-click unsubscribe (RFC 8058); Gmail and Yahoo require it"),
        (
            "",
            "mailto:unsubscribe@example.org",
            "not set: no one-click unsubscribe (RFC 8058); a mailto: link alone is not "
            "one-click; Gmail and Yahoo require it",
        ),
        (
            "http://127.0.0.1:8025/u/{token}",
            "",
            "http://127.0.0.1:8025/u/{token} is plain http (fine for a local test): one-click "
            "unsubscribe needs https",
        ),
    ],
)
def test_one_click_unsubscribe_needs_an_https_link(
    dns: DnsZone, keys: dict[str, Key], run_digest: Run, url: str, mailto: str, message: str
) -> None:
    good_zone(dns, keys["good"])
    env = settings(dns, keys["good"], DIGEST_UNSUBSCRIBE_URL=url, DIGEST_UNSUBSCRIBE_MAILTO=mailto)
    result = run_digest("doctor", env=env)
    assert result.exit_code == 1
    assert verdicts(result)[("Unsubscribe", "DIGEST_UNSUBSCRIBE_URL")] == ("FAIL", message)
    assert fixes_after(result, "Unsubscribe", "DIGEST_UNSUBSCRIBE_URL")[0] == (
        "set: DIGEST_UNSUBSCRIBE_URL=https://example.org/unsubscribe/{token}"
    )


def test_servfail_and_timeout_are_one_line_each(
    dns: DnsZone, keys: dict[str, Key], run_digest: Run
) -> None:
    good_zone(dns, keys["good"])
    dns.servfail.add("_dmarc.example.org")
    dns.silent.add("sel1._domainkey.example.org")
    result = run_digest("doctor", env=settings(dns, keys["good"]))

    assert result.exit_code == 1
    assert "Traceback" not in result.output
    found = verdicts(result)
    assert found[("DMARC", "_dmarc.example.org")] == (
        "ERROR",
        f"DNS look-up of TXT _dmarc.example.org failed: SERVFAIL from {dns.address}; the "
        "domain's DNS host may be broken, rerun later",
    )
    assert found[("DKIM", "sel1._domainkey.example.org")] == (
        "ERROR",
        f"DNS look-up of TXT sel1._domainkey.example.org timed out after 5 s (server "
        f"{dns.address}); rerun later, or set DIGEST_DNS_SERVER to a server that answers",
    )
    assert fixes_after(result, "DMARC", "_dmarc.example.org") == []
    # The checks that could be made still were.
    assert found[("SPF", "example.org")][0] == "OK"


def test_dns_data_cannot_reach_the_terminal_raw(
    dns: DnsZone, keys: dict[str, Key], run_digest: Run
) -> None:
    good_zone(dns, keys["good"])
    dns.txt["_dmarc.example.org"] = ["\x1b[2J\x1b]0;owned\x07"]
    result = run_digest("doctor", env=settings(dns, keys["good"]))
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "\\x1b[2J" in verdicts(result)[("DMARC", "_dmarc.example.org")][1]


def test_domain_option_checks_that_domain_without_settings(
    dns: DnsZone, keys: dict[str, Key], run_digest: Run
) -> None:
    good_zone(dns, keys["good"], domain="example.net")
    env = {"DIGEST_DNS_SERVER": dns.address, "DKIM_SELECTOR": "sel1"}
    result = run_digest("doctor", "--domain", "Example.NET.", env=env)
    found = verdicts(result)
    assert found[("SPF", "example.net")][0] == "OK"
    assert found[("DKIM", "sel1._domainkey.example.net")][0] == "OK"
    assert found[("Alignment", "From example.net")][0] == "OK"
    assert found[("Unsubscribe", "DIGEST_UNSUBSCRIBE_URL")][0] == "FAIL"


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ((), {}, "error: missing setting: DIGEST_FROM (the doctor checks its domain)"),
        (
            ("--domain", "not a domain"),
            {},
            "error: --domain: 'not a domain' is not a domain name that can send mail",
        ),
        (
            ("--domain", "example.org"),
            {"DIGEST_DNS_SERVER": "127.0.0.1:dns"},
            "error: DIGEST_DNS_SERVER must be host:port, e.g. 127.0.0.1:53, not '127.0.0.1:dns'",
        ),
    ],
)
def test_bad_settings_are_one_clear_message(
    run_digest: Run, args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    result = run_digest("doctor", *args, env=env)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == message
    assert "Traceback" not in result.output
