"""DNS look-ups for the doctor: TXT and MX answers, or one clear reason why there is none.

A name that does not exist or has no record of the type is an ordinary answer (the record is
missing); a timeout, SERVFAIL or REFUSED is a :class:`LookupFailed` whose message is the line the
user reads. Answers are over UDP; dnspython retries over TCP when an answer comes back truncated
(a 4096-bit DKIM key does not fit in 512 bytes).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

from digest.errors import ConfigError

DEFAULT_LIFETIME = 5.0  # seconds for one look-up, retries included (dnspython's own default)


class LookupFailed(Exception):
    """The DNS could not say whether the record exists (timeout, SERVFAIL, REFUSED...)."""


@dataclass(frozen=True)
class Answer:
    """What a name holds of one type. ``records`` is empty when the name has none or does not
    exist (``exists`` tells which)."""

    name: str
    records: tuple[str, ...]
    exists: bool = True


def printable(text: str) -> str:
    """DNS data is outside input: control characters (a terminal escape, say) are shown as
    ``\\xNN`` rather than sent to the user's terminal."""
    return "".join(ch if ch.isprintable() or ch == " " else f"\\x{ord(ch):02x}" for ch in text)


class DnsLookup:
    """Look-ups through one resolver: ``server`` (host, port) when given (DIGEST_DNS_SERVER),
    otherwise the system's (/etc/resolv.conf)."""

    def __init__(
        self, server: tuple[str, int] | None = None, *, lifetime: float = DEFAULT_LIFETIME
    ) -> None:
        if server is None:
            try:
                resolver = dns.resolver.Resolver()
            except dns.exception.DNSException as exc:
                raise ConfigError(
                    f"no DNS server is configured on this machine ({exc})",
                    hint="set DIGEST_DNS_SERVER=host:port, e.g. DIGEST_DNS_SERVER=1.1.1.1:53",
                ) from None
            self.server_label = "the system's resolver"
        else:
            host, port = server
            resolver = dns.resolver.Resolver(configure=False)
            resolver.nameservers = [_address_of(host)]
            resolver.port = port
            self.server_label = f"{host}:{port}"
        resolver.cache = None  # a rerun after fixing a record must see the new record
        resolver.lifetime = lifetime
        resolver.timeout = min(2.0, lifetime)  # per try; a lost UDP packet is retried
        self._resolver = resolver
        self.lifetime = lifetime

    def txt(self, name: str) -> Answer:
        """The TXT records at ``name``, each with its strings joined (a record longer than 255
        characters travels as several strings)."""
        answer = self._resolve(name, "TXT")
        if answer is None:
            return Answer(name, (), exists=False)
        texts = tuple(
            printable(b"".join(rdata.strings).decode("utf-8", errors="backslashreplace"))
            for rdata in answer
        )
        return Answer(name, texts)

    def mx(self, name: str) -> tuple[Answer, tuple[tuple[int, str], ...]]:
        """The MX records at ``name`` as (preference, exchange), the exchange without its final
        dot ("" for the null MX of RFC 7505, "this domain takes no mail")."""
        answer = self._resolve(name, "MX")
        if answer is None:
            return Answer(name, (), exists=False), ()
        pairs = tuple(
            sorted(
                (int(r.preference), printable(r.exchange.to_text(omit_final_dot=True)))
                for r in answer
            )
        )
        pairs = tuple((pref, "" if host == "." else host) for pref, host in pairs)
        return Answer(name, tuple(f"{pref} {host or '.'}" for pref, host in pairs)), pairs

    def _resolve(self, name: str, rdtype: str) -> dns.resolver.Answer | None:
        """The answer (possibly empty), None when the name does not exist; LookupFailed when
        the DNS cannot tell."""
        try:
            qname = dns.name.from_text(name)
        except dns.exception.DNSException as exc:
            raise LookupFailed(f"{name} is not a valid DNS name ({exc})") from None
        try:
            return self._resolver.resolve(qname, rdtype, search=False, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return None
        except dns.resolver.LifetimeTimeout:
            raise LookupFailed(
                f"DNS look-up of {rdtype} {name} timed out after {self.lifetime:g} s "
                f"(server {self.server_label}); rerun later, or set DIGEST_DNS_SERVER to "
                "a server that answers"
            ) from None
        except dns.resolver.NoNameservers as exc:
            raise LookupFailed(
                f"DNS look-up of {rdtype} {name} failed: {_rcodes(exc)} from "
                f"{self.server_label}; the domain's DNS host may be broken, rerun later"
            ) from None
        except dns.exception.DNSException as exc:
            raise LookupFailed(
                f"DNS look-up of {rdtype} {name} failed ({printable(str(exc))})"
            ) from None


def _rcodes(exc: dns.resolver.NoNameservers) -> str:
    """What the server answered (SERVFAIL, REFUSED...), from dnspython's error list."""
    errors = exc.kwargs.get("errors") or []
    said = sorted({str(error[3]) for error in errors if isinstance(error[3], str)})
    return " / ".join(said) if said else "no usable answer"


def _address_of(host: str) -> str:
    """dnspython wants an IP address; a host name in DIGEST_DNS_SERVER is resolved once."""
    try:
        return str(socket.getaddrinfo(host, None, proto=socket.IPPROTO_UDP)[0][4][0])
    except (OSError, UnicodeError) as exc:
        raise ConfigError(
            f"DIGEST_DNS_SERVER: cannot find the address of {host!r} ({exc})",
            hint="give the DNS server as an IP address and port, e.g. 127.0.0.1:53",
        ) from None
