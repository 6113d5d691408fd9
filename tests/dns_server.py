"""A real DNS server for tests: dnslib on 127.0.0.1, UDP and TCP on one port the OS picks.

It serves what the test puts in :attr:`DnsZone.txt` and :attr:`DnsZone.mx` (names without the
final dot), answers NXDOMAIN for every other name, and can be told to misbehave:

* ``servfail``: names answered with SERVFAIL;
* ``silent``: names never answered (the client times out);
* an answer over 512 bytes asked over UDP comes back truncated (TC bit, no records), as from a
  server without EDNS, so the client must ask again over TCP.

``queries`` records each (protocol, name, type) asked, for tests that check the TCP retry.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from dnslib import MX, QTYPE, RCODE, RR, TXT, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer

UDP_LIMIT = 512  # a classic DNS answer over UDP, without EDNS
_QUIET = DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data")


@dataclass
class DnsZone:
    txt: dict[str, list[str]] = field(default_factory=dict)
    mx: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    servfail: set[str] = field(default_factory=set)
    silent: set[str] = field(default_factory=set)
    queries: list[tuple[str, str, str]] = field(default_factory=list)
    port: int = 0
    released: threading.Event = field(default_factory=threading.Event)

    @property
    def address(self) -> str:
        """The value for DIGEST_DNS_SERVER."""
        return f"127.0.0.1:{self.port}"

    def exists(self, name: str) -> bool:
        """A name exists when it holds a record or a name below it does."""
        return any(n == name or n.endswith("." + name) for n in [*self.txt, *self.mx])


class _ZoneResolver(BaseResolver):  # type: ignore[misc]
    def __init__(self, zone: DnsZone) -> None:
        self.zone = zone

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        name = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        self.zone.queries.append((handler.protocol, name, qtype))
        reply = request.reply()
        if name in self.zone.silent:
            self.zone.released.wait(30)  # until the test ends; the client has given up
            return reply
        if name in self.zone.servfail:
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        if not self.zone.exists(name):
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        if qtype == "TXT":
            for text in self.zone.txt.get(name, []):
                data = text.encode("utf-8", errors="surrogateescape")
                strings = [data[i : i + 255] for i in range(0, len(data), 255)] or [b""]
                reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(strings), ttl=60))
        elif qtype == "MX":
            for preference, host in self.zone.mx.get(name, []):
                reply.add_answer(
                    RR(request.q.qname, QTYPE.MX, rdata=MX(host + ".", preference), ttl=60)
                )
        if handler.protocol == "udp" and len(reply.pack()) > UDP_LIMIT:
            reply = request.reply()  # the question kept, the records dropped, TC set
            reply.header.tc = 1
        return reply


def start_dns_server(zone: DnsZone) -> tuple[DNSServer, DNSServer]:
    """UDP and TCP servers on the same free port of 127.0.0.1, serving ``zone``."""
    resolver = _ZoneResolver(zone)
    for _ in range(20):
        udp = DNSServer(resolver, address="127.0.0.1", port=0, logger=_QUIET)
        port = udp.server.server_address[1]
        try:
            tcp = DNSServer(resolver, address="127.0.0.1", port=port, tcp=True, logger=_QUIET)
        except OSError:  # that port is taken for TCP: pick another
            udp.server.server_close()
            continue
        zone.port = port
        for server in (udp, tcp):
            # A short poll: stopping the server then takes milliseconds, not half a second.
            threading.Thread(
                target=server.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
            ).start()
        return udp, tcp
    raise RuntimeError("no free port for both UDP and TCP on 127.0.0.1")


def stop_dns_server(zone: DnsZone, servers: tuple[DNSServer, DNSServer]) -> None:
    zone.released.set()
    for server in servers:
        server.stop()
        server.server.server_close()
