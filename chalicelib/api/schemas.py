"""Request and response models of the HTTP API (pydantic). The OpenAPI document is generated from them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    RootModel,
    StringConstraints,
    model_validator,
)

from chalicelib.domain.emails import same_email
from chalicelib.domain.text import LINE_MESSAGE, TEXT_MESSAGE, has_control


def _line(value: Any) -> Any:
    """Identifiers and names: no control characters anywhere (checked before any whitespace is stripped)."""
    if isinstance(value, str) and has_control(value):
        raise ValueError(LINE_MESSAGE)
    return value


def _text(value: Any) -> Any:
    """Free text (comments, notes): line feeds allowed, no other control characters."""
    if isinstance(value, str) and has_control(value, allow_line_feed=True):
        raise ValueError(TEXT_MESSAGE)
    return value


#: A one-line value (identifier, name, code, address line): no control characters (CR, LF, NUL, U+2028 ...), which
#: would break an email header, a CSV row or a log line. Every string field that is not free text is built on it.
Line = Annotated[str, BeforeValidator(_line)]
#: Free text that may run over several lines (`\n`), with no other control characters.
Text = Annotated[str, BeforeValidator(_text)]
Str = Annotated[Line, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]  # a name
Code = Annotated[Line, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]  # an identifier
Country = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
DecimalString = Annotated[str, StringConstraints(pattern=r"^\d{1,9}(\.\d{1,4})?$")]
Percent = Annotated[str, StringConstraints(pattern=r"^(100(\.0{1,2})?|\d{1,2}(\.\d{1,2})?)$")]  # "0".."100"
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Email = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{2,62}$")]
Locale = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[A-Z]{2})?$")]
Grade = Literal["A", "B", "C"]
Disposition = Literal["restock", "refurbish", "dispose", "donate", "recycle", "return_to_customer"]


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must include a timezone, e.g. 2026-11-26T10:00:00Z")
    if not 2000 <= value.year <= 2100:  # before the conversion, which overflows at the year 9999's edge
        raise ValueError("must be between the years 2000 and 2100")
    value = value.astimezone(UTC)
    if not 2000 <= value.year <= 2100:
        raise ValueError("must be between the years 2000 and 2100")
    return value


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


class In(BaseModel):
    # defer_build: validators are built on first use, not at import (cold start of the API Lambda)
    model_config = ConfigDict(extra="forbid", defer_build=True)


class Out(BaseModel):
    model_config = ConfigDict(defer_build=True)


class AddressIn(In):
    name: Str
    street: Str
    house_number: Annotated[Line, StringConstraints(strip_whitespace=True, max_length=20)] = ""
    postal_code: Annotated[Line, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)]
    city: Str
    country: Country


# ----- operator -------------------------------------------------------------------------------------------------
class WarehouseIn(In):
    name: Str
    address: AddressIn


class MerchantIn(In):
    name: Str
    slug: Slug
    warehouse_id: Code
    contact_email: Email | None = None
    locale: Locale | None = None


# ----- merchant settings ----------------------------------------------------------------------------------------
class ReasonIn(In):
    code: Code
    label: Str
    children: list[ReasonIn] = Field(default_factory=list, max_length=50)
    comment_required: bool = False
    photo_required: bool = False
    excludes_item: bool = False  # choosing it means the item cannot be returned; `message` tells the customer why
    message: Annotated[Text, StringConstraints(max_length=500)] | None = None


def _unique_reason_codes(reasons: list[ReasonIn]) -> list[ReasonIn]:
    seen: set[str] = set()

    def walk(items: list[ReasonIn], depth: int) -> None:
        if depth > 3:
            raise ValueError("reasons nest at most three levels deep")
        for r in items:
            if r.code in seen:
                raise ValueError(f"reason code '{r.code}' is used twice")
            seen.add(r.code)
            walk(r.children, depth + 1)

    walk(reasons, 1)
    return reasons


class CustomsDefaultsIn(In):
    hs_code: Annotated[str, StringConstraints(pattern=r"^\d{6,11}$")] | None = None
    country_of_origin: Country | None = None
    weight_grams: int | None = Field(default=None, ge=1, le=1_000_000)


class WindowOverrideIn(In):
    tag: Code
    days: int = Field(ge=0, le=3650)


class FeeIn(In):
    method_type: Literal["label", "qr", "drop_off", "pickup", "preprinted"]
    countries: list[Country] | None = None
    amount: DecimalString
    deduct_from_refund: bool = False


class PolicyIn(In):
    return_window_days: int = Field(ge=0, le=3650)
    non_returnable_tags: list[Code] = Field(default_factory=list, max_length=100)
    reasons: Annotated[list[ReasonIn], AfterValidator(_unique_reason_codes)] = Field(min_length=1, max_length=100)
    non_returnable_skus: list[Code] = Field(default_factory=list, max_length=1000)
    window_overrides: list[WindowOverrideIn] = Field(default_factory=list, max_length=100)
    label_validity_days: int | None = Field(default=None, ge=1, le=365)
    fees: list[FeeIn] = Field(default_factory=list, max_length=100)
    customs_defaults: CustomsDefaultsIn | None = None
    # after a return ended, its customer's personal data is pseudonymised (30 days .. 10 years; default 3 years)
    retention_days: int | None = Field(default=None, ge=30, le=3650)


class RuleIn(In):
    name: Str
    when: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    grade: Grade
    disposition: Disposition
    clarify: bool = False
    steps: list[Str] = Field(default_factory=list, max_length=20)


class GradeDispositionIn(In):
    grade: Grade
    disposition: Disposition


class GuidelinesIn(In):
    rules: list[RuleIn] = Field(max_length=200)
    default: GradeDispositionIn
    feedback_sla_hours: int | None = Field(default=None, ge=1, le=24 * 60)


class RefundSettingsIn(In):
    target: Literal["manual", "webhook", "shop"]
    auto_refund: bool
    auto_refund_grades: list[Grade] | None = None
    webhook_url: Annotated[str, StringConstraints(pattern=r"^https?://\S+$", max_length=2000)] | None = None
    # Restock syncs go here, not to the refund webhook (which carries refunds only); both checked against the
    # outbound URL policy (chalicelib/domain/urls.py) by the use case.
    restock_webhook_url: Annotated[str, StringConstraints(pattern=r"^https?://\S+$", max_length=2000)] | None = None
    webhook_secret: Annotated[str, StringConstraints(min_length=16, max_length=256)] | None = None
    # How much is refunded (issue 6): per-grade deductions in % of the unit price, fees, original shipping.
    grade_deductions: dict[Grade, Percent] | None = None
    restocking_fee_percent: Percent | None = None
    return_shipping_fee: DecimalString | None = None
    refund_original_shipping_when_complete: bool | None = None
    # Store credit (a Shopify gift card) as the customer's alternative, with a bonus to keep the revenue.
    store_credit: bool | None = None
    store_credit_bonus_percent: Percent | None = None


#: A shop's address: https outside local mode, where `make run` also takes exactly http://127.0.0.1:<port> (the
#: outbound URL policy, domain/urls.py, decides in services/tenants.put_shop; the pattern only refuses non-URLs).
ShopUrl = Annotated[str, StringConstraints(pattern=r"^https?://[^\s/]+(/\S*)?$", max_length=500)]
Secret = Annotated[str, StringConstraints(min_length=8, max_length=500)]


class ShopifyShopIn(In):
    platform: Literal["shopify"]
    shop_domain: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$", max_length=255)]
    access_token: Secret
    webhook_secret: Secret
    location_id: Annotated[str, StringConstraints(pattern=r"^\d{1,20}$")] | None = None


class WooCommerceShopIn(In):
    platform: Literal["woocommerce"]
    base_url: ShopUrl
    consumer_key: Secret
    consumer_secret: Secret
    webhook_secret: Secret


class ShopIn(RootModel[Annotated[ShopifyShopIn | WooCommerceShopIn, Field(discriminator="platform")]]):
    model_config = ConfigDict(defer_build=True)


# ----- orders ---------------------------------------------------------------------------------------------------
class DeliveryIn(In):
    quantity: int = Field(ge=1, le=10000)
    delivered_at: UtcDatetime


class OrderItemIn(In):
    line_item_id: Code
    sku: Code
    name: Str
    quantity: int = Field(ge=1, le=10000)
    unit_price: DecimalString
    tags: list[Code] = Field(default_factory=list, max_length=50)
    delivered_at: UtcDatetime | None = None
    hs_code: Annotated[str, StringConstraints(pattern=r"^\d{6,11}$")] | None = None
    country_of_origin: Country | None = None
    weight_grams: int | None = Field(default=None, ge=1, le=1_000_000)
    external_id: Code | None = None
    deliveries: list[DeliveryIn] = Field(default_factory=list, max_length=100)  # split shipments of this line
    paid_total: DecimalString | None = None  # paid for the whole line after discounts (default unit_price x quantity)
    category: Code | None = None  # the product category; the reasons report can group by it


class OrderIn(In):
    order_number: Code
    email: Email
    currency: Currency
    ordered_at: UtcDatetime
    delivered_at: UtcDatetime | None = None
    locale: Locale | None = None
    shipping_address: AddressIn
    items: list[OrderItemIn] = Field(min_length=1, max_length=100)
    return_tracking_numbers: list[Code] = Field(default_factory=list, max_length=20)
    external_id: Code | None = None  # the shop's order id, for refunds into the shop
    shipping_paid: DecimalString | None = None  # paid for the original shipping (refunded when all comes back)


# ----- returns --------------------------------------------------------------------------------------------------
class ReturnLineIn(In):
    line_item_id: Code
    quantity: int = Field(ge=1, le=10000)
    reason: Code
    comment: Annotated[Text, StringConstraints(max_length=2000)] | None = None
    photos: list[Annotated[Line, StringConstraints(max_length=500)]] = Field(default_factory=list, max_length=10)


class PortalReturnIn(In):
    items: list[ReturnLineIn] = Field(min_length=1, max_length=100)
    method_id: Code | None = None
    refund_method: Literal["original", "store_credit"] = "original"  # store credit: a gift card, plus any bonus


class PortalSessionIn(In):
    order_number: Code
    email: Email


class MerchantReturnIn(In):
    """Customer service creates a return on a customer's behalf."""

    order_number: Code
    items: list[ReturnLineIn] = Field(min_length=1, max_length=100)
    method_id: Code | None = None
    notify_customer: bool = True  # email the customer the label and each milestone
    refund_method: Literal["original", "store_credit"] = "original"


class CancelIn(In):
    reason: Annotated[Text, StringConstraints(max_length=500)] | None = None


class PortalPhotoIn(In):
    content_type: Annotated[Line, StringConstraints(max_length=100)]
    line_item_id: Code


class WithdrawalItemIn(In):
    line_item_id: Code
    quantity: int | None = Field(default=None, ge=1, le=10000)


class WithdrawalIn(In):
    order_number: Code
    email: Email
    name: Str
    items: list[WithdrawalItemIn] | None = Field(default=None, max_length=100)
    confirm: Literal[True] = Field(description="the explicit confirmation of the withdrawal: must be true")


class RouteMethodIn(In):
    type: Literal["label", "qr", "drop_off", "pickup", "preprinted"]
    fee: DecimalString | None = None


class RouteIn(In):
    countries: list[Annotated[str, StringConstraints(pattern=r"^([A-Z]{2}|\*)$")]] = Field(min_length=1, max_length=250)
    carriers: list[Code] = Field(min_length=1, max_length=10)
    methods: list[RouteMethodIn] = Field(min_length=1, max_length=10)


class CarrierCredentialsIn(In):
    credentials: dict[
        Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,40}$")],
        Annotated[str, StringConstraints(min_length=1, max_length=4000)],
    ] = Field(min_length=1, max_length=20)


class CarrierCredentialsOut(Out):
    carrier: str
    keys: list[str]


class RoutingIn(In):
    routes: list[RouteIn] = Field(max_length=100)
    consolidation_addresses: dict[Country, AddressIn] = Field(default_factory=dict, max_length=50)


class FeedbackItemIn(In):
    line_item_id: Code
    grade: Grade | None = None
    disposition: Disposition | None = None


class FeedbackIn(In):
    decision: Literal["approve", "reject"]
    items: list[FeedbackItemIn] = Field(default_factory=list, max_length=100)
    comment: Annotated[Text, StringConstraints(max_length=4000)] | None = None


class RefundIn(In):
    amount: DecimalString | None = None
    reason: Annotated[Text, StringConstraints(max_length=500)] | None = None


class ReturnsQuery(In):
    status: (
        Literal[
            "requested",
            "label_created",
            "in_transit",
            "delivered",
            "received",
            "inspected",
            "awaiting_feedback",
            "completed",
            "refunded",
            "cancelled",
            "expired",
            "rejected",
        ]
        | None
    ) = None
    updated_since: UtcDatetime | None = None
    cursor: Annotated[str, StringConstraints(max_length=2000)] | None = None
    limit: int = Field(default=50, ge=1, le=100)
    # Filters served by the list index (domain/return_index.py); created_from/created_to bound the creation time.
    carrier: Code | None = None
    grade: Grade | None = None
    reason: Code | None = None
    sku: Code | None = None
    order_number: Code | None = None
    email: Email | None = None
    customer_email: Email | None = None  # the contract's name for the same filter as `email`
    attention: Literal["awaiting_feedback", "refund_failed", "carrier_exception"] | None = None
    created_from: UtcDatetime | None = None
    created_to: UtcDatetime | None = None

    @model_validator(mode="after")
    def _one_customer_email(self) -> ReturnsQuery:
        if self.customer_email is not None:
            if self.email is not None and not same_email(self.email, self.customer_email):
                raise ValueError("give customer_email or email, not two different addresses")
            self.email = self.customer_email
        return self


# ----- warehouse ------------------------------------------------------------------------------------------------
class SenderIn(In):
    name: Annotated[Line, StringConstraints(max_length=200)] | None = None
    address: Annotated[Text, StringConstraints(max_length=500)] | None = None


class ScanIn(In):
    barcode: Annotated[Line, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    notes: Annotated[Text, StringConstraints(max_length=2000)] | None = None  # kept if nothing matches
    sender: SenderIn | None = None  # as printed on the parcel, kept if nothing matches


class PhotoIn(In):
    content_type: Annotated[Line, StringConstraints(max_length=100)]
    line_item_id: Code | None = None


# the check on the whole union (not its str member) keeps the error location at the answer
CheckValue = Annotated[bool | int | float | Annotated[str, StringConstraints(max_length=2000)], BeforeValidator(_text)]


class InspectionLineIn(In):
    line_item_id: Code
    received_quantity: int = Field(ge=0, le=10000)
    checks: dict[Code, CheckValue] = Field(default_factory=dict, max_length=100)
    notes: Annotated[Text, StringConstraints(max_length=4000)] | None = None
    photos: list[Annotated[Line, StringConstraints(max_length=500)]] = Field(default_factory=list, max_length=50)
    received_sku: Code | None = None  # set when the parcel held another article than this line's


class ExtraItemIn(In):
    sku: Code
    quantity: int = Field(ge=1, le=10000)


class InspectionIn(In):
    items: list[InspectionLineIn] = Field(min_length=1, max_length=100)
    extra_items: list[ExtraItemIn] = Field(default_factory=list, max_length=100)


AnswerValue = Annotated[bool | Annotated[str, StringConstraints(max_length=200)], BeforeValidator(_line)]


class QuestionIn(In):
    key: Code
    label: Str
    type: Literal["bool", "enum", "text"]
    options: list[Annotated[Line, StringConstraints(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=50
    )
    photo_required_when: list[AnswerValue] = Field(default_factory=list, max_length=50)
    required: bool = True


class ChecklistIn(In):
    name: Str
    applies_to: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    questions: list[QuestionIn] = Field(min_length=1, max_length=100)


class ChecklistsIn(In):
    checklists: list[ChecklistIn] = Field(max_length=50)


class WorkOrdersQuery(In):
    status: Literal["open", "completed"] = "open"


class WorkOrderCompleteIn(In):
    minutes: int = Field(ge=0, le=24 * 60)
    notes: Annotated[Text, StringConstraints(max_length=4000)] | None = None


class ParcelsQuery(In):
    status: Literal["open", "matched"] = "open"


class ParcelMatchIn(In):
    return_id: Code


class ParcelAssignIn(In):
    merchant_id: Code  # whose the warehouse thinks the parcel is


class GuidelineTestItemIn(In):
    sku: Code = "SKU"
    tags: list[Code] = Field(default_factory=list, max_length=50)
    unit_price: float = Field(default=0.0, ge=0, le=1e9)
    quantity: int = Field(default=1, ge=1, le=10000)
    reason: Code = "other"


class GuidelineTestOrderIn(In):
    country: Country = "DE"
    currency: Currency = "EUR"


class GuidelineTestIn(In):
    item: GuidelineTestItemIn
    checks: dict[Code, CheckValue] = Field(default_factory=dict, max_length=100)
    order: GuidelineTestOrderIn = Field(default_factory=GuidelineTestOrderIn)
    guideline: GuidelinesIn | None = None  # try rules before saving them; default: the saved guideline


class DateRangeQuery(In):
    model_config = ConfigDict(extra="forbid", defer_build=True, populate_by_name=True)

    from_: date = Field(alias="from")
    to: date


class BillingQuery(In):
    merchant_id: Code
    month: Annotated[str, StringConstraints(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]


# ----- responses (documentation) ------------------------------------------------------------------------------
class Money(Out):
    amount: str
    currency: str


class Problem(Out):
    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None


class ReturnItemOut(Out):
    line_item_id: str
    sku: str
    quantity: int
    reason: str
    comment: str | None
    received_quantity: int | None
    grade: str | None
    disposition: str | None
    status: str
    photos: list[dict[str, Any]]
    category: str | None = None  # merchant and warehouse views


class ReturnOut(Out):
    id: str
    merchant_id: str
    order_number: str
    status: str
    created_at: str
    updated_at: str
    carrier: str | None
    tracking_number: str | None
    tracking_token: str
    label: dict[str, Any] | None
    label_expires_at: str | None = None
    method: dict[str, Any] | None = None
    customs: dict[str, Any] | None = None
    withdrawal_id: str | None = None
    items: list[ReturnItemOut]
    discrepancies: list[dict[str, Any]]
    timeline: list[dict[str, Any]]
    refund: dict[str, Any] | None
    refund_method: Literal["original", "store_credit"] = "original"
    refunded: Money | None = None  # succeeded refunds so far


class ReturnList(Out):
    items: list[ReturnOut]
    next_cursor: str | None


class TrackOut(Out):
    status: str
    milestones: list[dict[str, str]]
    next_step: str | None = None


class PortalOrderOut(Out):
    order_number: str
    items: list[dict[str, Any]]
    reasons: list[dict[str, str]]
    refund_options: list[dict[str, str]]


class RefundAccepted(Out):
    refund_id: str
    status: str


class TokenOut(Out):
    token: str


class CreatedWithKey(Out):
    id: str
    api_key: str
    key_id: str | None = None  # the key's id, to revoke it later (DELETE /v1/admin/merchants/{id}/keys/{key_id})


class KeyOut(Out):
    id: str
    api_key: str


class KeysQuery(In):
    cursor: Annotated[str, StringConstraints(max_length=2000)] | None = None
    limit: int = Field(default=50, ge=1, le=100)


class KeyInfoOut(Out):
    """An API key as listed: never the key or its hash."""

    id: str
    created_at: str  # ISO 8601 UTC
    last_used_at: str | None  # refreshed at most once an hour


class KeyList(Out):
    items: list[KeyInfoOut]
    next_cursor: str | None


class UploadOut(Out):
    key: str
    upload: dict[str, Any]


class MethodOut(Out):
    id: str
    carrier: str
    type: str
    fee: Money
    customs_required: bool
    deduct_from_refund: bool
    domestic: bool


class MethodList(Out):
    items: list[MethodOut]


class WithdrawalOut(Out):
    id: str
    order_number: str
    received_at: str
    acknowledgement: str


class Health(Out):
    status: str


# ----- order intake (shop webhooks, CSV imports) ----------------------------------------------------------------
def validate_order(data: dict[str, Any]) -> tuple[dict[str, Any] | None, list[tuple[tuple[str | int, ...], str]]]:
    """Check an order from a shop or a CSV file by the rules of `POST /v1/orders` (OrderIn): (the cleaned dict as
    `model_dump` gives it, []) or (None, [(loc, message), ...]). The intake service maps the locations back to the
    shop's fields or the CSV's rows and columns."""
    from pydantic import ValidationError

    try:
        return OrderIn.model_validate(data).model_dump(), []
    except ValidationError as exc:
        return None, [(tuple(e["loc"]), e["msg"]) for e in exc.errors(include_url=False)]
    except OverflowError:  # a time whose offset moves it out of the calendar (`_utc` converts before it checks)
        return None, [(("ordered_at",), "a time out of range")]


class ShopWebhookOut(Out):
    """`result`: created, updated, stale, duplicate, ignored, recorded, delivered, unchanged, unknown_order, ping."""

    status: str  # always "ok"
    result: str


class ImportAccepted(Out):
    id: str
    status: str


class ImportErrorOut(Out):
    row: int  # the header is row 1
    field: str
    message: str


class ImportReportOut(Out):
    id: str
    status: str  # completed (imports run inside the request)
    created_at: str
    rows: int  # data rows read
    orders: int  # distinct order numbers
    imported: int  # orders created or updated
    created: int
    updated: int
    failed: int  # orders not imported
    errors: list[ImportErrorOut]
    errors_truncated: bool
    ignored_columns: list[str]


class AttentionItem(Out):
    kind: Literal["awaiting_feedback", "refund_failed", "carrier_exception", "unidentified_parcel"]
    return_id: str | None = None  # the return's kinds
    order_number: str | None = None
    status: str | None = None
    parcel_id: str | None = None  # unidentified_parcel: a parcel the warehouse thinks is the merchant's
    since: str
    sla_left_hours: float | None = None  # awaiting feedback: hours before the default applies (negative: overdue)
    detail: str | None = None


class AttentionOut(Out):
    items: list[AttentionItem]
    counts: dict[str, int]


# ----- exports --------------------------------------------------------------------------------------------------
_DATE_ONLY = r"^\d{4}-\d{2}-\d{2}$"


def _export_bound_in(value: Any) -> Any:
    """A date alone (`2026-11-01`) stays a date (the whole day); anything else is read as a datetime."""
    import re

    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a date (2026-11-01) or a datetime with a timezone (2026-11-01T10:00:00Z)")
    text = value.strip()
    try:
        if re.fullmatch(_DATE_ONLY, text):
            return date.fromisoformat(text)
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("must be a date (2026-11-01) or a datetime with a timezone (2026-11-01T10:00:00Z)") from None


def _export_bound(value: datetime | date) -> datetime | date:
    if isinstance(value, datetime):
        return _utc(value)
    if not 2000 <= value.year <= 2100:
        raise ValueError("must be between the years 2000 and 2100")
    return value


ExportBound = Annotated[datetime | date, BeforeValidator(_export_bound_in), AfterValidator(_export_bound)]


class ExportIn(In):
    """A CSV export of the returns created from `from` to `to` (UTC datetimes, or dates: whole days in UTC)."""

    model_config = ConfigDict(extra="forbid", defer_build=True, populate_by_name=True)

    kind: Literal["returns", "items"]
    format: Literal["csv"] = "csv"
    from_: ExportBound = Field(alias="from")
    to: ExportBound


class CustomerExportIn(In):
    """A customer's access export (GDPR Art. 15): everything the merchant holds about the customer with this email,
    as one JSON document."""

    email: Email


class AdminCustomerExportIn(In):
    """The operator's customer access export: the customer with this email at this merchant."""

    email: Email
    merchant_id: Code


class ExportAccepted(Out):
    id: str
    status: str


class ExportOut(Out):
    id: str
    kind: Literal["returns", "items", "customer"]
    format: str  # csv; json for a customer's access export
    status: Literal["pending", "ready", "failed"]
    from_: str | None = Field(alias="from")  # null for a customer's access export
    to: str | None
    created_at: str
    rows: int | None = None
    size: int | None = None  # bytes
    completed_at: str | None = None
    url: str | None = None  # presigned GET, valid until expires_at; a new one on every GET
    expires_at: str | None = None
    error: str | None = None


# ----- reports (chalicelib/services/reports.py) ---------------------------------------------------------------
class ReportQuery(In):
    """Inclusive UTC days, at most 366 of them."""

    model_config = ConfigDict(extra="forbid", defer_build=True, populate_by_name=True)

    from_: date = Field(alias="from")
    to: date


class ReportSummaryOut(Out):
    from_: str = Field(alias="from")
    to: str
    returns: int
    items: int  # units requested for return
    sold: int  # units ordered in the range (order intake)
    return_rate: float | None  # items / sold; null when nothing was sold
    refunded: Money | None  # the currency with the largest refunded amount; null when nothing was refunded
    refunded_by_currency: list[Money]


class ReasonCountOut(Out):
    reason: str
    count: int  # units


class ReportReasonsQuery(ReportQuery):
    group_by: Literal["day", "week", "month", "sku", "category", "reason_category"] | None = None


class ReasonGroupOut(Out):
    key: str  # the period (2026-11-26, 2026-W48, 2026-11), SKU, product category or top-level reason code
    count: int
    items: list[ReasonCountOut]


class ReportReasonsOut(Out):
    from_: str = Field(alias="from")
    to: str
    items: list[ReasonCountOut]
    group_by: str | None = None
    groups: list[ReasonGroupOut] | None = None  # with group_by


class SkuReportRow(Out):
    sku: str
    returned: int
    sold: int
    return_rate: float | None


class ReportSkusOut(Out):
    items: list[SkuReportRow]


class HistogramBucketOut(Out):
    le_hours: float | None  # upper bound, inclusive; null: the open last bucket
    count: int


class HistogramOut(Out):
    count: int
    median_hours: float | None  # upper bound of the bucket where the cumulative count reaches 50%
    p90_hours: float | None  # ... 90%; null when in the open bucket or nothing counted
    buckets: list[HistogramBucketOut]


class ReportProcessingTimesOut(Out):
    stages: dict[str, HistogramOut]  # requested_received, received_completed, completed_refunded, requested_refunded


class GradeCountOut(Out):
    grade: str
    count: int


class DispositionCountOut(Out):
    disposition: str
    count: int


class ReportGradesOut(Out):
    grades: list[GradeCountOut]
    dispositions: list[DispositionCountOut]


class CarrierTransitOut(HistogramOut):
    carrier: str


class ReportCarriersOut(Out):
    items: list[CarrierTransitOut]


class ErasureIn(In):
    """Erase a customer: their email, name, address, comments and photos are pseudonymised or deleted everywhere."""

    email: Email


class AdminErasureIn(In):
    """An operator's erasure, for one merchant's customer (an erasure is recorded per merchant)."""

    email: Email
    merchant_id: Code | None = None


class ErasureAccepted(Out):
    id: str
    status: str


class ErasureOut(Out):
    id: str
    status: str  # pending | completed
    requested_at: str
    completed_at: str | None = None
    orders: int
    returns: int
    withdrawals: int
    objects: int
