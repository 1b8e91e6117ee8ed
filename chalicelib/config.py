"""One validated settings object, read once from the environment. No defaults for resource names."""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache

from pydantic import BaseModel, Field, ValidationError


class ConfigurationError(RuntimeError):
    pass


class Settings(BaseModel):
    table_name: str
    bucket_name: str
    tracking_queue_url: str
    # Export requests (POST /v1/exports). Optional so that code which never exports needs no queue (unit tests).
    exports_queue_url: str | None = None
    webhooks_queue_url: str | None = None  # the API queues redeliveries asked by hand
    event_bus_name: str
    processing_state_machine_arn: str
    refund_state_machine_arn: str
    # The API's secrets; the workflow functions do not get them (least privilege), so they are optional here.
    operator_key_sha256: str | None = Field(default=None, min_length=64, max_length=64)
    portal_token_secret: str | None = Field(default=None, min_length=16)
    easypost_webhook_secret: str | None = None
    shippo_webhook_secret: str | None = None
    aftership_webhook_secret: str | None = None
    sendcloud_webhook_secret: str | None = None
    secrets_prefix: str = "/boomerang"
    sender_email: str = "returns@boomerang.example"
    public_base_url: str = "http://127.0.0.1:8000"
    label_url_ttl_seconds: int = 900
    portal_token_ttl_seconds: int = 3600
    photo_max_bytes: int = 10 * 1024 * 1024
    feedback_timeout_seconds: int | None = None  # overrides guideline SLA (tests, local mode)
    outbox_dir: str | None = None  # local mode: every email also written here as .eml
    carrier_sandbox: bool = True  # carriers' test endpoints (DHL's sandbox); CARRIER_ENV=production for real labels
    # Refund delivery (CONTRACT.md): at most 6 attempts, the refund failed within 5 minutes of the click.
    refund_max_attempts: int = Field(default=6, ge=1, le=6)
    refund_deadline_seconds: int = Field(default=300, ge=10, le=300)
    refund_retry_base_seconds: int = Field(default=5, ge=1)
    refund_retry_max_wait_seconds: int = Field(default=80, ge=1)
    # A refund whose outcome the shop could not tell is asked about again (every 15 minutes: the ASL's wait).
    refund_reconcile_max_checks: int = Field(default=96, ge=1)
    # Outbound webhooks (subscriptions) may call http://127.0.0.1 and other loopback hosts: tests and local mode only.
    webhooks_allow_loopback: bool = False

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        operator_hash = env.get("OPERATOR_KEY_SHA256")
        if not operator_hash and env.get("BOOMERANG_OPERATOR_KEY"):
            operator_hash = hashlib.sha256(env["BOOMERANG_OPERATOR_KEY"].encode()).hexdigest()
        raw = {
            "table_name": env.get("TABLE_NAME"),
            "bucket_name": env.get("BUCKET_NAME"),
            "tracking_queue_url": env.get("TRACKING_QUEUE_URL"),
            "exports_queue_url": env.get("EXPORTS_QUEUE_URL") or None,
            "webhooks_queue_url": env.get("WEBHOOKS_QUEUE_URL") or None,
            "event_bus_name": env.get("EVENT_BUS_NAME"),
            "processing_state_machine_arn": env.get("PROCESSING_STATE_MACHINE_ARN"),
            "refund_state_machine_arn": env.get("REFUND_STATE_MACHINE_ARN"),
            "operator_key_sha256": operator_hash,
            "portal_token_secret": env.get("PORTAL_TOKEN_SECRET"),
            "easypost_webhook_secret": env.get("EASYPOST_WEBHOOK_SECRET") or None,
            "shippo_webhook_secret": env.get("SHIPPO_WEBHOOK_SECRET") or None,
            "aftership_webhook_secret": env.get("AFTERSHIP_WEBHOOK_SECRET") or None,
            "sendcloud_webhook_secret": env.get("SENDCLOUD_WEBHOOK_SECRET") or None,
            "secrets_prefix": env.get("SECRETS_PREFIX", "/boomerang"),
            "sender_email": env.get("SENDER_EMAIL", "returns@boomerang.example"),
            "public_base_url": env.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000"),
            "label_url_ttl_seconds": env.get("LABEL_URL_TTL_SECONDS", 900),
            "portal_token_ttl_seconds": env.get("PORTAL_TOKEN_TTL_SECONDS", 3600),
            "feedback_timeout_seconds": env.get("FEEDBACK_TIMEOUT_SECONDS") or None,
            "outbox_dir": env.get("OUTBOX_DIR") or None,
            "carrier_sandbox": env.get("CARRIER_ENV", "sandbox") != "production",
            "refund_max_attempts": env.get("REFUND_MAX_ATTEMPTS", 6),
            "refund_deadline_seconds": env.get("REFUND_DEADLINE_SECONDS", 300),
            "refund_retry_base_seconds": env.get("REFUND_RETRY_BASE_SECONDS", 5),
            "refund_retry_max_wait_seconds": env.get("REFUND_RETRY_MAX_WAIT_SECONDS", 80),
            "refund_reconcile_max_checks": env.get("REFUND_RECONCILE_MAX_CHECKS", 96),
            "webhooks_allow_loopback": env.get("WEBHOOKS_ALLOW_LOOPBACK", "") in ("1", "true"),
        }
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            names = ", ".join(str(e["loc"][0]).upper() for e in exc.errors())
            raise ConfigurationError(f"missing or invalid settings: {names}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
