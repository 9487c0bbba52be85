"""Where a platform request may connect: every address normalised, then checked (the SSRF guard).

An output link, and every redirect hop after it, is the platform's word, not ours: a hostile or compromised platform
could point the booth at its own API, the router's admin page or a cloud metadata service. So every address a
request is about to connect to is

1. parsed in every spelling a resolver accepts (``2130706433``, ``0177.0.0.1``, ``0x7f.1``, ``127.1``,
   ``[::ffff:7f00:1]``, zone ids), or resolved once when it is a name (the connection then goes to exactly that
   address: a name cannot resolve to one thing for the check and another for the connection);
2. unwrapped when it is IPv6 carrying IPv4 (mapped ``::ffff:0:0/96``, translated ``::ffff:0:0:0/96``, compatible
   ``::/96``, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``, Teredo) and the embedded IPv4 address checked;
3. refused when it is loopback, private, link-local, unspecified, multicast, shared (CGNAT), reserved or a cloud
   metadata address, unless it is the platform's own address and port (the simulator on loopback, a platform on the
   LAN) or a host listed in ``allow_private_hosts`` (never for loopback, link-local, metadata or multicast).

The check runs in the connection layer (``transport.py``), so the first request and each redirect hop pass it.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable

from agent.platforms.errors import PermanentError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_net = ipaddress.ip_network

# Checked in this order, so an address gets the most telling name (metadata before link-local).
_REFUSED: list[tuple[str, list[ipaddress.IPv4Network | ipaddress.IPv6Network]]] = [
    (
        "cloud metadata",
        [
            _net("169.254.169.254/32"),  # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle
            _net("169.254.170.2/32"),  # AWS ECS task metadata
            _net("100.100.100.200/32"),  # Alibaba Cloud
            _net("168.63.129.16/32"),  # Azure wire server (a public address)
            _net("192.0.0.192/32"),  # Oracle Cloud (legacy)
            _net("fd00:ec2::254/128"),  # AWS over IPv6
        ],
    ),
    ("loopback", [_net("127.0.0.0/8"), _net("::1/128")]),
    ("unspecified", [_net("0.0.0.0/8"), _net("::/128")]),
    ("link-local", [_net("169.254.0.0/16"), _net("fe80::/10")]),
    ("private", [_net("10.0.0.0/8"), _net("172.16.0.0/12"), _net("192.168.0.0/16"), _net("fc00::/7")]),
    ("shared (CGNAT)", [_net("100.64.0.0/10")]),
    ("multicast", [_net("224.0.0.0/4"), _net("ff00::/8")]),
    (
        "reserved",
        [
            _net("240.0.0.0/4"),  # incl. 255.255.255.255
            _net("192.0.0.0/24"),
            _net("192.0.2.0/24"),
            _net("198.18.0.0/15"),
            _net("198.51.100.0/24"),
            _net("203.0.113.0/24"),
            _net("192.88.99.0/24"),  # 6to4 relay anycast
            _net("fec0::/10"),  # site-local
            _net("2001:db8::/32"),
            _net("100::/64"),  # discard
            _net("64:ff9b:1::/48"),  # local-use NAT64
        ],
    ),
]
# Kinds an operator may allow for a listed host (a platform's object store on the LAN); never the others.
ALLOWABLE = frozenset({"private", "shared (CGNAT)"})

_NAT64 = _net("64:ff9b::/96")
_MAPPED = _net("::ffff:0:0/96")
_TRANSLATED = _net("::ffff:0:0:0/96")
_COMPATIBLE = _net("::/96")
_PART = re.compile(r"0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*")


def parse_ip(host: str) -> IPAddress | None:
    """``host`` as an address if it is a literal in any form a resolver accepts (dotted, decimal, octal, hex, short,
    IPv6 with or without brackets or a zone id), else None (a name, or garbage)."""
    h = host.strip()
    if h.startswith("[") and h.endswith("]"):
        h = h[1:-1]
    h = h.split("%", 1)[0]  # a zone id: fe80::1%eth0 (or %25eth0 in a URL)
    if h.endswith(".") and not h.endswith(".."):
        h = h[:-1]  # a fully qualified literal: 127.0.0.1.
    try:
        return ipaddress.ip_address(h)
    except ValueError:
        pass
    return _inet_aton(h)


def _inet_aton(h: str) -> ipaddress.IPv4Address | None:
    """The classic BSD parser (what getaddrinfo accepts): 1 to 4 parts, each decimal, octal (0...) or hex (0x...);
    the last part fills the remaining bytes (``127.1`` is 127.0.0.1, ``2130706433`` too)."""
    parts = h.split(".")
    if not 1 <= len(parts) <= 4 or not all(_PART.fullmatch(p) for p in parts):
        return None
    nums = [int(p, 16) if p[:2].lower() == "0x" else int(p, 8) if p.startswith("0") else int(p) for p in parts]
    *head, last = nums
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        return None
    value = 0
    for n in head:
        value = value * 256 + n
    return ipaddress.IPv4Address(value * 256 ** (4 - len(head)) + last)


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, translated, compatible, NAT64, 6to4), else None."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _TRANSLATED or ip in _NAT64:
        return low32
    if ip in _COMPATIBLE and int(ip) > 1:  # ::a.b.c.d, but not :: or ::1 themselves
        return low32
    return ip.sixtofour


def refusal(ip: IPAddress) -> str | None:
    """Why a booth may not connect to ``ip`` (``"loopback"``, ``"private"``, ``"cloud metadata"``, ...) or None."""
    v4 = embedded_ipv4(ip)
    if v4 is not None:
        return refusal(v4)
    if isinstance(ip, ipaddress.IPv6Address) and ip.teredo is not None:
        server, client = ip.teredo
        return refusal(server) or refusal(client) or "reserved"  # Teredo is long dead: a tunnel has no business here
    for reason, nets in _REFUSED:
        if any(ip in n for n in nets if n.version == ip.version):
            return reason
    return None if ip.is_global else "reserved"


def normalised(ip: IPAddress) -> IPAddress:
    """The address as compared for "the platform's own": IPv6 that carries IPv4 as that IPv4."""
    return embedded_ipv4(ip) or ip


class TargetPolicy:
    """The SSRF guard of one platform: ``addresses(host, port)`` -> where a connection may go, or PermanentError."""

    def __init__(self, own_host: str, own_port: int, allow_private_hosts: Iterable[str] = ()) -> None:
        self.own_host = own_host.lower().strip("[]")
        self.own_port = own_port
        self.allowed = {h.lower().strip("[]") for h in allow_private_hosts}

    def addresses(self, host: str, port: int) -> list[str]:
        """The addresses to connect to for ``host:port``, each one checked; PermanentError(kind="output") naming the
        first refused one; ``socket.gaierror`` when the name does not resolve."""
        name = host.lower().strip("[]")
        found = resolve(name, port)
        if name == self.own_host and port == self.own_port:
            return [str(ip) for ip in found]  # the platform itself, however local its address
        own: set[IPAddress] | None = None
        for ip in found:
            reason = refusal(ip)
            if reason is None or (reason in ALLOWABLE and name in self.allowed):
                continue
            if port == self.own_port:  # the platform's own address spelled another way ([::ffff:127.0.0.1])
                own = own if own is not None else {normalised(a) for a in resolve(self.own_host, port)}
                if normalised(ip) in own:
                    continue
            shown = host if host == str(ip) else f"{host} -> {ip}"
            raise PermanentError(f"output link points at a local address ({shown}, {reason}); refused", kind="output")
        return [str(ip) for ip in found]


def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses of ``host`` (a literal in any spelling is parsed, never looked up), in resolver order."""
    literal = parse_ip(host)
    if literal is not None:
        return [literal]
    out: list[IPAddress] = []
    for family, _, _, _, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        if family in (socket.AF_INET, socket.AF_INET6):
            ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            if ip not in out:
                out.append(ip)
    return out
