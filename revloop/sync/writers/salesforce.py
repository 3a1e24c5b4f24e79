"""Salesforce writer: ``Invoice__c`` upserts (single and by sObject Collections), renewal Opportunities,
Account master data; simple-salesforce on the write-capable connected app.

Payloads (``IntendedWrite.payload``) by ``(target_object, operation)``:

- ``("Invoice__c", "upsert")``: ``{"fields": {...}, "Revloop_Key__c"?: str}``. The record's external id is
  ``Revloop_Key__c`` when given (several writes, e.g. the invoice and later its payment status, address
  one record), else the write's idempotency key.
- ``("Opportunity", "create")``: ``{"subscription_id": "a0C...", "fields": {"Name", "AccountId",
  "StageName", "CloseDate", "Amount", "Type": "Renewal", ...}}``.
- ``("Account", "update")``: ``{"id": "001...", "fields": {...}}``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any, Protocol
from urllib.parse import quote

import requests
from simple_salesforce import Salesforce, format_soql
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from revloop.connectors.salesforce import SalesforceAuthError, client_for, request_token
from revloop.http import pinned_session
from revloop.settings import SalesforceSettings
from revloop.sync.model import (
    DeliveryError,
    DeliveryOutcome,
    IntendedWrite,
    PermanentError,
    RateLimited,
    RetryableError,
    SessionExpired,
)
from revloop.token_store import IssuedToken, TokenChainRevoked

logger = logging.getLogger(__name__)

COLLECTION_SIZE = 200
"""sObject Collections take at most 200 records per call (one API call for all of them)."""
INVOICE_KEY_FIELD = "Revloop_Key__c"
RENEWAL_MARKER = "Revloop renewal key: "
"""Written into a renewal Opportunity's Description: Opportunity has no external id in our org, so this is
how a later delivery recognises the Opportunity an earlier one created (see :meth:`_create_renewal`)."""
TRANSIENT_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "UNKNOWN_EXCEPTION"})
RATE_LIMIT_CODES = frozenset({"REQUEST_LIMIT_EXCEEDED"})
_RETRY_AFTER_STATUSES = frozenset({403, 429, 503})


class TokenSource(Protocol):
    """Where access tokens come from: :class:`revloop.connectors.salesforce.SharedTokens` in production."""

    def current(self) -> IssuedToken: ...

    def replace(self, rejected_access_token: str) -> IssuedToken: ...


class ClientCredentialsTokens:
    """Client-credentials tokens kept in memory, for a process without the warehouse's token store."""

    def __init__(self, settings: SalesforceSettings, session: requests.Session) -> None:
        self.settings = settings
        self.session = session
        self._token: IssuedToken | None = None

    def _issue(self) -> IssuedToken:
        token = request_token(self.settings, session=self.session)
        return IssuedToken(token.access_token, token.instance_url, 0.0)

    def current(self) -> IssuedToken:
        if self._token is None:
            self._token = self._issue()
        return self._token

    def replace(self, rejected_access_token: str) -> IssuedToken:
        if self._token is None or self._token.access_token == rejected_access_token:
            self._token = self._issue()
        return self._token


def error_items(exc: SalesforceError) -> list[dict[str, Any]]:
    """The ``[{"errorCode", "message", "fields"}]`` body of a Salesforce error response."""
    content = exc.content
    if isinstance(content, dict):
        content = [content]
    return [item for item in content if isinstance(item, dict)] if isinstance(content, list) else []


def classify(exc: BaseException, retry_after_seconds: float | None = None) -> DeliveryError:
    """The delivery error for an exception raised by simple-salesforce, requests or the token endpoint."""
    if isinstance(exc, DeliveryError):
        return exc
    if isinstance(exc, requests.ConnectionError | requests.Timeout | requests.exceptions.ChunkedEncodingError):
        return RetryableError(f"salesforce unreachable: {type(exc).__name__}: {exc}", code="connection_error")
    if isinstance(exc, TokenChainRevoked):
        return PermanentError(str(exc), code="token_chain_revoked")
    if isinstance(exc, SalesforceAuthError):
        if exc.transient:
            return RetryableError(f"salesforce token endpoint: {exc}", code=exc.error, http_status=exc.status)
        return PermanentError(f"salesforce refused the connected app's credentials: {exc}", code=exc.error,
                              http_status=exc.status)
    if not isinstance(exc, SalesforceError):
        raise exc  # a programming error: let it surface rather than park writes under a wrong reason
    items = error_items(exc)
    code = str(items[0].get("errorCode") or items[0].get("statusCode")) if items else f"HTTP_{exc.status}"
    message = "; ".join(str(i.get("message")) for i in items) if items else str(exc.content)[:500]
    text = f"{code}: {message}"
    if isinstance(exc, SalesforceExpiredSession):
        return SessionExpired(text, code=code, http_status=exc.status)
    if code in RATE_LIMIT_CODES or exc.status == 429:
        return RateLimited(text, retry_after_seconds=retry_after_seconds, code=code, http_status=exc.status)
    if code in TRANSIENT_CODES or exc.status >= 500:
        return RetryableError(text, code=code, http_status=exc.status)
    if isinstance(exc, SalesforceMoreThanOneRecord):
        return PermanentError(f"several records match the external id: {exc.content!r}", code="MULTIPLE_CHOICES",
                              http_status=300)
    if isinstance(exc, SalesforceMalformedRequest | SalesforceRefusedRequest | SalesforceResourceNotFound):
        return PermanentError(text, code=code, http_status=exc.status)
    return PermanentError(text, code=code, http_status=exc.status)


def _record_error(errors: list[dict[str, Any]]) -> DeliveryError:
    """The delivery error of one record's ``errors`` in an sObject Collections answer."""
    code = str(errors[0].get("statusCode") or errors[0].get("errorCode") or "UNKNOWN") if errors else "UNKNOWN"
    message = "; ".join(str(e.get("message")) for e in errors) or "no error detail"
    if code in TRANSIENT_CODES:
        return RetryableError(f"{code}: {message}", code=code)
    return PermanentError(f"{code}: {message}", code=code, http_status=400)


class SalesforceWriter:
    """Writes to one Salesforce org; raises :class:`DeliveryError` subclasses and never retries by itself
    (the delivery worker owns backoff, waiting for the API budget and the one session refresh)."""

    system = "salesforce"

    def __init__(
        self,
        settings: SalesforceSettings,
        tokens: TokenSource | None = None,
        *,
        session: requests.Session | None = None,
    ) -> None:
        if not settings.instance_url:
            raise ValueError("REVLOOP_SALESFORCE_INSTANCE_URL is not set")
        self.settings = settings
        self.http = session or pinned_session(settings.instance_url, settings.ca_file)
        self._retry_after = threading.local()
        self.http.hooks["response"].append(self._note_retry_after)
        self.tokens: TokenSource = tokens or ClientCredentialsTokens(settings, self.http)
        self._sf: Salesforce | None = None

    # ---- plumbing ------------------------------------------------------------------------------------

    def _note_retry_after(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Keep ``Retry-After`` of a refused response: simple-salesforce's exceptions drop the headers."""
        if response.status_code in _RETRY_AFTER_STATUSES and "Retry-After" in response.headers:
            try:
                self._retry_after.seconds = float(response.headers["Retry-After"])
            except ValueError:
                self._retry_after.seconds = None

    @property
    def sf(self) -> Salesforce:
        if self._sf is None:
            try:
                self._sf = client_for(self.tokens.current(), self.settings, self.http)
            except Exception as exc:
                raise classify(exc) from exc
        return self._sf

    def _type(self, sobject: str) -> Any:
        """simple-salesforce's ``SFType`` of ``sobject`` (its ``__getattr__`` is typed too loosely to call)."""
        return getattr(self.sf, sobject)

    def refresh_credentials(self) -> None:
        """Replace the rejected access token (or take the one another process already obtained)."""
        rejected = self._sf.session_id if self._sf is not None else ""
        try:
            self._sf = client_for(self.tokens.replace(rejected or ""), self.settings, self.http)
        except Exception as exc:
            raise classify(exc) from exc

    def _classified(self, exc: BaseException) -> DeliveryError:
        seconds = getattr(self._retry_after, "seconds", None)
        self._retry_after.seconds = None
        return classify(exc, seconds)

    # ---- delivery ------------------------------------------------------------------------------------

    def deliver(self, write: IntendedWrite) -> DeliveryOutcome:
        """Apply one write; see the module docstring for the operations and their payloads."""
        handler = {
            ("Invoice__c", "upsert"): self._upsert_invoice,
            ("Opportunity", "create"): self._create_renewal,
            ("Account", "update"): self._update_account,
        }.get((write.target_object, write.operation))
        if handler is None:
            raise PermanentError(f"salesforce writer has no operation {write.operation} on {write.target_object}",
                                 code="unsupported_operation")
        try:
            return handler(write)
        except DeliveryError:
            raise
        except Exception as exc:
            raise self._classified(exc) from exc

    def deliver_many(self, writes: Sequence[IntendedWrite]) -> list[DeliveryOutcome | DeliveryError]:
        """Deliver ``writes``, ``Invoice__c`` upserts through sObject Collections (200 per call).

        Returns one result per write, in order: its outcome, or the error that write alone met (a record's
        own validation error, or the error of the whole call it travelled in). Other operations are
        delivered one by one.
        """
        results: list[DeliveryOutcome | DeliveryError | None] = [None] * len(writes)
        batchable: list[int] = []
        for index, write in enumerate(writes):
            if (write.target_object, write.operation) == ("Invoice__c", "upsert"):
                batchable.append(index)
                continue
            try:
                results[index] = self.deliver(write)
            except DeliveryError as error:
                results[index] = error
        for chunk in _chunks_of_distinct_keys(batchable, writes):
            for index, result in zip(chunk, self._upsert_collection([writes[i] for i in chunk]), strict=True):
                results[index] = result
        return [r for r in results if r is not None]

    # ---- Invoice__c ----------------------------------------------------------------------------------

    def _upsert_invoice(self, write: IntendedWrite) -> DeliveryOutcome:
        key = invoice_key(write)
        fields = _fields(write)
        response = self._type("Invoice__c").upsert(f"{INVOICE_KEY_FIELD}/{quote(key, safe='')}", fields,
                                             raw_response=True)
        body = response.json() if response.content else {}
        record_id = body.get("id") or self._invoice_id(key)
        created = bool(body.get("created", response.status_code == 201))
        return DeliveryOutcome(record_id, created, {"revloop_key": key})

    def _invoice_id(self, key: str) -> str:
        """The Id behind an upsert answered ``204 No Content`` (older API versions send no body)."""
        soql = format_soql("SELECT Id FROM Invoice__c WHERE Revloop_Key__c = {}", key)
        records = self.sf.query(soql)["records"]
        if not records:
            raise RetryableError(f"Invoice__c {key} was upserted but cannot be read back yet", code="not_visible")
        return str(records[0]["Id"])

    def _upsert_collection(self, writes: list[IntendedWrite]) -> list[DeliveryOutcome | DeliveryError]:
        records = [{"attributes": {"type": "Invoice__c"}, **_fields(w), INVOICE_KEY_FIELD: invoice_key(w)}
                   for w in writes]
        try:
            answer = self.sf.restful(f"composite/sobjects/Invoice__c/{INVOICE_KEY_FIELD}", method="PATCH",
                                     json={"allOrNone": False, "records": records})
        except Exception as exc:  # the whole call failed: each write of the chunk meets that error
            error = self._classified(exc)
            return [error] * len(writes)
        if not isinstance(answer, list) or len(answer) != len(writes):
            error = RetryableError(f"sObject Collections answered {len(answer or [])} results for "
                                   f"{len(writes)} records", code="unexpected_response")
            return [error] * len(writes)
        results: list[DeliveryOutcome | DeliveryError] = []
        for write, item in zip(writes, answer, strict=True):
            if item.get("success"):
                results.append(DeliveryOutcome(str(item["id"]), bool(item.get("created")),
                                               {"revloop_key": invoice_key(write)}))
            else:
                results.append(_record_error(item.get("errors") or []))
        return results

    # ---- renewal Opportunity -------------------------------------------------------------------------

    def _create_renewal(self, write: IntendedWrite) -> DeliveryOutcome:
        """Create the renewal Opportunity of a subscription once, and link it from the subscription.

        Opportunity has no external id here, so creation cannot be an upsert. Two calls are needed
        (create, then link) and a crash can fall between them, or between Salesforce's commit and our
        bookkeeping. Each delivery therefore looks before it creates: first the subscription's own
        ``Renewal_Opportunity__c`` link (set once a delivery completed), then the account's renewal
        Opportunities carrying this write's marker in their Description (found when a delivery created
        the Opportunity but did not get to link it). Only when both are empty is an Opportunity created.
        """
        payload = write.payload
        subscription_id = payload.get("subscription_id")
        fields = dict(_fields(write))
        account_id = fields.get("AccountId")
        if not subscription_id or not account_id:
            raise PermanentError("a renewal needs payload.subscription_id and fields.AccountId",
                                 code="invalid_payload")
        subscription = self._type("Subscription__c").get(subscription_id)
        linked = subscription.get("Renewal_Opportunity__c")
        if linked and self._opportunity_exists(linked):
            return DeliveryOutcome(linked, False, {"subscription_id": subscription_id, "found_by": "link"})
        marker = f"{RENEWAL_MARKER}{write.idempotency_key}"
        found = self._renewal_by_marker(account_id, marker)
        if found is not None:
            self._type("Subscription__c").update(subscription_id, {"Renewal_Opportunity__c": found})
            return DeliveryOutcome(found, False, {"subscription_id": subscription_id, "found_by": "marker"})
        description = fields.get("Description")
        fields["Description"] = f"{description}\n\n{marker}" if description else marker
        fields.setdefault("Type", "Renewal")
        created = self._type("Opportunity").create(fields)
        opportunity_id = str(created["id"])
        self._type("Subscription__c").update(subscription_id, {"Renewal_Opportunity__c": opportunity_id})
        return DeliveryOutcome(opportunity_id, True, {"subscription_id": subscription_id})

    def _opportunity_exists(self, opportunity_id: str) -> bool:
        soql = format_soql("SELECT Id FROM Opportunity WHERE Id = {}", opportunity_id)
        return bool(self.sf.query(soql)["records"])

    def _renewal_by_marker(self, account_id: str, marker: str) -> str | None:
        # Description is a long text area, which SOQL cannot filter: narrow by account and type, match here.
        soql = format_soql("SELECT Id, Description FROM Opportunity WHERE AccountId = {} AND Type = 'Renewal' "
                           "ORDER BY CreatedDate", account_id)
        for record in self.sf.query_all(soql)["records"]:
            if marker in (record.get("Description") or "").splitlines():
                return str(record["Id"])
        return None

    # ---- Account -------------------------------------------------------------------------------------

    def _update_account(self, write: IntendedWrite) -> DeliveryOutcome:
        account_id = write.payload.get("id")
        if not account_id:
            raise PermanentError("an Account update needs payload.id", code="invalid_payload")
        self._type("Account").update(account_id, _fields(write))
        return DeliveryOutcome(str(account_id), False, {"fields": sorted(_fields(write))})


def invoice_key(write: IntendedWrite) -> str:
    """The ``Revloop_Key__c`` of the ``Invoice__c`` record a write addresses."""
    return str(write.payload.get(INVOICE_KEY_FIELD) or write.idempotency_key)


def _fields(write: IntendedWrite) -> dict[str, Any]:
    fields = write.payload.get("fields")
    if not isinstance(fields, dict):
        raise PermanentError("payload.fields must be an object of Salesforce field values", code="invalid_payload")
    return {k: v for k, v in fields.items() if k != INVOICE_KEY_FIELD}


def _chunks_of_distinct_keys(indexes: list[int], writes: Sequence[IntendedWrite]) -> list[list[int]]:
    """Collection chunks of at most 200 records, no two for the same external id in one chunk (Salesforce
    refuses a duplicated external id within a request); later writes for a key go to later chunks, in order."""
    chunks: list[list[int]] = []
    pending = list(indexes)
    while pending:
        chunk: list[int] = []
        keys: set[str] = set()
        deferred: list[int] = []
        deferred_keys: set[str] = set()
        for index in pending:
            key = invoice_key(writes[index])
            if len(chunk) < COLLECTION_SIZE and key not in keys and key not in deferred_keys:
                chunk.append(index)
                keys.add(key)
            else:
                deferred.append(index)
                deferred_keys.add(key)
        chunks.append(chunk)
        pending = deferred
    return chunks
