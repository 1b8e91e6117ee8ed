"""Merchant-supplied URLs at save time: the one check every settings use case runs (refund and restock webhooks,
the shop's address, subscriptions). The policy is chalicelib/domain/urls.py; the same policy is enforced again at
connect time by chalicelib/adapters/outbound.py."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from chalicelib.domain.errors import ValidationFailed

if TYPE_CHECKING:
    from chalicelib.bootstrap import Container


def merchant_url_error(c: Container, url: str) -> str | None:
    """Why `url` may not be saved (as written, or by what its host resolves to now), or None."""
    from chalicelib.adapters.outbound import save_time_error

    return save_time_error(url, local=c.settings.webhooks_allow_loopback)


def check_merchant_urls(c: Container, urls: Mapping[str, str | None]) -> None:
    """Raise ValidationFailed (422) naming each field whose URL may not be saved; fields given None are skipped."""
    errors = []
    for field, url in urls.items():
        why = merchant_url_error(c, url) if url is not None else None
        if why:
            errors.append({"loc": [field], "msg": why})
    if errors:
        first = errors[0]
        raise ValidationFailed(f"{first['loc'][0]}: {first['msg']}", errors)
