"""Apprise URLs people set for themselves in Slack must not reach private addresses.

Apprise makes its own HTTP requests, so the outgoing guard's resolver cannot be used; the
URL's host is resolved and checked (`bot.outgoing.check_address`) when the method is added
and again before each notification. A host that does not resolve passes: several Apprise
schemes carry a token where a host would be (`tgram://BOT_TOKEN/CHAT`) and reach their
service's fixed public API. URLs from `contacts` in the config are the admin's, not checked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Collection
from urllib.parse import urlsplit

from bot.outgoing import Refused, check_address


async def check_apprise_url(url: str, allowed_hosts: Collection[str]) -> None:
    """Raise Refused when the URL's host is, or resolves to, a refused address."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        raise Refused("the URL cannot be read") from None
    if not host:
        return
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        check_address(host, literal, allowed_hosts)
        return
    if host == "localhost" or host.endswith(".localhost"):
        check_address(host, ipaddress.ip_address("127.0.0.1"), allowed_hosts)
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, 0, type=socket.SOCK_STREAM)
    except OSError:
        return  # not a host name (a token); the plugin calls its own service
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        check_address(host, address, allowed_hosts)
