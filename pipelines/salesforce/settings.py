"""Constants of the Salesforce source: which objects, which columns are PII, paging, thresholds, windows.

Adding an object is one line in :data:`OBJECTS` (plus its PII columns, if it has any): its columns come
from ``describe``, so custom fields need no code.
"""

from __future__ import annotations

import datetime as dt

OBJECTS: tuple[str, ...] = (
    "Account",
    "Contact",
    "Opportunity",
    "OpportunityLineItem",
    "Product2",
    "Invoice__c",
    "Subscription__c",
)
"""sObjects loaded into ``raw_salesforce``, one table each (dlt's snake_case of the name: ``invoice_c``)."""

PII_FIELDS: dict[str, dict[str, str]] = {
    "Account": {
        "Phone": "phone",
        "Fax": "phone",
        "BillingStreet": "address",
        "ShippingStreet": "address",
        "VAT_Number__c": "tax_id",
    },
    "Contact": {
        "FirstName": "name",
        "LastName": "name",
        "Name": "name",
        "Email": "email",
        "Phone": "phone",
        "MobilePhone": "phone",
        "HomePhone": "phone",
        "OtherPhone": "phone",
        "Fax": "phone",
        "MailingStreet": "address",
        "OtherStreet": "address",
    },
}
"""Field -> kind (see :mod:`revloop.crypto`) per object. Each becomes ``<column>_enc`` + ``<column>_hash``;
the plaintext column never reaches the warehouse. Fields an org does not have are simply absent.
Company names (``Account.Name``) are not personal data and stay plain."""

CURSOR_FIELD = "SystemModstamp"
"""Moves on every change, user or system (``LastModifiedDate`` can be set by privileged users)."""

OVERLAP = dt.timedelta(minutes=5)
"""Each run re-reads ``SystemModstamp >= last cursor - OVERLAP``: a transaction stamped before the previous
run's cursor but committed after that run read is still caught. Re-read rows collapse in the merge."""

RECENT_VERSIONS_CAP = 5_000
"""At most this many ``(Id, SystemModstamp)`` versions of the overlap window are kept in the state to skip
unchanged re-reads (see ``window.py``); a window holding more is merged again, as without them."""

BULK_THRESHOLD = 20_000
"""Bulk API 2.0 when ``SELECT COUNT()`` of a run's filter reaches this (backfills, large increments); REST
``queryAll`` below it, where a job's fixed cost (create, poll, fetch) would dominate."""

BULK_PAGE_RECORDS = 10_000
"""``maxRecords`` per Bulk 2.0 results page. Each page exists several times at once (the response text, its
bytes, the CSV columns, the typed table, the page read ahead), so a 50,000-record page of a wide object
cost ~200 MiB of peak memory in a large backfill; 10,000 cut the load's peak by 30 % for the same time
(a page is one more request of ~30 ms)."""

BULK_POLL_SECONDS = 0.25
"""First wait before polling a Bulk 2.0 job (simple-salesforce backs off from there, up to 2 s)."""

REST_BATCH_SIZE = 2_000
"""``Sforce-Query-Options: batchSize`` for REST queries (Salesforce's maximum)."""

HTTP_TIMEOUT_SECONDS = (10.0, 300.0)
"""Connect and read timeouts of every call; a timeout counts as a transient failure and is retried."""

SCHEMA_CHANGES_TABLE = "_revloop_schema_changes"
"""Type changes and removed fields found by comparing ``describe`` with the snapshot of the previous run."""
