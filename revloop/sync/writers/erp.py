"""ERP (Odoo) writer: customers, posted customer invoices, credit notes and payments, each found before it
is created, because Odoo has no idempotency keys and does not enforce a unique customer-invoice ``ref``.

Calls go over JSON-2 on the URL and bearer header that odoolib builds for the sync key
(:class:`revloop.connectors.erp.Json2Reader` with ``reader=False``): odoolib's own proxy raises a bare
``ValueError`` without the response's headers or Odoo's error name, and the writer needs both (``Retry-After``
of a 429, ``UserError`` vs. ``SerializationFailure`` of a 500).

Payloads by ``(target_object, operation)``:

- ``("res.partner", "create")`` (find-or-create): ``{"salesforce_account_id", "values": {...}}``; ``values``
  are ``res.partner`` fields, plus ``country_code`` (resolved to ``country_id``).
- ``("res.partner", "update")``: ``{"partner_id"}`` or ``{"salesforce_account_id"}`` (the partner by its
  external id), ``"values": {...}`` (master data: the changed fields only; ``country_code`` resolved).
- ``("account.move", "post")`` (create-and-post a customer invoice): ``{"partner": <res.partner payload>}``
  or ``{"partner_id": int}``, ``"currency": "EUR"``, ``"invoice_date"``, ``"invoice_date_due"``,
  ``"invoice_origin"`` (the Opportunity Id), ``"payment_reference"?``, ``"lines": [{"product_code",
  "quantity", "price_unit", "name"?, "tax_ids"?}]``.
- ``("account.move", "credit_note")``: ``{"reversed_entry_id": int}`` or ``{"reversed_entry_ref": str}``
  (the invoice's own key), ``"invoice_date"?``, ``"lines"?`` (default: the reversed invoice's lines).
- ``("account.payment", "register_payment")``: ``{"invoice_id": int}`` or ``{"invoice_ref": str}``,
  ``"payment_id"`` (the payments platform's id), ``"amount"`` (decimal string), ``"date"``.
- ``("account.payment", "refund")``: ``{"invoice_id", "refund_id"`` (the payments platform's refund id),
  ``"amount"`` (decimal string), ``"date"}``: a credit note reversing the invoice, paid out.
- ``("account.payment", "chargeback")``: ``{"invoice_id", "payment_id"`` (the receipt's payments id),
  ``"dispute_id", "amount"}``: a lost dispute; the receipt is cancelled and the invoice opens again.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import httpx

from revloop.connectors.erp import Json2Reader, OdooApiError
from revloop.settings import ErpSettings
from revloop.sync.model import (
    DeliveryError,
    DeliveryOutcome,
    IntendedWrite,
    PermanentError,
    RateLimited,
    RetryableError,
)

logger = logging.getLogger(__name__)

EXTERNAL_ID_MODULE = "revloop"
"""``ir.model.data`` module of the external ids Revloop gives ERP records."""
ALL_RECORDS = {"active_test": False}
"""Archived partners still count when looking for an existing one (creating a twin would be worse)."""
WRITE_TIMEOUT_SECONDS = 60.0
MOVE_FIELDS = ["name", "state", "move_type", "partner_id", "currency_id", "amount_total", "amount_residual",
               "payment_state", "invoice_origin", "ref"]
"""What the writer reads of an ``account.move`` it made or found (its outcome's detail)."""
_ODOOLIB_STATUS = re.compile(r"Unexpected status code (\d{3}): (.*)", re.S)


def partner_external_name(salesforce_account_id: str) -> str:
    """The ``ir.model.data`` name of the partner of a Salesforce Account (Ids are safe in the name)."""
    return f"sf_account_{salesforce_account_id}"


def classify(exc: BaseException) -> DeliveryError:
    """The delivery error of a JSON-2 error answer, a transport failure, or an odoolib exception."""
    if isinstance(exc, DeliveryError):
        return exc
    if isinstance(exc, OdooApiError):
        text = f"{exc.name}: {exc.message}"
        if exc.status == 429:
            return RateLimited(text, retry_after_seconds=exc.retry_after, code="rate_limited", http_status=429)
        if exc.transient:  # 5xx other than Odoo's business and programming errors, e.g. SerializationFailure
            return RetryableError(text, code=exc.name, http_status=exc.status)
        if exc.status == 401:
            # An API key does not expire by session: a refresh cannot help, a person must issue a new key.
            return PermanentError(f"the ERP refused the API key (REVLOOP_ERP_API_KEY): {exc.message}",
                                  code="authentication_failed", http_status=401)
        return PermanentError(text, code=exc.name, http_status=exc.status)
    if isinstance(exc, httpx.TransportError):
        return RetryableError(f"ERP unreachable: {type(exc).__name__}: {exc}", code="connection_error")
    try:  # odoolib, when a caller used its proxy directly
        from odoolib.main import AuthenticationError
    except ImportError:  # pragma: no cover - odoolib is a dependency
        AuthenticationError = ()  # type: ignore[assignment,misc]  # noqa: N806
    if isinstance(exc, AuthenticationError):
        return PermanentError(f"the ERP refused the API key: {exc}", code="authentication_failed", http_status=401)
    if isinstance(exc, ValueError):
        match = _ODOOLIB_STATUS.match(str(exc))
        if match:
            status = int(match.group(1))
            if status == 429:
                return RateLimited(str(exc), code="rate_limited", http_status=429)
            kind = RetryableError if status >= 500 and "odoo.exceptions" not in match.group(2) else PermanentError
            return kind(str(exc)[:500], code=f"http_{status}", http_status=status)
        if str(exc).startswith("Invalid request"):
            return PermanentError(str(exc)[:500], code="invalid_request", http_status=422)
    raise exc


class ErpWriter:
    """Writes to the ERP with the sync key; raises :class:`DeliveryError` subclasses, never retries itself."""

    system = "erp"

    def __init__(self, settings: ErpSettings) -> None:
        self.settings = settings
        self._client: Json2Reader | None = None
        self._currency_ids: dict[str, int] = {}
        self._country_ids: dict[str, int] = {}
        self._product_ids: dict[str, int] = {}

    @property
    def client(self) -> Json2Reader:
        if self._client is None:
            self._client = Json2Reader(self.settings, reader=False, timeout=WRITE_TIMEOUT_SECONDS)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def refresh_credentials(self) -> None:
        """API keys have no session to refresh; reconnect (picks up a key rotated in the settings)."""
        self.close()

    def call(self, model: str, method: str, **arguments: Any) -> Any:
        return self.client.call(model, method, **arguments)

    def deliver(self, write: IntendedWrite) -> DeliveryOutcome:
        """Apply one write; see the module docstring for the operations and their payloads."""
        handler = {
            ("res.partner", "create"): self._find_or_create_partner,
            ("res.partner", "upsert"): self._find_or_create_partner,
            ("res.partner", "update"): self._update_partner,
            ("account.move", "post"): self._post_invoice,
            ("account.move", "create"): self._post_invoice,
            ("account.move", "credit_note"): self._credit_note,
            ("account.payment", "register_payment"): self._register_payment,
            ("account.payment", "refund"): self._refund_payment,
            ("account.payment", "chargeback"): self._chargeback,
        }.get((write.target_object, write.operation))
        if handler is None:
            raise PermanentError(f"ERP writer has no operation {write.operation} on {write.target_object}",
                                 code="unsupported_operation")
        try:
            return handler(write)
        except DeliveryError:
            raise
        except Exception as exc:
            raise classify(exc) from exc

    def deliver_many(self, writes: Sequence[IntendedWrite]) -> list[DeliveryOutcome | DeliveryError]:
        """Deliver ``writes``; customer invoices in batches (one lookup, one ``create`` of a list, one
        ``action_post`` of a list, one ``read`` per 200; see :mod:`revloop.sync.writers.erp_invoices`),
        other operations one by one. One result per write, in order."""
        from revloop.sync.writers.erp_invoices import deliver_many

        return deliver_many(self, writes)

    # ---- res.partner ---------------------------------------------------------------------------------

    def _find_or_create_partner(self, write: IntendedWrite) -> DeliveryOutcome:
        partner_id, created = self.partner_for(write.payload)
        return DeliveryOutcome(str(partner_id), created, {"external_id": _partner_xml_id(write.payload)})

    def partner_for(self, payload: dict[str, Any]) -> tuple[int, bool]:
        """Find or create the partner of a Salesforce Account; returns ``(id, created)``.

        Keys, in order: the external id ``revloop.sf_account_<Account Id>`` in ``ir.model.data``; then
        ``ref`` = the Account Id, which the partner is created with, so a crash between creating the
        partner and its external id is healed (the external id is added to the partner found by ``ref``)
        instead of creating a second partner.
        """
        account_id = payload.get("salesforce_account_id")
        if not account_id:
            raise PermanentError("payload.salesforce_account_id is required", code="invalid_payload")
        name = partner_external_name(str(account_id))
        found = self._external_id_target(name, "res.partner")
        if found is not None:
            return found, False
        by_ref = self.call("res.partner", "search", domain=[["ref", "=", account_id]], order="id", limit=1,
                           context=ALL_RECORDS)
        if by_ref:
            self._create_external_id(name, "res.partner", by_ref[0])
            return by_ref[0], False
        values = self._partner_values(payload.get("values") or {})
        values.setdefault("customer_rank", 1)
        values["ref"] = account_id
        partner_id = _single_id(self.call("res.partner", "create", vals_list=[values]))
        self._create_external_id(name, "res.partner", partner_id)
        return partner_id, True

    def _update_partner(self, write: IntendedWrite) -> DeliveryOutcome:
        """Write master-data fields of a partner (by id, else by the Account's external id); writing the same
        values twice is harmless, so a replay needs no lookup."""
        payload = write.payload
        if payload.get("partner_id"):
            partner_id: int | None = int(payload["partner_id"])
            if not self.call("res.partner", "search", domain=[["id", "=", partner_id]], limit=1, context=ALL_RECORDS):
                raise PermanentError(f"ERP partner {partner_id} does not exist", code="partner_not_found")
        else:
            account_id = payload.get("salesforce_account_id")
            partner_id = self._external_id_target(partner_external_name(str(account_id)), "res.partner")
            if partner_id is None:
                raise PermanentError(f"no ERP partner for Salesforce Account {account_id}", code="partner_not_found")
        values = self._partner_values(payload.get("values") or {}, new=False)
        if not values:
            raise PermanentError("payload.values is empty: nothing to update", code="invalid_payload")
        self.call("res.partner", "write", ids=[partner_id], vals=values)
        return DeliveryOutcome(str(partner_id), False, {"fields": sorted(values)})

    def _partner_values(self, values: dict[str, Any], *, new: bool = True) -> dict[str, Any]:
        values = dict(values)
        code = values.pop("country_code", None)
        if code:
            values["country_id"] = self._country_id(str(code))
        if new:
            values.setdefault("is_company", True)
        return values

    def _external_id_target(self, name: str, model: str) -> int | None:
        rows = self.call("ir.model.data", "search_read",
                         domain=[["module", "=", EXTERNAL_ID_MODULE], ["name", "=", name]],
                         fields=["model", "res_id"], limit=1)
        if not rows:
            return None
        if rows[0]["model"] != model:
            raise PermanentError(f"external id {EXTERNAL_ID_MODULE}.{name} names a {rows[0]['model']}, not a {model}",
                                 code="external_id_conflict")
        res_id = int(rows[0]["res_id"])
        # A record deleted in the ERP leaves its external id behind only if someone bypassed the ORM.
        if not self.call(model, "search", domain=[["id", "=", res_id]], limit=1, context=ALL_RECORDS):
            raise PermanentError(f"external id {EXTERNAL_ID_MODULE}.{name} points at deleted {model} {res_id}",
                                 code="external_id_dangling")
        return res_id

    def _create_external_id(self, name: str, model: str, res_id: int) -> None:
        self.call("ir.model.data", "create",
                  vals_list=[{"module": EXTERNAL_ID_MODULE, "name": name, "model": model, "res_id": res_id}])

    # ---- account.move --------------------------------------------------------------------------------

    def _post_invoice(self, write: IntendedWrite) -> DeliveryOutcome:
        """Create and post a customer invoice once.

        ``ref`` carries the idempotency key. Before creating, the writer looks for a customer invoice with
        that ``ref`` that is not cancelled: a posted one means an earlier delivery finished (returned,
        ``created=False``); a draft one means it crashed between ``create`` and ``action_post`` (it is
        posted now). Creating and posting are two calls, so this lookup is what closes the window.
        """
        key = write.idempotency_key
        existing = self._move_by_ref(key, "out_invoice")
        if existing is not None:
            return self._posted_outcome(existing, created=False)
        move_id = _single_id(self.call("account.move", "create", vals_list=[self.invoice_values(write)]))
        move = self._read_move(move_id)
        return self._posted_outcome(move, created=True)

    def invoice_values(self, write: IntendedWrite, partner_id: int | None = None) -> dict[str, Any]:
        """The ``account.move`` values of an ``("account.move", "post")`` write (``ref`` = its key).

        ``partner_id`` when the caller already resolved the payload's partner; else it is resolved here.
        """
        payload = write.payload
        if partner_id is None and payload.get("partner_id"):
            partner_id = int(payload["partner_id"])
        elif partner_id is None and isinstance(payload.get("partner"), dict):
            partner_id, _ = self.partner_for(payload["partner"])
        elif partner_id is None:
            raise PermanentError("payload.partner or payload.partner_id is required", code="invalid_payload")
        lines = payload.get("lines") or []
        if not lines:
            raise PermanentError("an invoice needs at least one line", code="invalid_payload")
        values = {
            "move_type": "out_invoice",
            "partner_id": partner_id,
            "currency_id": self._currency_id(str(payload.get("currency") or "")),
            "invoice_date": payload.get("invoice_date"),
            "date": payload.get("invoice_date"),
            "invoice_date_due": payload.get("invoice_date_due"),
            "invoice_origin": payload.get("invoice_origin"),
            "payment_reference": payload.get("payment_reference"),
            "ref": write.idempotency_key,
            "invoice_line_ids": [[0, 0, self._line_values(line)] for line in lines],
        }
        return {k: v for k, v in values.items() if v is not None}

    def _credit_note(self, write: IntendedWrite) -> DeliveryOutcome:
        """Create and post a credit note (``out_refund``) reversing an invoice, once (same lookup by ``ref``)."""
        key = write.idempotency_key
        existing = self._move_by_ref(key, "out_refund")
        if existing is not None:
            return self._posted_outcome(existing, created=False)
        payload = write.payload
        original: dict[str, Any] | None
        if payload.get("reversed_entry_id"):
            original = self._read_move(int(payload["reversed_entry_id"]))
        else:
            original = self._move_by_ref(str(payload.get("reversed_entry_ref") or ""), "out_invoice")
            if original is None:
                raise PermanentError(f"no invoice with ref {payload.get('reversed_entry_ref')!r} to reverse",
                                     code="invoice_not_found")
        if original["state"] != "posted":
            raise PermanentError(f"invoice {original['id']} is {original['state']}: only posted invoices are "
                                 "reversed by a credit note", code="invoice_not_posted")
        if payload.get("lines"):
            lines = [self._line_values(line) for line in payload["lines"]]
        else:
            lines = self._copied_lines(original["id"])
        return self._posted_outcome(self._create_credit_note(original, key, payload.get("invoice_date"), lines),
                                    created=True)

    def _copied_lines(self, move_id: int) -> list[dict[str, Any]]:
        """An entry's lines as values for another entry (a credit note reversing it in full)."""
        return [
            {"product_id": _m2o(line["product_id"]), "name": line["name"], "quantity": line["quantity"],
             "price_unit": line["price_unit"], "discount": line["discount"], "tax_ids": [[6, 0, line["tax_ids"]]]}
            for line in self.call("account.move.line", "search_read", domain=[["move_id", "=", move_id]],
                                  fields=["product_id", "name", "quantity", "price_unit", "discount", "tax_ids"],
                                  order="sequence, id")
        ]

    def _create_credit_note(self, original: dict[str, Any], key: str, date: str | None,
                            lines: list[dict[str, Any]]) -> dict[str, Any]:
        """Create (draft) a customer credit note reversing ``original``, ``ref`` = ``key``; returns it read."""
        values = {
            "move_type": "out_refund",
            "partner_id": _m2o(original["partner_id"]),
            "currency_id": _m2o(original["currency_id"]),
            "reversed_entry_id": original["id"],
            "invoice_origin": original.get("invoice_origin") or None,
            "ref": key,
            "invoice_date": date,
            "date": date,
            "invoice_line_ids": [[0, 0, line] for line in lines],
        }
        move_id = _single_id(self.call("account.move", "create",
                                       vals_list=[{k: v for k, v in values.items() if v is not None}]))
        return self._read_move(move_id)

    def _move_by_ref(self, ref: str, move_type: str) -> dict[str, Any] | None:
        ids = self.call("account.move", "search",
                        domain=[["ref", "=", ref], ["move_type", "=", move_type], ["state", "!=", "cancel"]],
                        order="id", limit=2)
        if len(ids) > 1:
            # Someone (or a pre-lookup version of this writer) made two: never guess which one is ours.
            raise PermanentError(f"{len(ids)} {move_type} entries carry ref {ref!r} (ids {ids}); resolve by hand",
                                 code="duplicate_ref")
        return self._read_move(ids[0]) if ids else None

    def _read_move(self, move_id: int) -> dict[str, Any]:
        rows = self.call("account.move", "read", ids=[move_id], fields=MOVE_FIELDS)
        if not rows:
            raise PermanentError(f"account.move {move_id} does not exist", code="MissingError")
        return dict(rows[0])

    def _posted_outcome(self, move: dict[str, Any], *, created: bool) -> DeliveryOutcome:
        posted_now = False
        if move["state"] == "draft":
            self.call("account.move", "action_post", ids=[move["id"]])
            move = self._read_move(move["id"])
            posted_now = True
        return move_outcome(move, created=created, posted_now=posted_now)

    def _line_values(self, line: dict[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {"quantity": line.get("quantity", 1), "price_unit": line["price_unit"]}
        code = line.get("product_code")
        if code:
            values["product_id"] = self._product_id(str(code))
        if line.get("name"):
            values["name"] = line["name"]
        if line.get("discount"):
            values["discount"] = line["discount"]
        if line.get("tax_ids") is not None:
            values["tax_ids"] = [[6, 0, list(line["tax_ids"])]]
        return values

    # ---- account.payment -----------------------------------------------------------------------------

    def _register_payment(self, write: IntendedWrite) -> DeliveryOutcome:
        """Register a customer payment against an invoice once.

        The payments platform's id is the payment's ``memo`` and ``payment_reference``; a payment with it
        is looked up first (a draft one, left by a crash between ``create`` and ``action_post``, is posted).
        """
        payload = write.payload
        payment_ref = str(payload.get("payment_id") or "")
        if not payment_ref:
            raise PermanentError("payload.payment_id (the payments platform's id) is required",
                                 code="invalid_payload")
        found = self._payments_with_reference(payment_ref)
        if found:
            return self._payment_outcome(found[0]["id"], found[0]["state"], created=False)
        invoice: dict[str, Any] | None
        if payload.get("invoice_id"):
            invoice = self._read_move(int(payload["invoice_id"]))
        else:
            invoice = self._move_by_ref(str(payload.get("invoice_ref") or ""), "out_invoice")
            if invoice is None:
                raise PermanentError(f"no invoice with ref {payload.get('invoice_ref')!r}", code="invoice_not_found")
        if invoice["state"] != "posted":
            raise PermanentError(f"invoice {invoice['id']} is {invoice['state']}: payments go against posted "
                                 "invoices", code="invoice_not_posted")
        values = {
            "payment_type": "inbound",
            "partner_type": "customer",
            "partner_id": _m2o(invoice["partner_id"]),
            "amount": payload.get("amount", invoice["amount_residual"]),
            "currency_id": _m2o(invoice["currency_id"]),
            "date": payload.get("date"),
            "memo": payment_ref,
            "payment_reference": payment_ref,
            "invoice_ids": [[6, 0, [invoice["id"]]]],
        }
        payment_id = _single_id(self.call("account.payment", "create",
                                          vals_list=[{k: v for k, v in values.items() if v is not None}]))
        return self._payment_outcome(payment_id, "draft", created=True)

    def _payments_with_reference(self, reference: str, payment_type: str | None = None) -> list[dict[str, Any]]:
        """The payments whose memo or payment reference is a payments-platform id, oldest first."""
        domain: list[Any] = ["|", ["memo", "=", reference], ["payment_reference", "=", reference]]
        if payment_type:
            domain = [["payment_type", "=", payment_type], *domain]
        return list(self.call("account.payment", "search_read", domain=domain,
                              fields=["state", "amount", "payment_type"], order="id", limit=2))

    def _refund_payment(self, write: IntendedWrite) -> DeliveryOutcome:
        """Record a refund of a customer's payment once: a credit note reversing the invoice for the refunded
        amount, and an outbound customer payment (the money sent back) that settles it.

        The refund id is the outbound payment's ``memo`` and ``payment_reference``; the write's key is the
        credit note's ``ref``. Both are looked up before they are created, so a crash between the two calls
        is closed by the next delivery (the credit note is found, the payment made). A refund of the
        invoice's whole total copies its lines, so taxes reverse exactly; a partial one is one line for the
        amount. The invoice stays ``paid`` after a partial refund and becomes ``reversed`` once its credit
        notes are paid out for its whole total.
        """
        payload = write.payload
        refund_ref = str(payload.get("refund_id") or "")
        if not refund_ref or not payload.get("invoice_id") or payload.get("amount") is None:
            raise PermanentError("a refund needs payload.invoice_id, payload.refund_id and payload.amount",
                                 code="invalid_payload")
        found = self._payments_with_reference(refund_ref, "outbound")
        if found:
            return self._refund_outcome(found[0]["id"], found[0]["state"], created=False)
        invoice = self._read_move(int(payload["invoice_id"]))
        if invoice["state"] != "posted" or invoice["move_type"] != "out_invoice":
            raise PermanentError(f"account.move {invoice['id']} is a {invoice['state']} {invoice['move_type']}: "
                                 "refunds reverse posted customer invoices", code="invoice_not_posted")
        amount = str(payload["amount"])
        credit = self._move_by_ref(write.idempotency_key, "out_refund")
        if credit is None:
            whole = float(amount) == float(invoice["amount_total"])
            lines = self._copied_lines(invoice["id"]) if whole else [
                {"name": f"Refund {refund_ref}", "quantity": 1, "price_unit": float(amount)}]
            credit = self._create_credit_note(invoice, write.idempotency_key, payload.get("date"), lines)
        if credit["state"] == "draft":
            self.call("account.move", "action_post", ids=[credit["id"]])
        values = {
            "payment_type": "outbound",
            "partner_type": "customer",
            "partner_id": _m2o(invoice["partner_id"]),
            "amount": amount,
            "currency_id": _m2o(invoice["currency_id"]),
            "date": payload.get("date"),
            "memo": refund_ref,
            "payment_reference": refund_ref,
            "invoice_ids": [[6, 0, [credit["id"]]]],
        }
        payment_id = _single_id(self.call("account.payment", "create",
                                          vals_list=[{k: v for k, v in values.items() if v is not None}]))
        return self._refund_outcome(payment_id, "draft", created=True)

    def _refund_outcome(self, payment_id: int, state: str, *, created: bool) -> DeliveryOutcome:
        outcome = self._payment_outcome(payment_id, state, created=created)
        credit_notes = self.call("account.move", "read", ids=[int(i) for i in outcome.detail["invoices"]],
                                 fields=["name", "reversed_entry_id"]) if outcome.detail["invoices"] else []
        reversed_ids = [_m2o(c["reversed_entry_id"]) for c in credit_notes if c.get("reversed_entry_id")]
        invoices = self.call("account.move", "read", ids=reversed_ids, fields=["payment_state"]) if reversed_ids else []
        return DeliveryOutcome(outcome.target_id, created, {
            **outcome.detail, "credit_notes": [c["name"] for c in credit_notes],
            "reversed_invoices": {str(i["id"]): i["payment_state"] for i in invoices},
        })

    def _chargeback(self, write: IntendedWrite) -> DeliveryOutcome:
        """Take back a receipt the customer's bank reversed (a lost dispute), once.

        The receipt (found by the payments platform's id, as :meth:`_register_payment` recorded it) is
        cancelled, which in Odoo first resets it to draft and so undoes its reconciliation: the invoice is
        open again for finance to chase or write off. One call; a receipt found cancelled means an earlier
        delivery did it. A dispute for less than the receipt is parked: taking back part of a receipt is a
        person's decision.
        """
        payload = write.payload
        receipt_ref = str(payload.get("payment_id") or "")
        if not receipt_ref or payload.get("amount") is None:
            raise PermanentError("a chargeback needs payload.payment_id and payload.amount", code="invalid_payload")
        found = self._payments_with_reference(receipt_ref, "inbound")
        if not found:
            raise PermanentError(f"no ERP receipt with reference {receipt_ref!r} to take back",
                                 code="payment_not_found")
        receipt = found[0]
        created = receipt["state"] != "canceled"
        if created:
            if float(str(payload["amount"])) < float(receipt["amount"]):
                raise PermanentError(f"dispute {payload.get('dispute_id')} takes back {payload['amount']} of a "
                                     f"{receipt['amount']} receipt: resolve by hand", code="partial_chargeback")
            invoice_ids = self.call("account.payment", "read", ids=[receipt["id"]],
                                    fields=["reconciled_invoice_ids"])[0]["reconciled_invoice_ids"]
            self.call("account.payment", "action_cancel", ids=[receipt["id"]])
        else:
            invoice_ids = [int(payload["invoice_id"])] if payload.get("invoice_id") else []
        invoices = self.call("account.move", "read", ids=invoice_ids, fields=["payment_state"]) if invoice_ids else []
        return DeliveryOutcome(str(receipt["id"]), created, {
            "state": "canceled", "dispute_id": payload.get("dispute_id"),
            "invoices": {str(i["id"]): i["payment_state"] for i in invoices},
        })

    def _payment_outcome(self, payment_id: int, state: str, *, created: bool) -> DeliveryOutcome:
        if state == "draft":
            self.call("account.payment", "action_post", ids=[payment_id])
        payment = self.call("account.payment", "read", ids=[payment_id],
                            fields=["name", "state", "amount", "invoice_ids"])[0]
        invoices = self.call("account.move", "read", ids=payment["invoice_ids"],
                             fields=["payment_state", "amount_residual"]) if payment["invoice_ids"] else []
        return DeliveryOutcome(str(payment_id), created, {
            "name": payment["name"], "state": payment["state"], "amount": payment["amount"],
            "invoices": {str(i["id"]): i["payment_state"] for i in invoices},
        })

    # ---- reference data ------------------------------------------------------------------------------

    def _currency_id(self, code: str) -> int:
        code = code.upper()
        if code not in self._currency_ids:
            ids = self.call("res.currency", "search", domain=[["name", "=", code]], limit=1, context=ALL_RECORDS)
            if not ids:
                raise PermanentError(f"the ERP has no currency {code!r}", code="unknown_currency")
            self._currency_ids[code] = ids[0]
        return self._currency_ids[code]

    def _country_id(self, code: str) -> int:
        code = code.upper()
        if code not in self._country_ids:
            ids = self.call("res.country", "search", domain=[["code", "=", code]], limit=1)
            if not ids:
                raise PermanentError(f"the ERP has no country {code!r}", code="unknown_country")
            self._country_ids[code] = ids[0]
        return self._country_ids[code]

    def _product_id(self, default_code: str) -> int:
        if default_code in self._product_ids:
            return self._product_ids[default_code]
        ids = self.call("product.product", "search", domain=[["default_code", "=", default_code]], limit=2,
                        context=ALL_RECORDS)
        if len(ids) != 1:
            problem = "no product" if not ids else "several products"
            raise PermanentError(f"the ERP has {problem} with internal reference {default_code!r}",
                                 code="unknown_product" if not ids else "ambiguous_product")
        self._product_ids[default_code] = int(ids[0])
        return self._product_ids[default_code]


def move_outcome(move: dict[str, Any], *, created: bool, posted_now: bool) -> DeliveryOutcome:
    """The outcome of an invoice or credit note write, from the entry read with :data:`MOVE_FIELDS`."""
    return DeliveryOutcome(str(move["id"]), created, {
        "name": move["name"], "state": move["state"], "move_type": move["move_type"],
        "amount_total": move["amount_total"], "amount_residual": move["amount_residual"],
        "payment_state": move["payment_state"], "currency": _m2o_name(move["currency_id"]),
        "partner_id": _m2o(move["partner_id"]), "posted_now": posted_now,
    })


def _partner_xml_id(payload: dict[str, Any]) -> str:
    return f"{EXTERNAL_ID_MODULE}.{partner_external_name(str(payload.get('salesforce_account_id')))}"


def _single_id(created: Any) -> int:
    """``create`` answers a list of ids for a list of values (a bare id from older servers)."""
    return int(created[0] if isinstance(created, list) else created)


def _m2o(value: Any) -> Any:
    """The id of a many2one read as ``[id, name]`` (``False`` stays ``False``)."""
    return value[0] if isinstance(value, list | tuple) and value else value


def _m2o_name(value: Any) -> Any:
    return value[1] if isinstance(value, list | tuple) and len(value) > 1 else value
