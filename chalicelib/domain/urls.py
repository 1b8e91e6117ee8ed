"""Merchant-supplied URLs (refund and restock webhooks, a shop's address, subscriptions): which may be called.

One policy for all of them, so that no merchant can make Boomerang call into its own network (SSRF):

- https only; a URL carries no credentials and no fragment; its host is a public DNS name or a public IP address
  written the standard way (no ``2130706433``, ``0x7f.1``, ``127.1``: the integer forms some resolvers accept);
- an address is refused when it is loopback, private (RFC 1918, ULA ``fc00::/7``), link-local (``169.254/16``,
  ``fe80::/10``, where the cloud metadata services live), CGNAT (``100.64/10``), multicast, unspecified, reserved or
  otherwise not globally routable; IPv6 forms that carry an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``,
  IPv4-compatible ``::a.b.c.d``, 6to4 ``2002::/16``, NAT64 ``64:ff9b::/96``) are judged by that IPv4 address;
- names that mean "this machine" or "the cloud's metadata" (``localhost``, ``*.localhost``, ``*.internal``,
  ``metadata.google.internal``, ...) and single-label names (``intranet``) are refused;
- local mode (``make run``, tests: ``WEBHOOKS_ALLOW_LOOPBACK``) accepts, in addition, exactly
  ``http://127.0.0.1:<port>`` (local sinks); every other loopback form stays refused there too.

`url_error` judges a URL as written (save time and again before each call); `address_error` and `connect_error`
judge an address a name resolved to, at save time and at connect time (the address checked is the address
connected to: chalicelib/adapters/outbound.py). Pure: nothing here resolves a name.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048
#: The one loopback receiver local mode accepts (as ``http://127.0.0.1:<port>``).
LOCAL_RECEIVER_HOST = "127.0.0.1"

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),
        ipaddress.ip_address("fd00:ec2::254"),
        ipaddress.ip_address("100.100.100.200"),
    }
)
_METADATA_NAMES = frozenset({"metadata", "metadata.google.internal", "metadata.goog", "instance-data"})
_LOCAL_SUFFIXES = (".localhost", ".internal", ".local", ".localdomain", ".home.arpa")
_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$")
#: A last label that an IPv4 parser takes for a number (WHATWG URL "ends in a number"): such a host is an address.
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")

NOT_PUBLIC = "must not point to a loopback, private, link-local or reserved address"


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, compatible, 6to4, NAT64), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if int(ip) >> 32 == 0 and int(ip) > 1:  # IPv4-compatible ::a.b.c.d (not :: or ::1)
        return ipaddress.IPv4Address(int(ip))
    return None


def address_error(address: str) -> str | None:
    """Why Boomerang must not connect to this IP address on a merchant's behalf, or None for a public one."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "not an IP address"
    if ip in _METADATA_ADDRESSES:
        return "must not point to a cloud metadata address"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return NOT_PUBLIC
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return address_error(str(embedded))
    if ip.is_loopback:
        return "must not point to a loopback address"
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved or ip.is_link_local or ip.is_private:
        return NOT_PUBLIC
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return NOT_PUBLIC
    if not ip.is_global:
        return NOT_PUBLIC
    return None


def connect_error(host: str, address: str, *, local: bool) -> str | None:
    """Why a URL naming `host` must not be called at `address` (what `host` resolved to), or None. In local mode a
    URL written with the host 127.0.0.1 may connect to 127.0.0.1; nothing else may reach a loopback address."""
    if local and host == LOCAL_RECEIVER_HOST and address == LOCAL_RECEIVER_HOST:
        return None
    return address_error(address)


def resolved_error(host: str, addresses: Iterable[str], *, local: bool) -> str | None:
    """Why a host that resolved to `addresses` must not be called (any one of them refused), or None."""
    for address in addresses:
        why = connect_error(host, address, local=local)
        if why:
            return f"host resolves to a refused address ({why})"
    return None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def url_error(url: str, *, local: bool) -> str | None:
    """Why this merchant-supplied URL is refused as written, or None. A host name is judged again by what it
    resolves to (`resolved_error`), at save time and at every call."""
    if len(url) > MAX_URL_LENGTH:
        return f"at most {MAX_URL_LENGTH} characters"
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        return "not a valid URL"
    try:
        parts = urlsplit(url)
        raw_host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "not a valid URL"
    if parts.scheme not in ("https", "http") or not raw_host:
        return "must be an https URL"
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials"
    if parts.fragment:
        return "must not have a fragment"
    if (
        local
        and parts.scheme == "http"
        and raw_host == LOCAL_RECEIVER_HOST
        and port is not None
        and parts.netloc == f"{LOCAL_RECEIVER_HOST}:{port}"
    ):
        return None
    if parts.scheme != "https":
        return (
            f"must be an https URL (or exactly http://{LOCAL_RECEIVER_HOST}:<port> in local mode)"
            if local
            else "must be an https URL"
        )
    if port == 0:
        return "not a valid URL"
    return host_error(raw_host)


def host_error(host: str) -> str | None:
    """Why this host (a name or an IP address, as in a URL) is refused as written, or None."""
    if not host.isascii():
        return "the host must be written in ASCII (punycode)"
    host = host.lower()
    if _is_ip(host):
        return address_error(host)
    name = host[:-1] if host.endswith(".") else host
    labels = name.split(".")
    if _NUMERIC_LABEL.match(labels[-1]):
        return "an IP address must be written as four decimal numbers (IPv4) or in brackets (IPv6)"
    if not _NAME.match(name):
        return "not a valid host name"
    if name == "localhost" or name.endswith(_LOCAL_SUFFIXES):
        return "must not point to a loopback or internal name"
    if name in _METADATA_NAMES:
        return "must not point to a cloud metadata address"
    if len(labels) < 2:
        return "must name a public host"
    return None
