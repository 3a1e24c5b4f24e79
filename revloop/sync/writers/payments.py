"""Payments (Stripe) writer: customers and invoices for the open amount, each call under its own
deterministic ``Idempotency-Key`` derived from the write's key, with lookups for keys Stripe has pruned.

Payloads by ``(target_object, operation)``:

- ``("customer", "create")`` (find-or-create): ``{"salesforce_account_id", "erp_partner_id"?, "name"?,
  "email"?, "address"?: {line1, city, postal_code, country}, "metadata"?: {...}}``.
- ``("customer", "update")``: ``{"customer_id", "fields": {"name"?, "email"?, "phone"?, "address"?}}``
  (master data: the changed fields only; an address is sent whole, as Stripe replaces it).
- ``("invoice", "create")``: ``{"customer": <customer payload>}`` or ``{"customer_id": "cus_..."}``,
  ``"currency": "eur"``, ``"items": [{"description", "amount": "1234.50"}]`` (major units, as decimal
  strings), ``"metadata": {"salesforce_opportunity_id", "erp_invoice_id", "erp_invoice_number"}``,
  ``"days_until_due"?`` or ``"due_date"?`` (ISO date), ``"finalize"?: true`` (default true).
- ``("invoice", "void")``: ``{"invoice_id": "in_...", "erp_invoice_id"?, "salesforce_account_id"?}``: withdraw
  a payment request whose ERP invoice was credited (voiding an open invoice also cancels its payment intent);
  one that was paid is refused, since only a person can decide about that money.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal, InvalidOperation
from typing import Any

import stripe

from revloop.connectors import payments as payments_connector
from revloop.settings import PaymentsSettings
from revloop.sync.model import (
    DeliveryError,
    DeliveryOutcome,
    IntendedWrite,
    PermanentError,
    RateLimited,
    RetryableError,
)

logger = logging.getLogger(__name__)

ZERO_DECIMAL_CURRENCIES = frozenset({"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx",
                                     "vnd", "vuv", "xaf", "xof", "xpf"})
THREE_DECIMAL_CURRENCIES = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})
MAX_IDEMPOTENCY_KEY_LENGTH = 255
IDEMPOTENCY_REPLAY_SECONDS = 23 * 3600
"""Stripe keeps an idempotency key at least 24 hours: a call repeated within this (an hour of margin) is
answered from its store, so lookups need only look further back."""
CONCURRENCY = 8
"""Writes in flight at once in :meth:`PaymentsWriter.deliver_many` (Stripe has no batch API; its rate
limit is 100 requests/s in live mode, 25 in test mode, and each write is three to six requests)."""
CUSTOMER_MASTER_FIELDS = ("name", "email", "phone", "address")
"""The customer fields a master-data update may set (metadata and the rest are never touched)."""


def currency_exponent(currency: str) -> int:
    """Decimal places of Stripe's integer amounts in ``currency`` (0 for zero-decimal currencies)."""
    code = currency.lower()
    if code in ZERO_DECIMAL_CURRENCIES:
        return 0
    return 3 if code in THREE_DECIMAL_CURRENCIES else 2


def to_minor_units(amount: Any, currency: str) -> int:
    """``amount`` (major units, a decimal string or number) as Stripe's integer amount in ``currency``.

    An amount with more precision than the currency has is refused rather than rounded: the amounts come
    from posted ERP invoices, so extra digits mean a wrong currency or a bug upstream, not money to round.
    """
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        raise PermanentError(f"amount {amount!r} is not a decimal number", code="invalid_amount") from None
    scaled = value.scaleb(currency_exponent(currency))
    if scaled != scaled.to_integral_value():
        raise PermanentError(f"amount {amount} has more decimals than {currency.upper()} allows",
                             code="invalid_amount")
    return int(scaled)


def idempotency_key(write_key: str, step: str) -> str:
    """The ``Idempotency-Key`` of one call of a write (``<key>:<step>``), within Stripe's 255 characters."""
    key = f"{write_key}:{step}"
    if len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise PermanentError(f"idempotency key too long for Stripe ({len(key)} > 255): {key[:60]}...",
                             code="idempotency_key_too_long")
    return key


def classify(exc: BaseException) -> DeliveryError:
    """The delivery error of a ``stripe`` SDK exception."""
    if isinstance(exc, DeliveryError):
        return exc
    if not isinstance(exc, stripe.StripeError):
        raise exc
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None) or exc.code or type(exc).__name__
    message = getattr(error, "message", None) or exc.user_message or str(exc)
    status = exc.http_status
    text = f"{code}: {message}"
    if code == "lock_timeout":  # 429 too, but another request holds the object: retry soon, no budget wait
        return RetryableError(text, code=str(code), http_status=status)
    if isinstance(exc, stripe.RateLimitError) or status == 429:
        return RateLimited(text, retry_after_seconds=_retry_after(exc), code=str(code), http_status=status)
    if isinstance(exc, stripe.APIConnectionError):
        return RetryableError(f"payments API unreachable: {message}", code="connection_error")
    if isinstance(exc, stripe.IdempotencyError):
        if status == 409:  # the same key is still in flight (a concurrent or abandoned attempt): try later
            return RetryableError(text, code=str(code), http_status=status)
        # The key was used with other parameters: the payload changed under a stable key, a bug upstream.
        return PermanentError(text, code=str(code), http_status=status)
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        # Secret keys do not expire by session; a refresh cannot help: someone must configure a valid key.
        return PermanentError(f"the payments platform refused the key (REVLOOP_PAYMENTS_SECRET_KEY): {text}",
                              code=str(code), http_status=status)
    if isinstance(exc, stripe.CardError):
        # A declined card is the customer's outcome, not a delivery failure; a writer that charges reports
        # it in its outcome. Reaching here means a write that should not charge did: park it.
        return PermanentError(text, code=str(code), http_status=status)
    if status is not None and status >= 500 or isinstance(exc, stripe.APIError):
        return RetryableError(text, code=str(code), http_status=status)
    return PermanentError(text, code=str(code), http_status=status)


def _retry_after(exc: stripe.StripeError) -> float | None:
    headers = exc.headers or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _replayed(obj: Any) -> bool:
    """Whether Stripe answered from its idempotency store (the call was made before, by an earlier attempt)."""
    response = getattr(obj, "last_response", None)
    headers = getattr(response, "headers", None) or {}
    return str(headers.get("Idempotent-Replayed") or headers.get("idempotent-replayed") or "").lower() == "true"


class PaymentsWriter:
    """Writes to the payments platform; raises :class:`DeliveryError` subclasses, never retries itself."""

    system = "payments"

    def __init__(self, settings: PaymentsSettings, *, client: stripe.StripeClient | None = None,
                 concurrency: int = CONCURRENCY) -> None:
        self.settings = settings
        # No SDK retries: the delivery worker owns the policy (backoff by error class, Retry-After waits),
        # and every call carries an Idempotency-Key, so the worker's retries are safe.
        self.client = client or payments_connector.connect(settings, max_network_retries=0)
        self.concurrency = max(1, concurrency)
        self._pool: ThreadPoolExecutor | None = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def deliver_many(self, writes: Sequence[IntendedWrite]) -> list[DeliveryOutcome | DeliveryError]:
        """Deliver ``writes`` with up to :data:`CONCURRENCY` in flight (Stripe has no batch API).

        Writes for one Salesforce Account run one after another in their order (its customer write before
        its invoices), so two writes never look for, or create, one customer at the same moment; Accounts
        run side by side. When Stripe answers 429, that write carries the error (the worker waits
        ``Retry-After`` before retrying it) and no other write of the batch starts before that wait is over.
        One result per write, in order.
        """
        lanes: dict[str, list[int]] = {}
        for index, write in enumerate(writes):
            lanes.setdefault(_account_of(write), []).append(index)
        results: list[DeliveryOutcome | DeliveryError | None] = [None] * len(writes)
        pause = _Pause()

        def run_lane(indexes: list[int]) -> None:
            for index in indexes:
                pause.wait()
                try:
                    results[index] = self.deliver(writes[index])
                except DeliveryError as error:
                    results[index] = error
                    if isinstance(error, RateLimited):
                        pause.until(time.monotonic() + (error.retry_after_seconds or 1.0))
                except Exception as exc:  # a bug must not lose the lane's other results: transient, reason kept
                    logger.exception("unexpected error delivering %s", writes[index].idempotency_key)
                    results[index] = RetryableError(f"{type(exc).__name__}: {exc}", code="unexpected")

        if len(lanes) == 1 or self.concurrency == 1:
            for indexes in lanes.values():
                run_lane(indexes)
        else:
            if self._pool is None:  # kept: the SDK holds one HTTP session per thread
                self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="payments-writer")
            for future in [self._pool.submit(run_lane, indexes) for indexes in lanes.values()]:
                future.result()
        return [result for result in results if result is not None]

    def refresh_credentials(self) -> None:
        """Secret keys have no session; rebuild the client (picks up a key rolled in the settings)."""
        self.client = payments_connector.connect(self.settings, max_network_retries=0)

    def deliver(self, write: IntendedWrite) -> DeliveryOutcome:
        """Apply one write; see the module docstring for the operations and their payloads."""
        handler = {
            ("customer", "create"): self._find_or_create_customer,
            ("customer", "upsert"): self._find_or_create_customer,
            ("customer", "update"): self._update_customer,
            ("invoice", "create"): self._create_invoice,
            ("invoice", "void"): self._void_invoice,
        }.get((write.target_object, write.operation))
        if handler is None:
            raise PermanentError(f"payments writer has no operation {write.operation} on {write.target_object}",
                                 code="unsupported_operation")
        try:
            return handler(write)
        except DeliveryError:
            raise
        except stripe.StripeError as exc:
            raise classify(exc) from exc

    # ---- customers -----------------------------------------------------------------------------------

    def _find_or_create_customer(self, write: IntendedWrite) -> DeliveryOutcome:
        customer, created = self.customer_for(write.payload, write.idempotency_key)
        return DeliveryOutcome(customer.id, created, {"salesforce_account_id": write.payload["salesforce_account_id"]})

    def customer_for(self, payload: dict[str, Any], write_key: str) -> tuple[Any, bool]:
        """Find or create the customer of a Salesforce Account; returns ``(customer, created)``.

        Search by ``metadata['salesforce_account_id']`` finds customers made long ago (whose idempotency
        keys Stripe may have pruned after 24 hours); the create under ``<key>:customer`` covers the recent
        past, which Stripe's search index may not show yet (it lags by up to a minute), and replays the
        customer an earlier attempt created if it crashed before recording it.
        """
        account_id = payload.get("salesforce_account_id")
        if not account_id:
            raise PermanentError("payload.salesforce_account_id is required", code="invalid_payload")
        found = self.client.v1.customers.search(
            params={"query": f"metadata['salesforce_account_id']:'{_quoted(str(account_id))}'", "limit": 10}
        )
        if found.data:
            oldest = min(found.data, key=lambda c: (c.created, c.id))
            if len(found.data) > 1:
                logger.warning("payments: %d customers carry salesforce_account_id %s; using the oldest, %s",
                               len(found.data), account_id, oldest.id)
            return oldest, False
        metadata = {"salesforce_account_id": account_id, "revloop_key": write_key, **(payload.get("metadata") or {})}
        if payload.get("erp_partner_id") is not None:
            metadata["erp_partner_id"] = str(payload["erp_partner_id"])
        params: Any = {"metadata": metadata}  # the SDK types it as a TypedDict
        for field in ("name", "email", "phone", "address", "preferred_locales"):
            if payload.get(field):
                params[field] = payload[field]
        customer = self.client.v1.customers.create(
            params=params, options={"idempotency_key": idempotency_key(write_key, "customer")}
        )
        return customer, not _replayed(customer)

    def _update_customer(self, write: IntendedWrite) -> DeliveryOutcome:
        """Update a customer's master data under ``<key>:update`` (a replay answers the first update; setting
        the same values again is harmless beyond Stripe's 24 hours)."""
        customer_id = write.payload.get("customer_id")
        fields = write.payload.get("fields")
        params: Any = {k: v for k, v in (fields or {}).items() if k in CUSTOMER_MASTER_FIELDS}
        if not customer_id or not params:
            raise PermanentError("a customer update needs payload.customer_id and payload.fields (name, email, "
                                 "phone, address)", code="invalid_payload")
        customer = self.client.v1.customers.update(
            str(customer_id), params=params, options={"idempotency_key": idempotency_key(write.idempotency_key,
                                                                                          "update")})
        return DeliveryOutcome(customer.id, False, {"fields": sorted(params)})

    # ---- invoices ------------------------------------------------------------------------------------

    def _create_invoice(self, write: IntendedWrite) -> DeliveryOutcome:
        """Create a draft invoice with metadata, add its items, finalize it (-> ``open``).

        Three kinds of call, each under its own key (``<key>:invoice``, ``<key>:item:<n>``,
        ``<key>:finalize``), so a retry after a crash at any point replays what was done and continues.
        Keys live 24 hours; beyond that the invoice is found by ``metadata.revloop_key`` among the
        customer's invoices and an item by ``metadata.revloop_item_key`` among the invoice's lines.
        """
        key = write.idempotency_key
        payload = write.payload
        currency = str(payload.get("currency") or "").lower()
        items = payload.get("items") or []
        if not currency or not items:
            raise PermanentError("an invoice needs payload.currency and at least one of payload.items",
                                 code="invalid_payload")
        amounts = [to_minor_units(item["amount"], currency) for item in items]
        if payload.get("customer_id"):
            customer_id = str(payload["customer_id"])
        elif isinstance(payload.get("customer"), dict):
            customer_id = self.customer_for(payload["customer"], key)[0].id
        else:
            raise PermanentError("payload.customer or payload.customer_id is required", code="invalid_payload")

        invoice = self._invoice_by_key(customer_id, key)
        created = False
        if invoice is None:
            params: Any = {  # built up below; the SDK types it as a TypedDict
                "customer": customer_id,
                "currency": currency,
                "collection_method": payload.get("collection_method") or "send_invoice",
                "auto_advance": False,
                "pending_invoice_items_behavior": "exclude",
                "metadata": {**{k: str(v) for k, v in (payload.get("metadata") or {}).items()}, "revloop_key": key},
            }
            if payload.get("due_date"):
                params["due_date"] = _unix(payload["due_date"])
            elif payload.get("days_until_due") is not None or params["collection_method"] == "send_invoice":
                params["days_until_due"] = int(payload.get("days_until_due") or 30)
            if payload.get("description"):
                params["description"] = payload["description"]
            invoice = self.client.v1.invoices.create(params=params,
                                                  options={"idempotency_key": idempotency_key(key, "invoice")})
            created = not _replayed(invoice)
            if not created:  # a replay shows the invoice as it was when first created: read its state now
                invoice = self.client.v1.invoices.retrieve(invoice.id)

        if invoice.status == "draft":
            present = set() if created else {  # a draft this call made has no items yet
                (line.to_dict().get("metadata") or {}).get("revloop_item_key") for line in
                self.client.v1.invoices.line_items.list(invoice.id, params={"limit": 100}).auto_paging_iter()}
            for n, (item, amount) in enumerate(zip(items, amounts, strict=True)):
                item_key = idempotency_key(key, f"item:{n}")
                if item_key in present:
                    continue
                self.client.v1.invoice_items.create(
                    params={"customer": customer_id, "invoice": invoice.id, "currency": currency, "amount": amount,
                            "description": item.get("description") or f"Item {n + 1}",
                            "metadata": {"revloop_item_key": item_key}},
                    options={"idempotency_key": item_key},
                )
            if payload.get("finalize", True):
                invoice = self.client.v1.invoices.finalize_invoice(
                    invoice.id, params={"auto_advance": False},
                    options={"idempotency_key": idempotency_key(key, "finalize")},
                )
        body = invoice.to_dict()
        return DeliveryOutcome(invoice.id, created, {
            "customer": customer_id, "status": body.get("status"), "amount_due": body.get("amount_due"),
            "currency": body.get("currency"), "hosted_invoice_url": body.get("hosted_invoice_url"),
            "number": body.get("number"),
        })

    def _void_invoice(self, write: IntendedWrite) -> DeliveryOutcome:
        """Withdraw a payment request: void it under ``<key>:void`` (Stripe then cancels its payment intent).

        The invoice is read first, so a delivery after a crash (or beyond Stripe's 24 hours of idempotency)
        finds it void and reports it found. A paid invoice is parked: it cannot be voided, and whether its money
        goes back or pays the invoice that replaced it is a person's decision.
        """
        invoice_id = str(write.payload.get("invoice_id") or "")
        if not invoice_id.startswith("in_"):
            raise PermanentError("voiding needs payload.invoice_id (in_...)", code="invalid_payload")
        invoice = self.client.v1.invoices.retrieve(invoice_id)
        status = invoice.status
        detail = {"status": status, "erp_invoice_id": write.payload.get("erp_invoice_id")}
        if status == "void":
            return DeliveryOutcome(invoice_id, False, detail)
        if status == "paid" or (invoice.amount_paid or 0) > 0:
            raise PermanentError(f"payments invoice {invoice_id} was paid before it could be voided: refund it or "
                                 "settle it against the invoice that replaced it, by hand", code="invoice_paid")
        if status not in ("open", "uncollectible"):
            raise PermanentError(f"payments invoice {invoice_id} is {status}: only an open or uncollectible invoice "
                                 "can be voided", code="invoice_not_voidable")
        voided = self.client.v1.invoices.void_invoice(
            invoice_id, options={"idempotency_key": idempotency_key(write.idempotency_key, "void")})
        return DeliveryOutcome(invoice_id, not _replayed(voided), {**detail, "status": voided.status})

    def _invoice_by_key(self, customer_id: str, key: str) -> Any | None:
        """The customer's invoice created for ``key`` longer ago than Stripe surely keeps idempotency keys,
        unless voided (a void one is replaced, not reused).

        A younger invoice needs no lookup: creating it again under ``<key>:invoice`` replays it. Listing only
        the older ones keeps the lookup's cost to a customer's history before today, instead of growing with
        every invoice made today (10,000 deals won at once put dozens of new invoices on each customer).
        """
        older = int(time.time() - IDEMPOTENCY_REPLAY_SECONDS)
        listed = self.client.v1.invoices.list(params={"customer": customer_id, "limit": 100, "created": {"lt": older}})
        for invoice in listed.auto_paging_iter():
            if (invoice.to_dict().get("metadata") or {}).get("revloop_key") == key and invoice.status != "void":
                return invoice
        return None


class _Pause:
    """A moment before which no new write starts (set by a 429's ``Retry-After``), shared by the lanes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until = 0.0

    def until(self, moment: float) -> None:
        with self._lock:
            self._until = max(self._until, moment)

    def wait(self) -> None:
        with self._lock:
            delay = self._until - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def _account_of(write: IntendedWrite) -> str:
    """The Salesforce Account a write belongs to (its lane), else its own key."""
    payload = write.payload
    customer: dict[str, Any] = payload["customer"] if isinstance(payload.get("customer"), dict) else payload
    account = customer.get("salesforce_account_id") or payload.get("customer_id")
    return str(account) if account else write.idempotency_key


def _quoted(value: str) -> str:
    """``value`` inside a search query's single quotes (Stripe escapes quotes with a backslash)."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _unix(value: Any) -> int:
    """A due date (ISO date, or already a Unix time) as Stripe's Unix timestamp (noon UTC of that day)."""
    if isinstance(value, int):
        return value
    day = dt.date.fromisoformat(str(value))
    return int(dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.UTC).timestamp())
