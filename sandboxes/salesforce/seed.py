"""Filling the store from the book of business, streaming and in large batches."""

from __future__ import annotations

import datetime as dt
import logging
import time
from decimal import Decimal
from typing import Any

from sandboxes import book
from sandboxes.salesforce.schema import CLOSED_STAGES, OPPORTUNITY_STAGES, SOBJECTS, WON_STAGES, SObject
from sandboxes.salesforce.store import SalesforceStore
from sandboxes.salesforce.values import coerce, format_datetime, now_stamp

logger = logging.getLogger(__name__)

BATCH_ROWS = 20_000
MIGRATION_USER_ID = book.salesforce_id("005", 0)
"""The user that loaded the seeded records (the org's data migration)."""


def _stamp(moment: dt.datetime) -> str:
    return format_datetime(moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC))


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(9, 0), dt.UTC)


def _money(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


class _Batches:
    """Rows per object, written with ``executemany`` whenever a batch fills up."""

    def __init__(self, store: SalesforceStore) -> None:
        self.store = store
        self.columns = {name: list(o.fields) for name, o in SOBJECTS.items()}
        self.rows: dict[str, list[tuple[Any, ...]]] = {name: [] for name in SOBJECTS}
        self.counts: dict[str, int] = dict.fromkeys(SOBJECTS, 0)

    def add(self, object_name: str, created: str, modified: str, **values: Any) -> None:
        values.update(
            {
                "IsDeleted": 0,
                "CreatedDate": created,
                "LastModifiedDate": modified,
                "SystemModstamp": modified,
                "CreatedById": MIGRATION_USER_ID,
                "LastModifiedById": MIGRATION_USER_ID,
            }
        )
        self.rows[object_name].append(tuple(values.get(c) for c in self.columns[object_name]))
        if len(self.rows[object_name]) >= BATCH_ROWS:
            self.flush(object_name)

    def flush(self, object_name: str | None = None) -> None:
        for name in [object_name] if object_name else list(self.rows):
            if self.rows[name]:
                self.store.insert_many(SOBJECTS[name], self.columns[name], self.rows[name])
                self.counts[name] += len(self.rows[name])
                self.rows[name] = []


def seed_store(store: SalesforceStore, seed: int, scale: str, today: dt.date) -> dict[str, int]:
    """Load the book's Salesforce side for ``seed``/``scale``; ``today`` is kept as the book's anchor date."""
    started = time.monotonic()
    batches = _Batches(store)
    products = book.products(seed)
    with store.transaction():
        store.set_meta("seeded_on", today.isoformat())
        store.set_meta("seed", str(seed))
        store.set_meta("scale", scale)
        catalogue_date = _stamp(_midnight(today - dt.timedelta(days=3 * 365)))
        for product in products:
            batches.add(
                "Product2",
                catalogue_date,
                catalogue_date,
                Id=product.sf_product_id,
                Name=product.name,
                ProductCode=product.code,
                Family=product.family,
                IsActive=1,
                CurrencyIsoCode="USD",
                ERP_Product_Id__c=str(product.erp_product_id),
            )
        for company in book.iter_companies(seed, scale, today):
            _add_company(batches, company, products)
        batches.flush()
    logger.info("seeded salesforce (%s, seed %s) in %.1fs: %s", scale, seed, time.monotonic() - started, batches.counts)
    return batches.counts


def _add_company(batches: _Batches, company: book.Company, products: tuple[book.Product, ...]) -> None:
    created, modified = _stamp(company.created_at), _stamp(company.last_modified_at)
    account = {
        "Name": company.name,
        "Industry": company.industry,
        "BillingStreet": company.street,
        "BillingCity": company.city,
        "BillingPostalCode": company.postal_code,
        "BillingCountry": company.country,
        "Phone": company.phone,
        "Website": company.website,
        "CurrencyIsoCode": company.currency,
        "VAT_Number__c": company.vat,
        "Type": "Customer" if any(d.is_won for d in company.deals) else "Prospect",
    }
    batches.add(
        "Account",
        created,
        modified,
        Id=company.sf_account_id,
        AccountNumber=company.key,
        ERP_Partner_Id__c=None if company.erp_partner_id is None else str(company.erp_partner_id),
        **account,
    )
    if company.duplicate_sf_account_id:
        # Someone created the customer again later instead of finding the existing Account.
        batches.add("Account", modified, modified, Id=company.duplicate_sf_account_id, **account)
    for person in company.contacts:
        stamp = _stamp(person.created_at)
        batches.add(
            "Contact",
            stamp,
            stamp,
            Id=person.sf_contact_id,
            FirstName=person.first_name,
            LastName=person.last_name,
            Name=f"{person.first_name} {person.last_name}".strip(),
            Email=person.email,
            Phone=person.phone,
            Title=person.title,
            AccountId=company.sf_account_id,
            CurrencyIsoCode=company.currency,
        )
    for deal in company.deals:
        _add_deal(batches, company, deal, products)
    for subscription in company.subscriptions:
        stamp = _stamp(_midnight(subscription.start_date))
        batches.add(
            "Subscription__c",
            stamp,
            stamp,
            Id=subscription.sf_subscription_id,
            Name=f"{company.name[:60]} {subscription.start_date:%Y-%m}",
            Account__c=company.sf_account_id,
            Start_Date__c=subscription.start_date.isoformat(),
            End_Date__c=subscription.end_date.isoformat(),
            Status__c=subscription.status,
            Amount__c=_money(subscription.amount),
            CurrencyIsoCode=subscription.currency,
            Renewal_Opportunity__c=subscription.renewal_opportunity_id,
        )


def _add_deal(batches: _Batches, company: book.Company, deal: book.Deal, products: tuple[book.Product, ...]) -> None:
    created, modified = _stamp(deal.created_at), _stamp(deal.last_modified_at)
    batches.add(
        "Opportunity",
        created,
        modified,
        Id=deal.sf_opportunity_id,
        Name=deal.name,
        AccountId=company.sf_account_id,
        StageName=deal.stage,
        Amount=_money(deal.amount),
        CurrencyIsoCode=deal.currency,
        CloseDate=deal.close_date.isoformat(),
        IsClosed=int(deal.stage in CLOSED_STAGES),
        IsWon=int(deal.stage in WON_STAGES),
        Probability=float(OPPORTUNITY_STAGES.get(deal.stage, 10)),
        Type=deal.type,
    )
    for line in deal.lines:
        product = products[line.product_index]
        unit_price = float(line.unit_price)
        batches.add(
            "OpportunityLineItem",
            created,
            created,
            Id=line.sf_line_id,
            OpportunityId=deal.sf_opportunity_id,
            Product2Id=product.sf_product_id,
            Quantity=float(line.quantity),
            UnitPrice=unit_price,
            TotalPrice=unit_price * line.quantity,
            Name=f"{deal.name} {product.name}"[:376],
            CurrencyIsoCode=deal.currency,
        )
    invoice = deal.invoice
    if invoice is None or invoice.sf_invoice_id is None:
        return
    invoice_created = _midnight(invoice.invoice_date)
    invoice_modified = max(invoice_created, invoice.paid_at) if invoice.paid_at else invoice_created
    batches.add(
        "Invoice__c",
        _stamp(invoice_created),
        _stamp(invoice_modified),
        Id=invoice.sf_invoice_id,
        Name=invoice.erp_number,
        Opportunity__c=deal.sf_opportunity_id,
        Account__c=company.sf_account_id,
        ERP_Invoice_Id__c=str(invoice.erp_move_id),
        ERP_Invoice_Number__c=invoice.erp_number,
        Invoice_Date__c=invoice.invoice_date.isoformat(),
        Due_Date__c=invoice.due_date.isoformat(),
        Amount__c=_money(invoice.amount_total),
        CurrencyIsoCode=invoice.currency,
        Status__c=invoice.sf_status,
        Payment_Status__c=invoice.sf_payment_status,
        Paid_At__c=_stamp(invoice.paid_at) if invoice.paid_at else None,
        Revloop_Key__c=invoice.revloop_key,
    )


def bulk_insert(store: SalesforceStore, sobject: SObject, count: int, fields: dict[str, Any]) -> int:
    """Insert ``count`` records whose values come from ``fields``, ``{n}`` in a text value standing for the row number.

    For volume tests: values are checked against the field types once, but references are not followed.
    """
    if not 0 < count <= 2_000_000:
        raise ValueError("count must be between 1 and 2,000,000")
    for name in fields:
        field = sobject.field(name)
        if field is None or not field.createable:
            raise ValueError(f"{sobject.name}.{name} is not a createable field")
    stamp = now_stamp()
    batches = _Batches(store)
    with store.transaction():
        first = store.allocate_numbers(sobject, count)
        for n in range(count):
            values: dict[str, Any] = {}
            for name, raw in fields.items():
                field = sobject.field(name)
                assert field is not None
                value = raw.replace("{n}", str(n)) if isinstance(raw, str) else raw
                values[field.name] = coerce(field, value)
            _derive_simple(sobject, values)
            batches.add(sobject.name, stamp, stamp, Id=book.salesforce_id(sobject.key_prefix, first + n), **values)
        batches.flush()
    return count


def _derive_simple(sobject: SObject, values: dict[str, Any]) -> None:
    """The derived fields the record service would set, for objects whose derivation needs no lookups."""
    for field in sobject.fields.values():
        if field.name not in values and field.default is not None and field.createable:
            values[field.name] = coerce(field, field.default)
    if sobject.name == "Opportunity":
        stage = values.get("StageName")
        values["IsClosed"], values["IsWon"] = int(stage in CLOSED_STAGES), int(stage in WON_STAGES)
        values.setdefault("Probability", float(OPPORTUNITY_STAGES.get(stage or "", 10)))
    elif sobject.name == "Contact":
        values["Name"] = " ".join(p for p in (values.get("FirstName"), values.get("LastName")) if p)


def seeded_on(store: SalesforceStore) -> dt.date | None:
    value = store.get_meta("seeded_on")
    return dt.date.fromisoformat(value) if value else None
