"""Failed portal attempts (sessions, withdrawals): who is counted, when an attempt is let through, and when it would
be let through again. Pure: the repository keeps the counters, services/auth.py decides with these rules.

A counter is one table item holding one entry per attempt it let through, each with the time it stops counting
(`until`: the attempt's time plus `WINDOW_MS`). An attempt is let through by one conditional update that adds its
entry only while the counter holds fewer than its limit, so parallel attempts can never pass more than the limit
between them. Entries whose time has passed are removed when a counter is found full (and with the item by its TTL);
a successful attempt removes its own entry again, so only failures (and attempts whose process died before it could
tell) count, each for `WINDOW_MS`: a sliding window, and the earliest time another attempt is let through is exact.

Counters, per 15 minutes (docs/portal.md, "Abuse protection"):
- per client (`client_key`: an IPv4 address, an IPv6 /64; an IPv4-mapped or 6to4 address counts as its IPv4):
  `CLIENT_ATTEMPTS`;
- per order, in its `r` pool: `ORDER_ATTEMPTS` from any client;
- per order, in its `x` pool: once `r` is full, a client that has no attempt counting against this order may still
  try once (so a stranger's guesses do not lock the customer out), `NEW_CLIENT_ATTEMPTS` such attempts at most (so
  many clients cannot guess on: at most `ORDER_ATTEMPTS + NEW_CLIENT_ATTEMPTS` attempts reach one order).
The order's item also notes per client how many of its attempts still count there (`outstanding`) and until when the
latest does (`until`), which is what "has no attempt counting against this order" reads.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field

WINDOW_MS = 15 * 60 * 1000
ORDER_ATTEMPTS = 10
CLIENT_ATTEMPTS = 50
NEW_CLIENT_ATTEMPTS = 50
#: The pools of an order's counter: "r" counts every attempt while it has room, "x" those of clients new to the order.
ANY_CLIENT, NEW_CLIENT = "r", "x"


def client_key(source_ip: str) -> str:
    """The client an address stands for: IPv4 as it is, IPv6 by its /64 (a host's interface ids rotate and anyone
    with a /64 has 2^64 of them), IPv4-mapped and 6to4 IPv6 as the IPv4 inside. Anything else as given."""
    try:
        ip = ipaddress.ip_address(source_ip.strip().split("%", 1)[0])
    except ValueError:
        return f"raw:{source_ip.strip()}"
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour
        if inner is None:
            net = ipaddress.IPv6Network((int(ip) >> 64 << 64, 64))
            return f"v6:{net}"
        ip = inner
    return f"v4:{ip}"


def client_hash(source_ip: str) -> str:
    """The client as it is stored: a hash, so counters hold no address."""
    return hashlib.sha256(client_key(source_ip).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Claim:
    """One counter an attempt must get room in: the item, the pool and its limit, this attempt's entry id; on an
    order's counter also the client (`client`), and for the `x` pool the rule that the client has nothing counting
    there yet (`client_must_be_new`)."""

    key: str
    pool: str
    limit: int
    entry: str
    client: str | None = None
    client_must_be_new: bool = False


@dataclass
class CounterState:
    """A counter item as read: each pool's entries (entry id -> until, ms) and per client (outstanding, until)."""

    pools: dict[str, dict[str, int]] = field(default_factory=dict)
    clients: dict[str, tuple[int, int]] = field(default_factory=dict)

    def fresh(self, pool: str, now_ms: int) -> list[int]:
        return sorted(u for u in self.pools.get(pool, {}).values() if u > now_ms)

    def has_room(self, pool: str, limit: int, now_ms: int) -> bool:
        return len(self.fresh(pool, now_ms)) < limit

    def room_at(self, pool: str, limit: int, now_ms: int) -> int:
        """The first time (ms) the pool holds fewer than `limit` entries that count, nobody else trying meanwhile."""
        fresh = self.fresh(pool, now_ms)
        if len(fresh) < limit:
            return now_ms
        return fresh[len(fresh) - limit]

    def client_is_new(self, client: str, now_ms: int) -> bool:
        outstanding, until = self.clients.get(client, (0, 0))
        return outstanding <= 0 or until <= now_ms

    def client_new_at(self, client: str, now_ms: int) -> int:
        return now_ms if self.client_is_new(client, now_ms) else self.clients[client][1]

    def stale(self, now_ms: int) -> tuple[dict[str, list[str]], list[str]]:
        """What no longer counts: entries per pool, and clients whose latest attempt has stopped counting."""
        entries = {pool: [e for e, u in items.items() if u <= now_ms] for pool, items in self.pools.items()}
        clients = [c for c, (_, until) in self.clients.items() if until <= now_ms]
        return {p: e for p, e in entries.items() if e}, clients


def admitted_at(client: CounterState | None, order: CounterState | None, client_ref: str, now_ms: int) -> int:
    """When an attempt from `client_ref` on this order would be let through (ms), from the counters as read (None:
    the counter was not found full, so it has room now)."""
    client_at = client.room_at(ANY_CLIENT, CLIENT_ATTEMPTS, now_ms) if client else now_ms
    if order is None:
        return client_at
    any_client_at = order.room_at(ANY_CLIENT, ORDER_ATTEMPTS, now_ms)
    new_client_at = max(order.room_at(NEW_CLIENT, NEW_CLIENT_ATTEMPTS, now_ms), order.client_new_at(client_ref, now_ms))
    return max(client_at, min(any_client_at, new_client_at))


def retry_after_seconds(at_ms: int, now_ms: int) -> int:
    """Whole seconds until `at_ms` (rounded up, at least 1): after that many seconds the attempt is let through."""
    return max(1, -(-(at_ms - now_ms) // 1000))


@dataclass
class ClaimResult:
    """What one try to claim room answered: let through, lost to a concurrent writer (try again), or refused with
    the state of each counter that had no room (its key -> state)."""

    admitted: bool
    contended: bool = False
    full: dict[str, CounterState] = field(default_factory=dict)
