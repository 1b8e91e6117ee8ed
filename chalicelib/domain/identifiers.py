"""Identifiers: time-ordered, prefixed ids (ULID layout) and unguessable tokens."""

from __future__ import annotations

import secrets
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _encode(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        out.append(_CROCKFORD[rem])
    return "".join(reversed(out))


def new_id(prefix: str) -> str:
    """`<prefix>_<26 chars>`: 48 bits of milliseconds then 80 random bits, so ids sort by creation time."""
    millis = int(time.time() * 1000)
    return f"{prefix}_{_encode(millis, 10)}{_encode(secrets.randbits(80), 16)}"


def new_token(nbytes: int = 24) -> str:
    """An unguessable URL-safe token (default 192 random bits)."""
    return secrets.token_urlsafe(nbytes)
