"""Guarded outgoing HTTP for workflow webhooks: timeouts, bounded reads, no redirects to other
hosts, and no private addresses unless the host is allowed.

Every address a host name resolves to is checked, and the connection is made to a checked
address (a resolver that checks again), so a name that resolves differently the second time
(DNS rebinding) still cannot reach a refused address. Link-local and cloud metadata addresses
(169.254.0.0/16, fd00:ec2::254) are refused always; private, loopback and other non-public
ranges only for hosts listed in `allowed_hosts`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

MAX_BODY = 64 * 1024  # bytes of an answer read at most
MAX_REDIRECTS = 3

_ALWAYS_REFUSED = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fd00:ec2::254/128"),
    ipaddress.ip_network("fe80::/10"),
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(Exception):
    """The call may not be made (a refused address, a redirect elsewhere, a bad URL)."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes  # at most MAX_BODY bytes
    truncated: bool


def check_address(host: str, address: IPAddress, allowed_hosts: Collection[str]) -> None:
    """Raise Refused unless `host` may be reached at `address`."""
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    if any(address in net for net in _ALWAYS_REFUSED):
        raise Refused(f"{host} resolves to {address}, a link-local or metadata address")
    if address.is_global:
        return
    if host.lower() in allowed_hosts:
        return
    raise Refused(
        f"{host} resolves to {address}, a private or loopback address; "
        "list the host in allowed_hosts to call it"
    )


async def resolve(host: str, port: int, allowed_hosts: Collection[str]) -> list[IPAddress]:
    """Every address of `host`, each checked; Refused when any is refused."""
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            raise Refused(f"cannot resolve {host}: {exc}") from None
        addresses = list(
            dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos)
        )
    if not addresses:
        raise Refused(f"{host} has no address")
    for address in addresses:
        check_address(host, address, allowed_hosts)
    return addresses


class _GuardedResolver(AbstractResolver):
    """aiohttp's resolver, answering only with addresses that pass the checks."""

    def __init__(self, allowed_hosts: Collection[str]) -> None:
        self.allowed_hosts = allowed_hosts

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await resolve(host, port, self.allowed_hosts)
        return [
            ResolveResult(
                hostname=host,
                host=str(a),
                port=port,
                family=socket.AF_INET6 if a.version == 6 else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for a in addresses
        ]

    async def close(self) -> None:
        return None


async def request(
    method: str,
    url: str,
    *,
    body: bytes | None,
    headers: Mapping[str, str],
    seconds: float,
    allowed_hosts: Collection[str],
) -> Answer:
    """Make one call (following redirects to the same host only) and read its answer.

    Raises Refused, asyncio.TimeoutError or aiohttp.ClientError.
    """
    allowed = {h.lower() for h in allowed_hosts}
    connector = aiohttp.TCPConnector(resolver=_GuardedResolver(allowed), use_dns_cache=False)
    client_timeout = aiohttp.ClientTimeout(total=seconds)
    async with aiohttp.ClientSession(
        connector=connector, timeout=client_timeout, auto_decompress=False
    ) as session:
        origin = _origin(url)
        for _ in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise Refused(f"not an http(s) URL: {url}")
            # IP literals bypass the resolver: check them here (names are checked there)
            await _check_literal(parts.hostname, allowed)
            kwargs: dict[str, Any] = {"headers": dict(headers), "allow_redirects": False}
            if body is not None and method != "GET":
                kwargs["data"] = body
            async with session.request(method, url, **kwargs) as response:
                if response.status in (301, 302, 303, 307, 308) and "Location" in response.headers:
                    target = urljoin(url, response.headers["Location"])
                    if _origin(target) != origin:
                        raise Refused(f"redirect to another host refused: {target}")
                    url = target
                    continue
                data = await response.content.read(MAX_BODY + 1)
                return Answer(
                    status=response.status,
                    body=data[:MAX_BODY],
                    truncated=len(data) > MAX_BODY,
                )
        raise Refused(f"more than {MAX_REDIRECTS} redirects")


async def _check_literal(host: str, allowed: Collection[str]) -> None:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return
    check_address(host, address, allowed)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default
