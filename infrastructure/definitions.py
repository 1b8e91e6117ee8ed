"""The resources of Boomerang, described once. The CDK stack and the local stack are both built from this
module, so table keys, queues, rules, functions and state machines cannot drift between them.

Plain Python: no CDK or boto3 import here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STATEMACHINES = ROOT / "statemachines"

#: The log level every deployed function runs at (POWERTOOLS_LOG_LEVEL). The test suite and the local stack run at
#: this level too, so every log line the product writes in AWS is also written, and must not fail, in tests.
LOG_LEVEL = "INFO"


@dataclass(frozen=True)
class Index:
    name: str
    pk: str
    sk: str
    projection: str = "ALL"  # or KEYS_ONLY


@dataclass(frozen=True)
class Table:
    logical_id: str
    pk: str = "pk"
    sk: str = "sk"
    indexes: tuple[Index, ...] = ()
    ttl_attribute: str | None = None
    stream_view_type: str | None = None  # the table's DynamoDB stream (NEW_IMAGE: what OUTBOX's consumer reads)


TABLE = Table(
    logical_id="Table",
    indexes=(
        Index("gsi1", "gsi1pk", "gsi1sk"),
        Index("gsi2", "gsi2pk", "gsi2sk"),
        Index("gsi3", "gsi3pk", "gsi3sk"),
        # the sweeper's: records still owing a final state, by due time (chalicelib/adapters/dynamodb/due.py)
        Index("gsi4", "gsi4pk", "gsi4sk", projection="KEYS_ONLY"),
    ),
    ttl_attribute="expires_at",
    stream_view_type="NEW_IMAGE",
)


@dataclass(frozen=True)
class Outbox:
    """The transactional outbox (docs/adr/0005-transactional-outbox.md): a timeline record (sort key `key_prefix`)
    that announces a domain event carries it in `event_attribute`; the table's stream hands each new one to
    `consumer`, which puts the event on the bus.

    In AWS: a Lambda event source mapping on the stream with `filter_pattern()` as its FilterCriteria, reporting
    partial batch failures; a batch still failing after `retry_attempts` (bisected) is announced on the SQS queue
    `dlq_name`. Local mode and tests read the stream themselves, with the same filter (local/outbox.py).
    """

    consumer: str
    key_prefix: str
    event_attribute: str
    dlq_logical_id: str
    dlq_name: str
    batch_size: int = 100
    retry_attempts: int = 10

    def filter_pattern(self) -> dict[str, Any]:
        """New outbox records only: inserts (timeline records are never changed), timeline sort keys, with an event."""
        return {
            "eventName": ["INSERT"],
            "dynamodb": {
                "Keys": {TABLE.sk: {"S": [{"prefix": self.key_prefix}]}},
                "NewImage": {self.event_attribute: {"S": [{"exists": True}]}},
            },
        }


OUTBOX = Outbox(
    consumer="event_publisher",
    key_prefix="TL#",
    event_attribute="detail_type",
    dlq_logical_id="OutboxDlq",
    dlq_name="boomerang-outbox-dlq",
)


@dataclass(frozen=True)
class Queue:
    logical_id: str
    name: str
    visibility_timeout_seconds: int = 60
    max_receive_count: int = 5  # then the message moves to the DLQ
    consumer: str | None = None  # the function in functions/ that consumes it
    batch_size: int = 10

    @property
    def dlq_name(self) -> str:
        return f"{self.name}-dlq"


TRACKING_QUEUE = Queue("TrackingQueue", "boomerang-tracking", consumer="tracking_consumer")
# Photo uploads (S3 event notifications, see BUCKET_NOTIFICATIONS). Visibility > the consumer's timeout, as Lambda
# requires; small batches, as each message means downloading and decoding an image of up to photo_max_bytes.
PHOTO_QUEUE = Queue(
    "PhotoQueue", "boomerang-photos", visibility_timeout_seconds=180, consumer="photo_processor", batch_size=5
)
# Domain events for customer emails (EVENT_RULES: the bus -> this queue); the notifier sends them.
NOTIFICATION_QUEUE = Queue("NotificationQueue", "boomerang-notifications", consumer="notifier")
# Export requests (POST /v1/exports): one message per export, one export per invocation (it may run for minutes).
# Visibility > the worker's timeout, as Lambda requires; a failed export is retried, then recorded as failed.
EXPORT_QUEUE = Queue(
    "ExportQueue",
    "boomerang-exports",
    visibility_timeout_seconds=960,
    max_receive_count=5,
    consumer="export_worker",
    batch_size=1,
)
# Domain events for the report counters (EVENT_RULES: REPORT_EVENTS); the report aggregator adds them up.
REPORTS_QUEUE = Queue("ReportsQueue", "boomerang-reports", consumer="report_aggregator")
# Domain events for merchants' webhook subscriptions (EVENT_RULES) and the dispatcher's own retries (DelaySeconds).
# An event may go to up to 20 subscriptions of 10 s each: small batches, a long timeout, visibility beyond it.
WEBHOOK_QUEUE = Queue(
    "WebhookQueue", "boomerang-webhooks", visibility_timeout_seconds=660, consumer="webhook_dispatcher", batch_size=2
)
QUEUES = (TRACKING_QUEUE, PHOTO_QUEUE, NOTIFICATION_QUEUE, EXPORT_QUEUE, REPORTS_QUEUE, WEBHOOK_QUEUE)


@dataclass(frozen=True)
class BucketNotification:
    """Objects created in the files bucket under `prefix` are announced on `queue` (S3 -> SQS).

    Not `@app.on_s3_event`: Chalice cannot package it (PLATFORM-NOTES). The queue's policy lets S3 (this bucket
    only) send to it. The first message after the configuration is S3's `s3:TestEvent`; keys arrive URL-encoded.
    """

    prefix: str
    queue: Queue
    events: tuple[str, ...] = ("s3:ObjectCreated:*",)


# Uploads under photos/ only: the thumbnails the consumer writes (thumbs/) must not come back to it.
BUCKET_NOTIFICATIONS = (
    BucketNotification(prefix="photos/", queue=PHOTO_QUEUE),
    BucketNotification(prefix="parcels/", queue=PHOTO_QUEUE),  # photos of unidentified parcels
)

EVENT_BUS_NAME = "boomerang-events"
EVENT_SOURCE = "boomerang"


@dataclass(frozen=True)
class EventRule:
    """Domain events of these detail-types on the bus (source EVENT_SOURCE) are delivered to `queue` (EventBridge ->
    SQS); the queue's policy lets this rule only send. The message body is the EventBridge event."""

    logical_id: str
    name: str
    detail_types: tuple[str, ...]
    queue: Queue

    def pattern(self) -> dict[str, list[str]]:
        return {"source": [EVENT_SOURCE], "detail-type": list(self.detail_types)}


# One email per milestone (chalicelib/domain/notifications.RETURN_KINDS; a unit test keeps the two equal).
CUSTOMER_NOTIFICATIONS = EventRule(
    "CustomerNotificationsRule",
    "boomerang-customer-notifications",
    detail_types=(
        "return.label_created",
        "return.in_transit",
        "return.received",
        "return.inspected",
        "return.refunded",
        "return.cancelled",
        "return.expired",
        "return.rejected",
        "carrier.exception",
    ),
    queue=NOTIFICATION_QUEUE,
)
# What the reports count (chalicelib/domain/reports.EVENT_TYPES; a unit test keeps the two equal).
REPORT_EVENTS = EventRule(
    "ReportEventsRule",
    "boomerang-report-events",
    detail_types=(
        "return.requested",
        "return.delivered",
        "return.received",
        "return.completed",
        "return.rejected",
        "return.refunded",
        "refund.succeeded",
    ),
    queue=REPORTS_QUEUE,
)
# Every event type a merchant can subscribe to (chalicelib/domain/subscriptions.EVENT_TYPES = CONTRACT.md; a unit
# test keeps the two equal); the dispatcher finds the merchant's matching subscriptions.
MERCHANT_WEBHOOKS = EventRule(
    "MerchantWebhooksRule",
    "boomerang-merchant-webhooks",
    detail_types=(
        "return.requested",
        "return.label_created",
        "return.in_transit",
        "return.delivered",
        "return.received",
        "return.inspected",
        "return.awaiting_feedback",
        "return.completed",
        "return.refunded",
        "return.cancelled",
        "return.expired",
        "return.rejected",
        "item.graded",
        "item.restocked",
        "item.disposed",
        "work_order.opened",
        "work_order.completed",
        "refund.succeeded",
        "refund.failed",
        "carrier.exception",
        "parcel.unidentified",
        "customer.erased",
    ),
    queue=WEBHOOK_QUEUE,
)
EVENT_RULES = (CUSTOMER_NOTIFICATIONS, REPORT_EVENTS, MERCHANT_WEBHOOKS)

# -- the files bucket's key layout (services/returns.py, domain/photos.py, domain/exports.py, services/photos.py) --
#: Return labels and customs declarations (CN23): `labels/<merchant_id>/<return_id>[-cn23].pdf`.
LABELS_PREFIX = "labels/"
#: Warehouse photos of returns: `photos/<merchant_id>/<return_id>/<line_item_id | parcel>/<photo_id>.<ext>`.
PHOTOS_PREFIX = "photos/"
#: Photos of unidentified parcels: `parcels/<warehouse_id>/<parcel_id>/<photo_id>.<ext>`.
PARCEL_PHOTOS_PREFIX = "parcels/"
#: Thumbnails the photo processor makes: `thumbs/<photo path without photos/>.jpg`, `thumbs/parcels/...`.
THUMBNAILS_PREFIX = "thumbs/"
#: Photos customers upload with a return request: `customer/<merchant_id>/<order ref>/<line_item_id>/<name>`.
CUSTOMER_PHOTOS_PREFIX = "customer/"
#: Where exports (CSV files for merchants) live in the files bucket; expired by a lifecycle rule.
EXPORT_PREFIX = "exports/"
#: The partition key prefix of export records (the export worker may write those items only).
EXPORT_RECORD_PREFIX = "EXPORT#"

#: Where the documents customers get by email live in the files bucket (the notifier may read these only).
CUSTOMER_DOCUMENT_PREFIXES = (LABELS_PREFIX,)


@dataclass(frozen=True)
class FileLifecycle:
    """A lifecycle rule of the files bucket: objects under `prefix` ("" = every object) expire `expiration_days`
    after they were created (S3 counts from the object's creation, not from the return's end), move to Infrequent
    Access after `infrequent_access_after_days`, and multipart uploads left incomplete are aborted after
    `abort_incomplete_upload_days`. The CDK stack and the local stack both put `FILE_LIFECYCLE` on the bucket."""

    rule_id: str
    prefix: str
    expiration_days: int | None = None
    infrequent_access_after_days: int | None = None
    abort_incomplete_upload_days: int | None = None

    def s3_rule(self) -> dict[str, Any]:
        """The rule as S3's PutBucketLifecycleConfiguration takes it (and GetBucketLifecycleConfiguration gives it)."""
        rule: dict[str, Any] = {"ID": self.rule_id, "Filter": {"Prefix": self.prefix}, "Status": "Enabled"}
        if self.expiration_days is not None:
            rule["Expiration"] = {"Days": self.expiration_days}
        if self.infrequent_access_after_days is not None:
            rule["Transitions"] = [{"Days": self.infrequent_access_after_days, "StorageClass": "STANDARD_IA"}]
        if self.abort_incomplete_upload_days is not None:
            rule["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": self.abort_incomplete_upload_days}
        return rule


#: The default retention of a customer's personal data: 3 years after the return has ended (docs/privacy.md).
RETENTION_DAYS_DEFAULT = 3 * 365
#: How long a label (and its customs declaration) is kept: it is needed until the return is received, then as
#: evidence in a carrier claim or a dispute over the shipment (carriers take claims for months, not years).
LABEL_EXPIRATION_DAYS = 180
#: How long photos (warehouse, unidentified parcels, customers', and their thumbnails) are kept: evidence for refunds
#: and disputes for the retention period after the return has ended. A lifecycle rule counts from the upload, and a
#: return may end up to a year after its photos were taken, so: the retention period plus one year. This is the
#: bucket's upper bound; the retention sweep (per merchant, from the return's end) and erasure delete earlier.
PHOTO_EXPIRATION_DAYS = RETENTION_DAYS_DEFAULT + 365
#: How long an export file (CSV, or a customer's access export) is kept: long enough to download, short because it
#: is a copy of personal data (a new export can be asked for at any time).
EXPORT_EXPIRATION_DAYS = 7
#: After how long labels and photos move to cheaper storage (rarely read after the return is closed).
INFREQUENT_ACCESS_AFTER_DAYS = 90

FILE_LIFECYCLE = (
    FileLifecycle("AbortIncompleteUploads", "", abort_incomplete_upload_days=7),
    FileLifecycle(
        "ExpireLabels",
        LABELS_PREFIX,
        expiration_days=LABEL_EXPIRATION_DAYS,
        infrequent_access_after_days=INFREQUENT_ACCESS_AFTER_DAYS,
    ),
    FileLifecycle(
        "ExpirePhotos",
        PHOTOS_PREFIX,
        expiration_days=PHOTO_EXPIRATION_DAYS,
        infrequent_access_after_days=INFREQUENT_ACCESS_AFTER_DAYS,
    ),
    FileLifecycle("ExpireParcelPhotos", PARCEL_PHOTOS_PREFIX, expiration_days=PHOTO_EXPIRATION_DAYS),
    FileLifecycle("ExpireCustomerPhotos", CUSTOMER_PHOTOS_PREFIX, expiration_days=PHOTO_EXPIRATION_DAYS),
    FileLifecycle("ExpireThumbnails", THUMBNAILS_PREFIX, expiration_days=PHOTO_EXPIRATION_DAYS),
    FileLifecycle("ExpireExports", EXPORT_PREFIX, expiration_days=EXPORT_EXPIRATION_DAYS),
)


def file_lifecycle_configuration() -> dict[str, Any]:
    """FILE_LIFECYCLE as S3's LifecycleConfiguration (local/provision.py puts this on moto's bucket)."""
    return {"Rules": [r.s3_rule() for r in FILE_LIFECYCLE]}


# -- permissions, as data ------------------------------------------------------------------------------------------
# The kinds of resource a grant names. The stack turns each into ARNs; tests/support/iam_audit.py checks every AWS
# call a function makes in the tests against the same grants (IAM evaluation in miniature), so they cannot drift.
class On:
    TABLE = "table"  # scopes: partition key patterns (LeadingKeys); "*" = any item. Reads include the indexes.
    BUCKET = "bucket"  # scopes: object key patterns ("photos/*"); "" = the bucket itself (s3:ListBucket)
    PARAMETERS = "parameters"  # scopes: SSM parameter names under the secrets prefix ("carriers/*")
    QUEUE = "queue"  # scopes: queue names
    EVENT_BUS = "event_bus"  # the one bus
    STATE_MACHINE = "state_machine"  # scopes: state machine names
    MAIL = "mail"  # SES identities of this account and region; the From address is pinned to the sender


TABLE_READ = ("dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query")
# A TransactWriteItems is authorized item by item as these (it has no IAM action of its own), a TransactGetItems as
# GetItem. Nothing in Boomerang scans; PynamoDB 6 never calls DescribeTable.
TABLE_WRITE = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem")
TABLE_DELETE = ("dynamodb:DeleteItem",)


@dataclass(frozen=True)
class Grant:
    """`actions` on `resource` (one of the kinds above), limited to `scopes` (fnmatch patterns)."""

    actions: tuple[str, ...]
    resource: str
    scopes: tuple[str, ...] = ("*",)

    def allows(self, action: str, resource: str, name: str) -> bool:
        return action in self.actions and resource == self.resource and any(fnmatchcase(name, s) for s in self.scopes)


def _keys(*prefixes: str) -> tuple[str, ...]:
    return tuple(f"{p}*" for p in prefixes)


#: What a piece of code may do, by capability. A function's `needs` names capabilities; nothing else is granted.
CAPABILITIES: dict[str, tuple[Grant, ...]] = {
    # DynamoDB: reads; writes (put, update, condition checks; transactions are these item by item); deletes
    "table_read": (Grant(TABLE_READ, On.TABLE),),
    "table_write": (Grant(TABLE_WRITE, On.TABLE),),
    "table_delete": (Grant(TABLE_DELETE, On.TABLE),),
    # the export worker's own records only (partition keys EXPORT#...)
    "export_records": (Grant(("dynamodb:PutItem", "dynamodb:UpdateItem"), On.TABLE, (f"{EXPORT_RECORD_PREFIX}*",)),),
    # S3, by key prefix. The API makes labels (and deletes them when the return could not be saved), signs uploads
    # (photos, parcel photos, customer photos: a presigned POST is authorized as the signer's PutObject) and signs
    # downloads of what it shows; ListBucket so that a HEAD of a missing customer upload is 404, not 403.
    "api_files": (
        Grant(
            ("s3:PutObject",),
            On.BUCKET,
            _keys(LABELS_PREFIX, PHOTOS_PREFIX, PARCEL_PHOTOS_PREFIX, CUSTOMER_PHOTOS_PREFIX),
        ),
        Grant(("s3:DeleteObject",), On.BUCKET, _keys(LABELS_PREFIX)),
        Grant(
            ("s3:GetObject",),
            On.BUCKET,
            _keys(
                LABELS_PREFIX,
                PHOTOS_PREFIX,
                PARCEL_PHOTOS_PREFIX,
                THUMBNAILS_PREFIX,
                CUSTOMER_PHOTOS_PREFIX,
                EXPORT_PREFIX,
            ),
        ),
        Grant(("s3:ListBucket",), On.BUCKET, ("",)),
    ),
    # labels and customs declarations, to attach them to customer emails: read only
    "customer_documents": (Grant(("s3:GetObject",), On.BUCKET, _keys(*CUSTOMER_DOCUMENT_PREFIXES)),),
    # the photo processor: reads uploads (photos/, parcels/), deletes those that are not images, writes thumbs/.
    # ListBucket: so that S3 answers a HEAD of a missing key (an event for an object already deleted) with 404.
    "photo_uploads": (
        Grant(("s3:GetObject", "s3:DeleteObject"), On.BUCKET, _keys(PHOTOS_PREFIX, PARCEL_PHOTOS_PREFIX)),
        Grant(("s3:PutObject",), On.BUCKET, _keys(THUMBNAILS_PREFIX)),
        Grant(("s3:ListBucket",), On.BUCKET, ("",)),
    ),
    # erasure and retention (services/privacy.py): labels, CN23s, customer photos, parcel photos and their thumbnails
    # that show a customer or their address are deleted
    "erased_files": (
        Grant(
            ("s3:DeleteObject",),
            On.BUCKET,
            _keys(LABELS_PREFIX, CUSTOMER_PHOTOS_PREFIX, PHOTOS_PREFIX, THUMBNAILS_PREFIX),
        ),
    ),
    # multipart uploads of export files (Create/UploadPart/Complete are authorized as s3:PutObject), exports/ only
    "export_files": (Grant(("s3:PutObject", "s3:AbortMultipartUpload"), On.BUCKET, _keys(EXPORT_PREFIX)),),
    # SSM parameters (chalicelib/adapters/secrets.py): <prefix>/carriers/<account>/<carrier>/<key> and
    # <prefix>/merchants/<merchant_id>/<name>; read only
    "carrier_credentials": (Grant(("ssm:GetParameter",), On.PARAMETERS, ("carriers/*",)),),
    "shop_credentials": (Grant(("ssm:GetParameter",), On.PARAMETERS, ("merchants/*/shop-*",)),),
    "refund_webhook_secret": (Grant(("ssm:GetParameter",), On.PARAMETERS, ("merchants/*/refund-webhook-secret",)),),
    "subscription_secrets": (Grant(("ssm:GetParameter",), On.PARAMETERS, ("merchants/*/subscription-*",)),),
    # the API: merchants' secrets (settings), carrier credentials the operator sets, a deleted subscription's secret
    "api_secrets": (
        Grant(("ssm:GetParameter", "ssm:PutParameter"), On.PARAMETERS, ("merchants/*", "carriers/*")),
        Grant(("ssm:DeleteParameter",), On.PARAMETERS, ("merchants/*/subscription-*",)),
    ),
    # queues, by what is sent where
    "tracking_queue": (Grant(("sqs:SendMessage",), On.QUEUE, (TRACKING_QUEUE.name,)),),
    "export_queue": (Grant(("sqs:SendMessage",), On.QUEUE, (EXPORT_QUEUE.name,)),),
    "webhook_queue": (Grant(("sqs:SendMessage",), On.QUEUE, (WEBHOOK_QUEUE.name,)),),  # redeliveries asked by hand
    # the dispatcher's retries (DelaySeconds) go back to the queue the message came from, found by its name
    "webhook_retries": (Grant(("sqs:SendMessage", "sqs:GetQueueUrl"), On.QUEUE, (WEBHOOK_QUEUE.name,)),),
    # the one function that puts domain events on the bus (OUTBOX's consumer)
    "events": (Grant(("events:PutEvents",), On.EVENT_BUS),),
    "start_processing": (Grant(("states:StartExecution",), On.STATE_MACHINE, ("boomerang-processing",)),),
    "start_refund": (Grant(("states:StartExecution",), On.STATE_MACHINE, ("boomerang-refund",)),),
    # the merchant's feedback (or a decision already made) answers the processing workflow's task token
    "answer_feedback": (Grant(("states:SendTaskSuccess",), On.STATE_MACHINE, ("boomerang-processing",)),),
    "mail": (Grant(("ses:SendRawEmail",), On.MAIL),),
}


def allows(needs: tuple[str, ...], action: str, resource: str, name: str) -> bool:
    """Whether the capabilities `needs` allow `action` on `name` (an item's partition key, an object key, ...)."""
    return any(g.allows(action, resource, name) for need in needs for g in CAPABILITIES[need])


@dataclass(frozen=True)
class Function:
    """A Lambda in functions/<name>/handler.py (handler function `handler`)."""

    name: str
    timeout_seconds: int = 30
    memory_mb: int = 512
    #: the CAPABILITIES it is granted: what its code path uses, no more (checked against the code in the tests)
    needs: tuple[str, ...] = ()
    schedule: str | None = None  # an EventBridge schedule expression ("rate(1 hour)", "cron(...)"): run on it


READ = ("table_read",)
READ_WRITE = ("table_read", "table_write")
READ_WRITE_DELETE = ("table_read", "table_write", "table_delete")  # a return's status change deletes index items

# One line per function: what it may do. Domain events reach the bus through OUTBOX only: its consumer is the one
# function that may put events on the bus (`events`); everything else writes them into the table, with the change.
FUNCTIONS = (
    Function("classify_items", needs=(*READ_WRITE_DELETE, "mail")),
    Function("await_feedback", needs=(*READ_WRITE_DELETE, "answer_feedback")),
    Function("feedback_timeout", needs=READ_WRITE_DELETE),
    Function("apply_dispositions", needs=(*READ_WRITE_DELETE, "refund_webhook_secret")),
    Function("auto_refund", needs=(*READ_WRITE_DELETE, "start_refund")),
    # one attempt: up to three shop requests (look up, order, refund) of at most 3 + 15 s each
    Function("send_refund", 60, needs=(*READ_WRITE_DELETE, "shop_credentials", "refund_webhook_secret", "mail")),
    # before failing a refund it asks the shop once whether the refund arrived after all
    Function("refund_failed", needs=(*READ_WRITE_DELETE, "shop_credentials", "refund_webhook_secret", "mail")),
    # asks the shop again about a refund whose outcome it could not tell (every 15 minutes, up to a day)
    Function("reconcile_refund", 60, needs=(*READ_WRITE_DELETE, "shop_credentials", "refund_webhook_secret", "mail")),
    Function("tracking_consumer", 50, needs=READ_WRITE_DELETE),
    # decodes images for thumbnails: more memory, which on Lambda is also more CPU
    Function("photo_processor", 60, memory_mb=1024, needs=(*READ_WRITE, "photo_uploads")),
    Function("notifier", needs=(*READ_WRITE_DELETE, "customer_documents", "mail")),
    # adds domain events to the report counters (reads returns, writes counters and markers)
    Function("report_aggregator", needs=READ_WRITE),
    # labels not used within their validity: the return expires, its label is voided with the carrier (credentials)
    Function("expire_labels", 120, needs=(*READ_WRITE_DELETE, "carrier_credentials"), schedule="rate(1 hour)"),
    # DHL offers no tracking webhook: ask it for the returns on their way (rate-limited, at most 100 numbers a run)
    Function(
        "dhl_tracking_poller", 300, needs=(*READ_WRITE_DELETE, "carrier_credentials"), schedule="rate(30 minutes)"
    ),
    # streams a CSV export to S3 (multipart, constant memory), or writes a customer's access export (JSON: reads their
    # orders, returns, timelines, refunds, withdrawals, notification records): reads the table, writes its export
    # record and file only
    Function("export_worker", 900, needs=(*READ, "export_records", "export_files")),
    # merchants' webhooks: up to 20 subscriptions per event, 10 s each (WEBHOOK_QUEUE's visibility is beyond this)
    Function("webhook_dispatcher", 600, needs=(*READ_WRITE, "subscription_secrets", "webhook_retries")),
    # records stuck short of a final state (chalicelib/domain/sweeping.py): queues webhook retries and exports again,
    # starts refund workflows (or fails the refund, asking the shop first and telling the merchant, like
    # refund_failed), sends withdrawal acknowledgements, runs customer erasures and pseudonymises returns past their
    # merchant's retention period (services/privacy.py: deletes the S3 objects that show the customer)
    Function(
        "sweeper",
        300,
        needs=(
            *READ_WRITE_DELETE,
            "shop_credentials",
            "refund_webhook_secret",
            "mail",
            "webhook_queue",
            "export_queue",
            "start_refund",
            "erased_files",
        ),
        schedule="rate(5 minutes)",
    ),
    # OUTBOX's consumer: reads the table's stream (granted with its event source) and puts events on the bus, no more
    Function("event_publisher", 60, memory_mb=256, needs=("events",)),
)

#: The Chalice API function (every route), granted the same way.
API_NEEDS = (
    *READ_WRITE_DELETE,
    "api_files",
    "api_secrets",
    "tracking_queue",
    "export_queue",
    "webhook_queue",
    "start_processing",
    "start_refund",
    "answer_feedback",
    "carrier_credentials",  # labels are made and voided with the carriers' credentials (within api_secrets' paths)
    "mail",  # the withdrawal acknowledgement is sent while the consumer waits (a durable-medium receipt)
)


@dataclass(frozen=True)
class StateMachine:
    logical_id: str
    name: str
    file: str
    functions: dict[str, str]  # ASL placeholder -> function name
    settings: dict[str, int] = field(default_factory=dict)  # ASL placeholder -> default value (seconds, counts)

    def definition(self, arns: dict[str, str], overrides: dict[str, int] | None = None) -> str:
        """The ASL with every ${Placeholder} substituted (function ARNs by function name, settings)."""
        text = (STATEMACHINES / self.file).read_text()
        values = {ph: arns[fn] for ph, fn in self.functions.items()}
        values.update({k: str(v) for k, v in {**self.settings, **(overrides or {})}.items()})
        for key, value in values.items():
            text = text.replace("${" + key + "}", value)
        json.loads(text)  # fail early on a broken substitution
        return text


PROCESSING = StateMachine(
    "ProcessingStateMachine",
    "boomerang-processing",
    "processing.asl.json",
    functions={
        "ClassifyItemsFunctionArn": "classify_items",
        "AwaitFeedbackFunctionArn": "await_feedback",
        "FeedbackTimeoutFunctionArn": "feedback_timeout",
        "ApplyDispositionsFunctionArn": "apply_dispositions",
        "AutoRefundFunctionArn": "auto_refund",
    },
    settings={"TaskRetryIntervalSeconds": 2},
)

REFUND = StateMachine(
    "RefundStateMachine",
    "boomerang-refund",
    "refund.asl.json",
    functions={
        "SendRefundFunctionArn": "send_refund",
        "RefundFailedFunctionArn": "refund_failed",
        "ReconcileRefundFunctionArn": "reconcile_refund",
    },
    # The shop retries are decided by send_refund (at most 6 attempts, Retry-After honoured, failed within
    # 5 minutes of the click: Settings.refund_*); these retry only a Lambda that failed to run or timed out.
    settings={
        "RefundRetryIntervalSeconds": 5,
        "RefundRetryMaxAttempts": 3,
        "RefundRetryBackoffRate": 2,
        "RefundReconcileWaitSeconds": 900,
        "TaskRetryIntervalSeconds": 2,
    },
)

STATE_MACHINES = (PROCESSING, REFUND)
