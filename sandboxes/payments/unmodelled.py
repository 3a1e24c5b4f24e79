"""Standard Stripe lists this account never has anything in: payouts, coupons, issuing, files, ...

Stripe serves every one of these lists on every account, so an extractor that reads them expects
``200 {"object": "list", "data": [], ...}``, not ``Unrecognized request URL``. They are declared once in
:data:`RESOURCES`; each declaration yields a list route that validates its parameters exactly as the
modelled lists do (``limit``, cursors, ``created``, its own filters) and a retrieve route that answers
Stripe's ``resource_missing`` 404 for any id. Nested lists (``/v1/customers/{id}/tax_ids``) check their
parent first: a customer or account must exist; a parent of an unmodelled kind never does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from sandboxes.payments.errors import missing_param, no_such
from sandboxes.payments.service import Call, Raw, Service

MODELLED_PARENTS = frozenset({"customer", "account", "subscription_item"})
"""Parent kinds that are stored, so a nested list under an existing one answers 200."""


@dataclasses.dataclass(frozen=True)
class Unmodelled:
    """One list Stripe offers that this account keeps empty.

    Attributes:
        path: the list's path under ``/v1``; a nested list names its parent as ``{parent}``.
        object: Stripe's object name, used as the store kind (never written) and in 404 messages.
        filters: list parameters Stripe accepts besides ``limit``, cursors and ``created``.
        parent: the kind ``{parent}`` names, for nested lists.
        required: filters Stripe requires.
        references: filters naming another object, which must exist (``customer`` -> ``customer``).
        resource: the restricted-key permission the endpoint needs.
    """

    path: str
    object: str
    filters: tuple[str, ...] = ()
    parent: str | None = None
    required: tuple[str, ...] = ()
    references: tuple[tuple[str, str], ...] = ()
    resource: str = ""

    @property
    def permission(self) -> str:
        return self.resource or self.path.split("/{", 1)[0].replace("/", "_")


_CUSTOMER = (("customer", "customer"),)

RESOURCES: tuple[Unmodelled, ...] = (
    Unmodelled("coupons", "coupon"),
    Unmodelled("payouts", "payout", ("status", "arrival_date", "destination")),
    Unmodelled("transfers", "transfer", ("destination", "transfer_group")),
    Unmodelled("transfers/{parent}/reversals", "transfer_reversal", parent="transfer", resource="transfers"),
    Unmodelled("setup_intents", "setup_intent", ("customer", "payment_method", "attach_to_self"),
               references=_CUSTOMER),
    Unmodelled("setup_attempts", "setup_attempt", ("setup_intent",), required=("setup_intent",),
               references=(("setup_intent", "setup_intent"),), resource="setup_intents"),
    Unmodelled("payment_methods", "payment_method", ("customer", "type", "allow_redisplay"), references=_CUSTOMER),
    Unmodelled("customers/{parent}/payment_methods", "payment_method", ("type", "allow_redisplay"),
               parent="customer", resource="payment_methods"),
    Unmodelled("customers/{parent}/sources", "source", ("object",), parent="customer", resource="customers"),
    Unmodelled("customers/{parent}/bank_accounts", "bank_account", parent="customer", resource="customers"),
    Unmodelled("customers/{parent}/cards", "card", parent="customer", resource="customers"),
    Unmodelled("customers/{parent}/balance_transactions", "customer_balance_transaction", parent="customer",
               resource="customers"),
    Unmodelled("customers/{parent}/cash_balance_transactions", "customer_cash_balance_transaction",
               parent="customer", resource="customers"),
    Unmodelled("customers/{parent}/tax_ids", "tax_id", parent="customer", resource="customers"),
    Unmodelled("tax_ids", "tax_id", ("owner",)),
    Unmodelled("tax_rates", "tax_rate", ("active", "inclusive")),
    Unmodelled("credit_notes", "credit_note", ("customer", "invoice"),
               references=(("customer", "customer"), ("invoice", "invoice"))),
    Unmodelled("promotion_codes", "promotion_code", ("active", "code", "coupon", "customer"),
               references=_CUSTOMER),
    Unmodelled("shipping_rates", "shipping_rate", ("active", "currency")),
    Unmodelled("checkout/sessions", "checkout.session",
               ("customer", "customer_details", "payment_intent", "payment_link", "status", "subscription"),
               references=_CUSTOMER),
    Unmodelled("checkout/sessions/{parent}/line_items", "item", parent="checkout.session",
               resource="checkout_sessions"),
    Unmodelled("payment_links", "payment_link", ("active",)),
    Unmodelled("quotes", "quote", ("customer", "status", "test_clock"), references=_CUSTOMER),
    Unmodelled("subscription_schedules", "subscription_schedule",
               ("canceled_at", "completed_at", "customer", "released_at", "scheduled"), references=_CUSTOMER),
    Unmodelled("subscription_items/{parent}/usage_record_summaries", "usage_record_summary",
               parent="subscription_item", resource="subscription_items"),
    Unmodelled("topups", "topup", ("amount", "status")),
    Unmodelled("reviews", "review"),
    Unmodelled("radar/early_fraud_warnings", "radar.early_fraud_warning", ("charge", "payment_intent")),
    Unmodelled("radar/value_lists", "radar.value_list", ("alias", "contains")),
    Unmodelled("application_fees", "application_fee", ("charge",)),
    Unmodelled("application_fees/{parent}/refunds", "fee_refund", parent="application_fee",
               resource="application_fees"),
    Unmodelled("files", "file", ("purpose",)),
    Unmodelled("file_links", "file_link", ("expired", "file")),
    Unmodelled("issuing/authorizations", "issuing.authorization", ("card", "cardholder", "status")),
    Unmodelled("issuing/cardholders", "issuing.cardholder", ("email", "phone_number", "status", "type")),
    Unmodelled("issuing/cards", "issuing.card", ("cardholder", "exp_month", "exp_year", "last4", "status", "type")),
    Unmodelled("issuing/disputes", "issuing.dispute", ("status", "transaction")),
    Unmodelled("issuing/transactions", "issuing.transaction", ("card", "cardholder", "type")),
    Unmodelled("accounts/{parent}/external_accounts", "external_account", ("object",), parent="account",
               resource="accounts"),
    Unmodelled("accounts/{parent}/persons", "person", ("relationship",), parent="account", resource="accounts"),
    Unmodelled("accounts/{parent}/capabilities", "capability", parent="account", resource="accounts"),
)


def _check_parent(svc: Service, spec: Unmodelled, call: Call) -> str:
    """The list's own url, once its parent is known to exist (404 ``No such <parent>`` otherwise)."""
    if spec.parent is None:
        return f"/v1/{spec.path}"
    parent_id = call.path["parent"]
    if spec.parent not in MODELLED_PARENTS or svc.store.get(parent_id, spec.parent) is None:
        raise no_such(spec.parent, parent_id)
    return "/v1/" + spec.path.replace("{parent}", parent_id)


def _lister(spec: Unmodelled) -> Callable[[Service, Call], Raw]:
    def list_empty(svc: Service, call: Call) -> Raw:
        url = _check_parent(svc, spec, call)
        p = call.params
        for name in spec.required:
            if not p.has(name) or p.data[name] == "":
                raise missing_param(name)
        for name, kind in spec.references:
            object_id = p.str(name)
            if object_id is not None and svc.store.get(object_id, kind) is None:
                raise no_such(kind, object_id, name)
        # Validation and the envelope are those of every list; the page is empty because nothing is stored.
        return svc.list_page(call, spec.object, url, filters=spec.filters, label=spec.object)

    list_empty.__name__ = f"list_{spec.permission}"
    return list_empty


def _retriever(spec: Unmodelled) -> Callable[[Service, Call], Any]:
    def retrieve_missing(svc: Service, call: Call) -> Any:
        _check_parent(svc, spec, call)
        call.params.allow(())
        raise no_such(spec.object, call.path["id"])

    retrieve_missing.__name__ = f"retrieve_{spec.permission}"
    return retrieve_missing


ROUTES = [
    route
    for spec in RESOURCES
    for route in (
        ("GET", f"/v1/{spec.path}", _lister(spec), spec.permission),
        ("GET", f"/v1/{spec.path}/{{id}}", _retriever(spec), spec.permission),
    )
]
