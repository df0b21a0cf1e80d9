"""A DNS server on loopback for tests (UDP and TCP, RFC 1035 §4.2), answering from a
small zone with dnspython's message classes, and a resolver pointed at it.

Names not in the zone get NXDOMAIN; a name in the zone asked for a type it lacks gets
an empty NOERROR answer (what dnspython reports as NoAnswer); names in ``failing``
get SERVFAIL. A UDP answer bigger than the client's EDNS payload (512 without EDNS) is
sent truncated (TC), so the resolver asks again over TCP, as with a large MX set.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from dataclasses import dataclass, field
from typing import cast

import dns.asyncresolver
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


@dataclass
class Zone:
    records: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    failing: set[str] = field(default_factory=set)
    queries: list[tuple[str, str, str]] = field(default_factory=list)  # (name, type, via)

    def add(self, name: str, kind: str, *values: str) -> None:
        self.records.setdefault((name.lower().rstrip("."), kind), []).extend(values)

    def answer(self, wire: bytes, *, via: str) -> dns.message.Message:
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        name = question.name.to_text(True).lower()
        kind = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, kind, via))
        if name in self.failing:
            response.set_rcode(dns.rcode.SERVFAIL)
        elif not any(known == name for known, _ in self.records):
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif values := self.records.get((name, kind)):
            response.answer.append(
                dns.rrset.from_text_list(
                    question.name, 60, dns.rdataclass.IN, question.rdtype, values
                )
            )
        return response


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, zone: Zone) -> None:
        self.zone = zone
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        limit = max(query.payload, 512) if query.edns >= 0 else 512
        response = self.zone.answer(data, via="udp")
        wire = response.to_wire()
        if len(wire) > limit:
            response.answer.clear()
            response.flags |= dns.flags.TC
            wire = response.to_wire()
        assert self.transport is not None
        self.transport.sendto(wire, addr)


@dataclass
class DnsServer:
    zone: Zone
    port: int
    udp: asyncio.DatagramTransport
    tcp: asyncio.Server

    def resolver(self) -> dns.asyncresolver.Resolver:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = self.port
        resolver.cache = None
        return resolver

    async def close(self) -> None:
        self.udp.close()
        self.tcp.close()
        await self.tcp.wait_closed()


async def start_dns_server(zone: Zone) -> DnsServer:
    """UDP and TCP on the same free loopback port."""
    loop = asyncio.get_running_loop()

    async def serve_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                wire = zone.answer(await reader.readexactly(length), via="tcp").to_wire()
                writer.write(struct.pack("!H", len(wire)) + wire)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    for _ in range(20):
        tcp = await asyncio.start_server(serve_tcp, "127.0.0.1", 0)
        port = tcp.sockets[0].getsockname()[1]
        try:
            udp, _ = await loop.create_datagram_endpoint(
                lambda: _Udp(zone), local_addr=("127.0.0.1", port), family=socket.AF_INET
            )
        except OSError:  # the UDP port is taken: try another pair
            tcp.close()
            await tcp.wait_closed()
            continue
        return DnsServer(zone, port, udp, tcp)
    raise RuntimeError("no free port for both UDP and TCP")
