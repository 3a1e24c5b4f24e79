"""Constants of the payments (Stripe) source: objects, their columns, PII columns, paging and windows.

Columns are declared as ``"column=path:kind"`` (or ``"path:kind"`` when the column is the path with dots
turned into underscores). Kinds: ``id`` (required text), ``text``, ``int``, ``amount`` (integer minor
units; anything else is quarantined), ``float``, ``bool``, ``ts`` (Unix seconds -> timestamptz),
``currency`` (kept as Stripe sends it, lower case; unknown codes are quarantined), ``ref`` (an id, or the
id of an expanded object), ``json`` (text holding JSON; only for values that cannot hold PII, and for
``metadata``, which holds the integration's own keys) and ``keys`` (the sorted key names of an object, as
JSON: which attributes an event changed, without their values).

Nothing is loaded that is not declared here: a whole vendor object is never dumped as JSON, since it could
hold PII, and secrets such as a payment intent's ``client_secret`` are never read.
"""

from __future__ import annotations

PAGE_SIZE = 100
"""Stripe's maximum ``limit`` on lists."""

EVENT_OVERLAP_SECONDS = 300
"""Each incremental cycle re-reads events created this long before the cursor: an event that becomes
visible in the feed after later ones were already read is still seen; re-read events are deduplicated."""

EVENT_RETENTION_SECONDS = 29 * 86_400
"""Stripe keeps events about 30 days; a cursor older than this (with a day's margin) cannot be resumed
from the feed, so the state-changing objects are listed again instead."""

MAX_READS_PER_SECOND = 100
"""The reader's pace (see ``RequestPacer``): Stripe allows an account 100 read requests a second in live
mode (25 in test mode; more on request) and answers 429 beyond. Against the real service, whose list calls
take a few hundred milliseconds, one load stays far below this (and below the 25 a second Stripe allows
each endpoint); against the sandbox, an unpaced large backfill averaged ~115 requests a second."""

EVENT_WINDOWS = 4
"""A backfill reads ``/v1/events`` (the 30 days Stripe keeps) as this many ``created`` ranges paged side by
side (see ``StripeReader.pages_in_windows``): one ``starting_after`` chain (~370 pages of large events on the
large sandbox book) leaves the server idle between pages. Paging the other lists the same way gained
nothing on the large book: the sandbox then answers one request at a time, each waiting for the others.
An incremental read longer than one page is split the same way (``StripeReader.created_since``)."""

ROWS_PER_TABLE = 2_000
"""Rows gathered from consecutive pages into one Arrow table: larger tables load a little faster, but the
batch's parsed objects are held until it is built (5,000 events held ~70 MiB at a large backfill's peak)."""

SNAPSHOT_SAFETY_SECONDS = 1
"""A list read at time ``t`` reflects every event created before ``floor(t) - 1``; its rows are dated so
that an event of the same second (which may come after the read) still wins."""

# -- columns --------------------------------------------------------------------------------------------

_ADDRESS = ("line1:text", "line2:text", "city:text", "state:text", "postal_code:text", "country:text")


def _nested(prefix: str, specs: tuple[str, ...]) -> tuple[str, ...]:
    """``specs`` under ``prefix`` (a constant-building helper: ``address`` + ``line1`` -> ``address.line1``)."""
    return tuple(f"{prefix}.{spec}" for spec in specs)


CUSTOMER = (
    "id:id", "created:ts", "name:text", "email:text", "phone:text", "description:text", "currency:currency",
    "balance:amount", "delinquent:bool", "invoice_prefix:text", "next_invoice_sequence:int", "tax_exempt:text",
    "default_source:ref", "livemode:bool", "preferred_locales:json", "metadata:json",
    *_nested("address", _ADDRESS),
    "shipping.name:text", "shipping.phone:text", *_nested("shipping.address", _ADDRESS),
)
PRODUCT = (
    "id:id", "created:ts", "updated:ts", "name:text", "description:text", "active:bool", "type:text",
    "default_price:ref", "unit_label:text", "tax_code:ref", "livemode:bool", "metadata:json",
)
PRICE = (
    "id:id", "created:ts", "product:ref", "currency:currency", "unit_amount:amount", "unit_amount_decimal:text",
    "type:text", "billing_scheme:text", "active:bool", "nickname:text", "lookup_key:text", "tax_behavior:text",
    "recurring.interval:text", "recurring.interval_count:int", "recurring.usage_type:text", "livemode:bool",
    "metadata:json",
)
INVOICE = (
    "id:id", "created:ts", "customer:ref", "status:text", "currency:currency", "number:text",
    "collection_method:text", "billing_reason:text", "amount_due:amount", "amount_paid:amount",
    "amount_remaining:amount", "amount_overpaid:amount", "amount_shipping:amount", "subtotal:amount",
    "subtotal_excluding_tax:amount", "total:amount", "total_excluding_tax:amount", "starting_balance:amount",
    "ending_balance:amount", "attempt_count:int", "attempted:bool", "paid:bool", "paid_out_of_band:bool",
    "auto_advance:bool", "due_date:ts", "effective_at:ts", "period_start:ts", "period_end:ts",
    "days_until_due:int", "description:text", "payment_intent:ref", "subscription:ref",
    "hosted_invoice_url:text", "account_country:text",
    "status_transitions.finalized_at:ts", "status_transitions.paid_at:ts", "status_transitions.voided_at:ts",
    "status_transitions.marked_uncollectible_at:ts",
    "customer_name:text", "customer_email:text", "customer_phone:text", *_nested("customer_address", _ADDRESS),
    "lines_total_count=lines.total_count:int", "livemode:bool", "metadata:json",
)
INVOICE_LINE = (
    "id:id", "invoice:id", "amount:amount", "currency:currency", "description:text", "quantity:int",
    "price=pricing.price_details.price:ref", "product=pricing.price_details.product:ref",
    "unit_amount_decimal=pricing.unit_amount_decimal:text",
    "invoice_item=parent.invoice_item_details.invoice_item:ref",
    "subscription=parent.subscription_item_details.subscription:ref",
    "subscription_item=parent.subscription_item_details.subscription_item:ref",
    "period_start=period.start:ts", "period_end=period.end:ts", "discountable:bool", "livemode:bool",
    "metadata:json",
)
PAYMENT_INTENT = (
    "id:id", "created:ts", "customer:ref", "invoice:ref", "status:text", "amount:amount",
    "amount_received:amount", "amount_capturable:amount", "currency:currency", "capture_method:text",
    "confirmation_method:text", "canceled_at:ts", "cancellation_reason:text", "description:text",
    "latest_charge:ref", "payment_method:ref", "payment_method_types:json", "statement_descriptor:text",
    "receipt_email:text",
    "last_payment_error.type:text", "last_payment_error.code:text", "last_payment_error.decline_code:text",
    "last_payment_error.charge:ref",
    "shipping.name:text", "shipping.phone:text", *_nested("shipping.address", _ADDRESS),
    "livemode:bool", "metadata:json",
)
CHARGE = (
    "id:id", "created:ts", "customer:ref", "invoice:ref", "payment_intent:ref", "status:text", "amount:amount",
    "amount_captured:amount", "amount_refunded:amount", "currency:currency", "captured:bool", "paid:bool",
    "refunded:bool", "disputed:bool", "failure_code:text", "failure_message:text", "balance_transaction:ref",
    "payment_method:ref", "description:text", "calculated_statement_descriptor:text", "receipt_email:text",
    "payment_method_details.type:text", "payment_method_details.card.brand:text",
    "payment_method_details.card.last4:text", "payment_method_details.card.country:text",
    "payment_method_details.card.funding:text", "payment_method_details.card.exp_month:int",
    "payment_method_details.card.exp_year:int",
    "outcome.type:text", "outcome.network_status:text", "outcome.reason:text", "outcome.risk_level:text",
    "outcome.seller_message:text",
    "billing_details.name:text", "billing_details.email:text", "billing_details.phone:text",
    *_nested("billing_details.address", _ADDRESS),
    "livemode:bool", "metadata:json",
)
REFUND = (
    "id:id", "created:ts", "charge:ref", "payment_intent:ref", "amount:amount", "currency:currency",
    "status:text", "reason:text", "failure_reason:text", "balance_transaction:ref", "receipt_number:text",
    "metadata:json",
)
DISPUTE = (
    "id:id", "created:ts", "charge:ref", "payment_intent:ref", "amount:amount", "currency:currency",
    "status:text", "reason:text", "is_charge_refundable:bool", "evidence_details.due_by:ts",
    "evidence_details.has_evidence:bool", "evidence_details.past_due:bool",
    "evidence_details.submission_count:int", "livemode:bool", "metadata:json",
)
BALANCE_TRANSACTION = (
    "id:id", "created:ts", "available_on:ts", "amount:amount", "fee:amount", "net:amount", "currency:currency",
    "exchange_rate:float", "status:text", "type:text", "reporting_category:text", "source:ref",
    "description:text",
)
EVENT = (
    "id:id", "type:text", "created:ts", "api_version:text", "livemode:bool", "pending_webhooks:int",
    "request_id=request.id:text", "request_idempotency_key=request.idempotency_key:text",
    "object_id=data.object.id:text", "object_type=data.object.object:text",
    "object_status=data.object.status:text", "previous_attribute_names=data.previous_attributes:keys",
)
"""Events keep what identifies them and their object; the object's state itself lands in its own table
(the snapshot can hold PII). The names of the changed attributes are added as ``previous_attribute_names``."""

# -- objects --------------------------------------------------------------------------------------------

OBJECTS: dict[str, dict[str, object]] = {
    # table: {path of the list, columns, follow events?}
    "customer": {"path": "/v1/customers", "columns": CUSTOMER, "events": True},
    "product": {"path": "/v1/products", "columns": PRODUCT, "events": True},
    "price": {"path": "/v1/prices", "columns": PRICE, "events": True},
    "invoice": {"path": "/v1/invoices", "columns": INVOICE, "events": True},
    "payment_intent": {"path": "/v1/payment_intents", "columns": PAYMENT_INTENT, "events": True},
    "charge": {"path": "/v1/charges", "columns": CHARGE, "events": True},
    "refund": {"path": "/v1/refunds", "columns": REFUND, "events": True},
    "dispute": {"path": "/v1/disputes", "columns": DISPUTE, "events": True},
    # No events carry balance transactions: each cycle lists the ones created since the cursor.
    "balance_transaction": {"path": "/v1/balance_transactions", "columns": BALANCE_TRANSACTION, "events": False},
}
"""Tables loaded from Stripe lists. ``events: True``: kept current from the events feed between backfills."""

CHILD_TABLES = {"invoice_line": {"parent": "invoice", "columns": INVOICE_LINE, "primary_key": ("invoice", "id")}}
"""Invoice lines, read from each invoice's embedded ``lines`` (and ``/v1/invoices/{id}/lines`` past 10)."""

EVENT_TABLE = "event"

REFETCH_PARENT_EVENTS = {"invoiceitem": "invoice"}
"""Events whose object is not loaded itself but changes a loaded parent (an item added to a draft invoice):
the parent is read again."""

PII: dict[str, dict[str, str]] = {
    # Stripe has no is-a-company flag on customers, so customer and invoice names are treated as person
    # names; matching stays possible through the ``_hash`` columns.
    "customer": {
        "name": "name", "email": "email", "phone": "phone", "address_line1": "address", "address_line2": "address",
        "shipping_name": "name", "shipping_phone": "phone", "shipping_address_line1": "address",
        "shipping_address_line2": "address",
    },
    "invoice": {
        "customer_name": "name", "customer_email": "email", "customer_phone": "phone",
        "customer_address_line1": "address", "customer_address_line2": "address",
    },
    "payment_intent": {
        "receipt_email": "email", "shipping_name": "name", "shipping_phone": "phone",
        "shipping_address_line1": "address", "shipping_address_line2": "address",
    },
    "charge": {
        "receipt_email": "email", "billing_details_name": "name", "billing_details_email": "email",
        "billing_details_phone": "phone", "billing_details_address_line1": "address",
        "billing_details_address_line2": "address",
    },
}
"""PII columns per table (column -> kind of :class:`revloop.crypto.MatchHasher`): each becomes
``<column>_enc`` and ``<column>_hash``."""
