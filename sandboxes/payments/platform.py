"""``/v1/events``, ``/v1/webhook_endpoints``, ``/v1/account(s)`` and ``/v1/balance``."""

from __future__ import annotations

import re
from typing import Any

from sandboxes.common.credentials import token
from sandboxes.payments import objects
from sandboxes.payments.errors import StripeError, invalid_param, no_such
from sandboxes.payments.service import Call, Raw, Service, diff

_EVENT_TYPE = re.compile(r"^[a-z_]+(\.[a-z_]+)*(\.\*)?$|^\*$")


def _retained_since(call: Call) -> int:
    """The oldest ``created`` the events feed still serves: the window moves on with the clock, so an event
    listed today is gone from the feed 30 days later, as in Stripe."""
    return call.now - objects.EVENT_RETENTION_SECONDS


def list_events(svc: Service, call: Call) -> Raw:
    p = call.params
    since = _retained_since(call)
    where: list[str] = ["created >= ?"]
    args: list[Any] = [since]
    for cursor in ("starting_after", "ending_before"):
        event_id = p.str(cursor)
        position = svc.store.position(event_id, "event") if event_id else None
        if event_id and position is not None and position[0] < since:
            raise no_such("event", event_id, cursor)
    event_type = p.str("type")
    types = [t for t in p.list("types") if isinstance(t, str)]
    if event_type and types:
        raise StripeError(400, "You may only specify one of these parameters: type, types.", param="types")
    if len(types) > 20:
        raise invalid_param("types", "You may only filter by up to 20 event types.")
    if event_type:
        types = [event_type]
    if types:
        clauses = []
        for pattern in types:
            if pattern.endswith("*"):
                if not _EVENT_TYPE.match(pattern):
                    raise invalid_param("type", f"Invalid event type: {pattern}")
                clauses.append("tag GLOB ?")
                args.append(pattern)
            else:
                if not _EVENT_TYPE.match(pattern):
                    raise invalid_param("type", f"Invalid event type: {pattern}")
                clauses.append("tag = ?")
                args.append(pattern)
        where.append("(" + " OR ".join(clauses) + ")")
    return svc.list_page(call, "event", "/v1/events", where=where, args=args,
                         filters=("type", "types", "delivery_success"))


def retrieve_event(svc: Service, call: Call) -> dict[str, Any]:
    call.params.allow(())
    event = svc.load("event", call.path["id"])
    if event["created"] < _retained_since(call):
        raise no_such("event", call.path["id"])
    return event


def _enabled_events(call: Call) -> list[str]:
    events = [e for e in call.params.list("enabled_events") if isinstance(e, str)]
    for event_type in events:
        if not _EVENT_TYPE.match(event_type):
            raise invalid_param("enabled_events", f"Invalid event type: {event_type}")
    return events


def _url(call: Call, required: bool) -> str | None:
    url = call.params.str("url", required=required)
    if url is not None and not re.match(r"^https?://[^\s/]+", url):
        raise invalid_param("url", f"Invalid URL: {url}", "url_invalid")
    return url


def create_endpoint(svc: Service, call: Call) -> dict[str, Any]:
    p = call.params.allow(("url", "enabled_events", "description", "metadata", "api_version", "connect"))
    url = _url(call, True) or ""
    events = _enabled_events(call)
    if not events:
        raise StripeError(400, "Missing required param: enabled_events.", code="parameter_missing",
                          param="enabled_events")
    endpoint = objects.webhook_endpoint(objects.new_id("we"), call.now, url, events, description=p.str("description"),
                                        metadata=p.metadata_update(), api_version=p.str("api_version"))
    secret = token("whsec_", 24)
    svc.store.insert(endpoint, tag="enabled")
    svc.store.set_meta(f"endpoint_secret:{endpoint['id']}", secret)
    return {**endpoint, "secret": secret}


def retrieve_endpoint(svc: Service, call: Call) -> dict[str, Any]:
    call.params.allow(())
    return svc.load("webhook_endpoint", call.path["id"])


def update_endpoint(svc: Service, call: Call) -> dict[str, Any]:
    p = call.params.allow(("url", "enabled_events", "description", "metadata", "disabled"))
    before = svc.load("webhook_endpoint", call.path["id"])
    after = dict(before)
    if p.has("url"):
        after["url"] = _url(call, True)
    if p.has("enabled_events"):
        after["enabled_events"] = _enabled_events(call) or before["enabled_events"]
    if p.has("description"):
        after["description"] = p.str("description")
    if p.has("disabled"):
        after["status"] = "disabled" if p.bool("disabled") else "enabled"
    after["metadata"] = p.metadata_update(before["metadata"])
    if diff(before, after):
        svc.store.save(after, tag=after["status"])
    return after


def delete_endpoint(svc: Service, call: Call) -> dict[str, Any]:
    call.params.allow(())
    endpoint = svc.load("webhook_endpoint", call.path["id"])
    svc.store.save(endpoint, tag="deleted", deleted=True)
    svc.store.conn.execute(
        "UPDATE deliveries SET state = 'dropped', last_error = 'endpoint deleted' "
        "WHERE endpoint_id = ? AND state = 'pending'", (endpoint["id"],)
    )
    return objects.deleted(endpoint["id"], "webhook_endpoint")


def list_endpoints(svc: Service, call: Call) -> Raw:
    return svc.list_page(call, "webhook_endpoint", "/v1/webhook_endpoints")


def retrieve_own_account(svc: Service, call: Call) -> dict[str, Any]:
    call.params.allow(())
    return svc.account


def retrieve_account(svc: Service, call: Call) -> dict[str, Any]:
    call.params.allow(())
    return svc.load("account", call.path["id"], param="account")


def create_account(svc: Service, call: Call) -> dict[str, Any]:
    p = call.params.allow(("type", "country", "email", "business_type", "metadata", "business_profile",
                           "capabilities", "default_currency", "controller"))
    account_type = p.enum("type", ("custom", "express", "standard"), default="standard")
    profile = p.hash("business_profile") or {}
    acct = objects.account(objects.new_id("acct", 16), call.now, name=str(profile.get("name") or ""),
                           country=(p.str("country") or "SG").upper(),
                           currency=p.currency("default_currency") or "sgd", email=p.str("email"),
                           url=profile.get("url"), account_type=account_type or "standard",
                           metadata=p.metadata_update())
    acct["charges_enabled"] = acct["payouts_enabled"] = acct["details_submitted"] = False
    svc.store.insert(acct, tag="connected")
    svc.emit(call, "account.updated", acct)
    return acct


def update_account(svc: Service, call: Call) -> dict[str, Any]:
    p = call.params.allow(("metadata", "email", "business_profile"))
    before = svc.load("account", call.path["id"], param="account")
    after = {**before, "metadata": p.metadata_update(before["metadata"])}
    if p.has("email"):
        after["email"] = p.str("email")
    changes = diff(before, after)
    if changes:
        svc.store.save(after)
        svc.emit(call, "account.updated", after, changes)
    return after


def list_accounts(svc: Service, call: Call) -> Raw:
    return svc.list_page(call, "account", "/v1/accounts", where=["tag = 'connected'"])


def balance(svc: Service, call: Call) -> dict[str, Any]:
    """Available funds per currency: captured charges less refunds (settlement is immediate here)."""
    call.params.allow(())
    rows = svc.store.conn.execute(
        "SELECT json_extract(body, '$.currency'), "
        "sum(json_extract(body, '$.amount_captured') - json_extract(body, '$.amount_refunded')) "
        "FROM objects WHERE kind = 'charge' AND tag = 'succeeded' GROUP BY 1 ORDER BY 1"
    ).fetchall()
    available = [{"amount": int(total or 0), "currency": currency, "source_types": {"card": int(total or 0)}}
                 for currency, total in rows]
    if not available:
        available = [{"amount": 0, "currency": svc.account["default_currency"], "source_types": {"card": 0}}]
    pending = [{"amount": 0, "currency": entry["currency"], "source_types": {"card": 0}} for entry in available]
    return {"object": "balance", "available": available, "livemode": False, "pending": pending}


ROUTES = [
    ("GET", "/v1/events", list_events, "events"),
    ("GET", "/v1/events/{id}", retrieve_event, "events"),
    ("POST", "/v1/webhook_endpoints", create_endpoint, "webhook_endpoints"),
    ("GET", "/v1/webhook_endpoints", list_endpoints, "webhook_endpoints"),
    ("GET", "/v1/webhook_endpoints/{id}", retrieve_endpoint, "webhook_endpoints"),
    ("POST", "/v1/webhook_endpoints/{id}", update_endpoint, "webhook_endpoints"),
    ("DELETE", "/v1/webhook_endpoints/{id}", delete_endpoint, "webhook_endpoints"),
    ("GET", "/v1/account", retrieve_own_account, "accounts"),
    ("GET", "/v1/accounts", list_accounts, "accounts"),
    ("POST", "/v1/accounts", create_account, "accounts"),
    ("GET", "/v1/accounts/{id}", retrieve_account, "accounts"),
    ("POST", "/v1/accounts/{id}", update_account, "accounts"),
    ("GET", "/v1/balance", balance, "balance"),
]
