"""Composition root: builds adapters lazily from settings. Tests swap any of them with `override()`."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar, cast

from chalicelib.adapters.carriers.base import CarrierAdapter
from chalicelib.config import Settings, get_settings

if TYPE_CHECKING:
    from chalicelib.adapters.dynamodb.repository import DynamoStore
    from chalicelib.adapters.event_bus import EventBridgePublisher
    from chalicelib.adapters.files import S3Files
    from chalicelib.adapters.mail import SesMailer
    from chalicelib.adapters.queues import SqsExportQueue, SqsTrackingQueue, SqsWebhookQueue
    from chalicelib.adapters.secrets import SsmSecrets
    from chalicelib.adapters.workflows import StepFunctionsWorkflows


T = TypeVar("T")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Container:
    settings_factory: Callable[[], Settings] = get_settings
    clock: Callable[[], datetime] = utcnow
    overrides: dict[str, Any] = field(default_factory=dict)

    def _get(self, name: str, build: Callable[[], T]) -> T:
        if name not in self.overrides:
            self.overrides[name] = build()
        return cast(T, self.overrides[name])

    @cached_property
    def settings(self) -> Settings:
        return self.settings_factory()

    @property
    def store(self) -> DynamoStore:
        def build() -> DynamoStore:
            from chalicelib.adapters.dynamodb.models import bind
            from chalicelib.adapters.dynamodb.repository import DynamoStore

            bind(
                self.settings.table_name,
                os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION"),
                os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or os.environ.get("AWS_ENDPOINT_URL"),
            )
            return DynamoStore()

        return self._get("store", build)

    @property
    def files(self) -> S3Files:
        from chalicelib.adapters.files import S3Files

        return self._get("files", lambda: S3Files(self.settings.bucket_name))

    @property
    def events(self) -> EventBridgePublisher:
        from chalicelib.adapters.event_bus import EventBridgePublisher

        return self._get("events", lambda: EventBridgePublisher(self.settings.event_bus_name))

    @property
    def workflows(self) -> StepFunctionsWorkflows:
        from chalicelib.adapters.workflows import StepFunctionsWorkflows

        return self._get(
            "workflows",
            lambda: StepFunctionsWorkflows(
                self.settings.processing_state_machine_arn, self.settings.refund_state_machine_arn
            ),
        )

    @property
    def tracking_queue(self) -> SqsTrackingQueue:
        from chalicelib.adapters.queues import SqsTrackingQueue

        return self._get("tracking_queue", lambda: SqsTrackingQueue(self.settings.tracking_queue_url))

    @property
    def webhook_queue(self) -> SqsWebhookQueue:
        from chalicelib.adapters.queues import SqsWebhookQueue

        return self._get("webhook_queue", lambda: SqsWebhookQueue(self.settings.webhooks_queue_url))

    @property
    def export_queue(self) -> SqsExportQueue:
        from chalicelib.adapters.queues import SqsExportQueue

        return self._get("export_queue", lambda: SqsExportQueue(self.settings.exports_queue_url))

    @property
    def secrets(self) -> SsmSecrets:
        from chalicelib.adapters.secrets import SsmSecrets

        return self._get("secrets", lambda: SsmSecrets(self.settings.secrets_prefix))

    @property
    def mailer(self) -> SesMailer:
        from chalicelib.adapters.mail import SesMailer

        return self._get("mailer", lambda: SesMailer(self.settings.sender_email, self.settings.outbox_dir))

    @property
    def http(self) -> Any:
        """The session for every merchant-supplied URL (refund and restock webhooks, subscriptions, the merchant's
        shop): chalicelib/adapters/outbound.MerchantSession checks each address it connects to, follows no
        redirect, caps bodies and keeps no cookies. Local mode (WEBHOOKS_ALLOW_LOOPBACK) also reaches
        http://127.0.0.1:<port>."""

        def build() -> Any:
            from chalicelib.adapters.outbound import MerchantSession

            return MerchantSession(local=self.settings.webhooks_allow_loopback)

        return self._get("http", build)

    @property
    def vendor_http(self) -> Any:
        """The session for fixed vendor hosts (carriers): keeps no cookies either."""

        def build() -> Any:
            from chalicelib.adapters.outbound import vendor_session

            return vendor_session()

        return self._get("vendor_http", build)

    @property
    def carriers(self) -> dict[str, CarrierAdapter]:
        """Every carrier adapter by name (tests override single ones through `override("carriers", ...)`)."""

        def build() -> dict[str, CarrierAdapter]:
            from chalicelib.adapters.carriers.registry import build_carriers

            return build_carriers(self.secrets, self.vendor_http, sandbox_env=self.settings.carrier_sandbox)

        carriers: dict[str, CarrierAdapter] = self._get("carriers", build)
        return carriers

    def carrier(self, name: str) -> CarrierAdapter:
        return self.carriers[name]

    def carrier_methods(self) -> dict[str, frozenset[str]]:
        """Carrier name -> the return method types it offers (for routing)."""
        return {name: adapter.methods for name, adapter in self.carriers.items()}

    def shop(self, merchant_id: str, shop: dict[str, Any] | None) -> Any:
        """The merchant's shop adapter (Shopify or WooCommerce) with its secrets from SSM; None when no shop is
        connected or a secret is missing. Tests replace it with `override("shop", factory)`."""
        factory = self.overrides.get("shop")
        if factory is not None:
            return factory(merchant_id, shop)
        from chalicelib.adapters.shops.shopify import ShopifyRefunds
        from chalicelib.adapters.shops.woocommerce import WooCommerceRefunds

        platform = (shop or {}).get("platform")
        if platform == "shopify":
            token = self.secrets.get(merchant_id, "shop-access-token")
            key = self.secrets.get(merchant_id, "shop-gift-card-key")
            if not token or not shop:
                return None
            return ShopifyRefunds(shop["shop_domain"], token, self.http, gift_card_code_key=key)
        if platform == "woocommerce":
            ck = self.secrets.get(merchant_id, "shop-consumer-key")
            cs = self.secrets.get(merchant_id, "shop-consumer-secret")
            if not ck or not cs or not shop:
                return None
            return WooCommerceRefunds(shop["base_url"], ck, cs, self.http, local=self.settings.webhooks_allow_loopback)
        return None

    def now(self) -> datetime:
        return self.clock()


_container: Container | None = None


def container() -> Container:
    global _container
    if _container is None:
        _container = Container()
    return _container


def reset(new: Container | None = None) -> Container:
    """Forget every built adapter (tests; a new environment)."""
    global _container
    from chalicelib.adapters import aws_clients

    aws_clients.reset()
    get_settings.cache_clear()
    _container = new or Container()
    return _container


@contextmanager
def override(**adapters: Any) -> Iterator[Container]:
    c = container()
    saved = {k: c.overrides.get(k) for k in adapters}
    c.overrides.update(adapters)
    try:
        yield c
    finally:
        for k, v in saved.items():
            if v is None:
                c.overrides.pop(k, None)
            else:
                c.overrides[k] = v
