"""Portal attempt counting rules (domain/attempts.py): client keys, when an attempt is let through again."""

from __future__ import annotations

import pytest

from chalicelib.domain.attempts import (
    ANY_CLIENT,
    NEW_CLIENT,
    WINDOW_MS,
    CounterState,
    admitted_at,
    client_hash,
    client_key,
    retry_after_seconds,
)


@pytest.mark.parametrize(
    ("source", "key"),
    [
        ("203.0.113.9", "v4:203.0.113.9"),
        ("::ffff:203.0.113.9", "v4:203.0.113.9"),
        ("2002:cb00:7109::1", "v4:203.0.113.9"),  # 6to4
        ("2001:db8:aa:1:1234:5678:9abc:def0", "v6:2001:db8:aa:1::/64"),
        ("2001:DB8:AA:1::1%eth0", "v6:2001:db8:aa:1::/64"),
        ("unknown", "raw:unknown"),
    ],
)
def test_client_key(source: str, key: str) -> None:
    assert client_key(source) == key


def test_hosts_of_one_64_share_a_client_and_other_64s_do_not() -> None:
    assert client_hash("2001:db8:aa:1::1") == client_hash("2001:db8:aa:1:ffff:ffff:ffff:ffff")
    assert client_hash("2001:db8:aa:1::1") != client_hash("2001:db8:aa:2::1")


def state(pool: str, untils: list[int], clients: dict[str, tuple[int, int]] | None = None) -> CounterState:
    return CounterState(pools={pool: {f"e{i}": u for i, u in enumerate(untils)}}, clients=clients or {})


def test_a_full_counter_has_room_when_enough_of_its_entries_stop_counting() -> None:
    now = 10_000_000
    # ten attempts: five until now+300 s, five until now+900 s
    order = state(ANY_CLIENT, [now + 300_000] * 5 + [now + WINDOW_MS] * 5 + [now - 1])  # and one that stopped
    assert not order.has_room(ANY_CLIENT, 10, now)
    assert order.room_at(ANY_CLIENT, 10, now) == now + 300_000
    order.clients = {"me": (1, now + WINDOW_MS)}
    order.pools[NEW_CLIENT] = {}
    # a client that failed on the order waits for the order's room; a new client gets in at once
    assert admitted_at(None, order, "me", now) == now + 300_000
    assert admitted_at(None, order, "someone-else", now) == now
    # the client's own counter full until later: that decides
    client = state(ANY_CLIENT, [now + 600_000] * 50)
    assert admitted_at(client, order, "someone-else", now) == now + 600_000
    assert retry_after_seconds(now + 300_000, now) == 300
    assert retry_after_seconds(now + 300_001, now) == 301
    assert retry_after_seconds(now, now) == 1


def test_stale_lists_entries_and_clients_that_stopped_counting() -> None:
    now = 5_000
    s = CounterState(
        pools={ANY_CLIENT: {"a": 4_000, "b": 6_000}, NEW_CLIENT: {"c": 5_000}},
        clients={"old": (2, 5_000), "new": (1, 9_000)},
    )
    assert s.stale(now) == ({ANY_CLIENT: ["a"], NEW_CLIENT: ["c"]}, ["old"])
    assert s.client_is_new("old", now) and not s.client_is_new("new", now)
    assert CounterState(clients={"done": (0, 9_000)}).client_is_new("done", now)  # its attempts all succeeded
