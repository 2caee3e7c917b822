"""Where the service may connect when it calls out (webhooks): addresses, not names, are checked.

A webhook URL is chosen by an admin but resolved by the service, on the service's network: left
open it reaches the cloud metadata endpoint, loopback services and the bank's internal hosts, and
its delivery log answers "is this port open". So:

- By default a target must resolve only to public addresses: private, loopback, link-local,
  multicast, reserved, shared (CGNAT) and unspecified addresses are refused, whatever spelling
  the URL uses (`2130706433`, `0x7f000001`, `[::1]`, `::ffff:127.0.0.1`, a name resolving there).
- An explicit allow-list (`COBRANZA_API_WEBHOOK_HOSTS`) opens internal targets such as n8n:
  an entry is a host name (matched as written in the URL), an IP address or a network in CIDR
  notation (matched against every resolved address). With a list, only what it allows is called.
- The name is resolved once per attempt, every address is checked, and the connection goes to
  the checked address (`Target.url`), the name kept for the Host header and TLS (SNI and the
  certificate): no second lookup a rebinding DNS server could answer differently.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
ALLOW_SETTING = "COBRANZA_API_WEBHOOK_HOSTS"


class TargetRefused(Exception):
    """A target the policy does not allow; the message never quotes the address or host."""


def _ip(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_public(address: IPAddress) -> bool:
    """A globally routable unicast address (Python's `is_global` less multicast)."""
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class Target:
    """A checked connection: the URL with the host replaced by the address, and the name."""

    url: httpx.URL
    host: str  # as written in the URL (the Host header and TLS name)
    address: IPAddress

    def request_kwargs(self) -> dict[str, Any]:
        """What httpx needs to call the address while speaking to the name."""
        port = self.url.port
        host_header = self.host if ":" not in self.host else f"[{self.host}]"
        if port is not None:
            host_header += f":{port}"
        return {"headers": {"Host": host_header}, "extensions": {"sni_hostname": self.host}}


class EgressPolicy:
    """Which hosts and addresses outgoing calls may reach (see the module docstring)."""

    def __init__(self, allowed: Iterable[str] | None = None):
        self.allow_list = allowed is not None
        names: set[str] = set()
        networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in allowed or ():
            text = entry.strip().strip("[]").lower().rstrip(".")
            if not text:
                continue
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                names.add(text)
        self.names = frozenset(names)
        self.networks = tuple(networks)

    def _address_allowed(self, address: IPAddress) -> bool:
        if self.allow_list:
            return any(address in net for net in self.networks if net.version == address.version)
        return is_public(address)

    def name_allowed(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.names

    def check(self, host: str, addresses: Iterable[IPAddress]) -> IPAddress:
        """The address to connect to: every one the host resolves to must be allowed."""
        found = list(addresses)
        if not found:
            raise TargetRefused("the host does not resolve to any address")
        if self.name_allowed(host):
            return found[0]
        if not all(self._address_allowed(a) for a in found):
            raise TargetRefused(self.refusal())
        return found[0]

    def refusal(self) -> str:
        if self.allow_list:
            return f"the host is not among the hosts webhooks may call ({ALLOW_SETTING})"
        return (
            "the host is or resolves to a private, loopback, link-local or multicast address; "
            f"an internal receiver must be listed in {ALLOW_SETTING}"
        )

    def check_registration(self, url: str) -> None:
        """At registration: an IP literal or a resolvable name must be allowed now (a name that
        does not resolve yet is checked at each delivery)."""
        host = _host(url)
        if self.name_allowed(host):
            return
        try:
            addresses = resolve(host, httpx.URL(url).port)
        except OSError:
            if _ip(host) is not None or self.allow_list:
                raise TargetRefused(self.refusal()) from None
            return
        self.check(host, addresses)

    def target(self, url: str) -> Target:
        """Resolve once and check: the address to connect to (raise TargetRefused, OSError)."""
        parsed = httpx.URL(url)
        host = _host(url)
        address = self.check(host, resolve(host, parsed.port))
        return Target(parsed.copy_with(host=str(address)), host, address)


def _host(url: str) -> str:
    return (httpx.URL(url).host or "").lower().rstrip(".")


def resolve(host: str, port: int | None) -> list[IPAddress]:
    """Every address of `host` (an IP literal in any spelling the resolver reads, or a name)."""
    infos = socket.getaddrinfo(host, port or 0, type=socket.SOCK_STREAM)
    out: list[IPAddress] = []
    for info in infos:
        address = _ip(str(info[4][0]))
        if address is not None and address not in out:
            out.append(address)
    return out
