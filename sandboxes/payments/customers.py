"""``/v1/customers``: create, retrieve, update, delete, list and search."""

from __future__ import annotations

import re
from typing import Any

from sandboxes.payments import objects
from sandboxes.payments.errors import StripeError, invalid_param, no_such
from sandboxes.payments.service import Call, Raw, Service, diff

ADDRESS_FIELDS = ("line1", "line2", "city", "state", "postal_code", "country")
WRITABLE = ("name", "email", "phone", "description", "address", "metadata", "preferred_locales", "currency")


def _address(call: Call) -> dict[str, Any] | None:
    raw = call.params.hash("address", ADDRESS_FIELDS)
    if raw is None:
        return None
    return objects.address(**{k: (v or None) for k, v in raw.items()}) if raw else None


def create(svc: Service, call: Call) -> dict[str, Any]:
    p = call.params.allow(WRITABLE)
    cus = objects.customer(
        objects.new_id("cus", 14), call.now, name=p.str("name", max_length=256), email=p.str("email", max_length=512),
        phone=p.str("phone", max_length=20), address=_address(call), description=p.str("description"),
        metadata=p.metadata_update(), currency=p.currency(), preferred_locales=p.list("preferred_locales"),
    )
    svc.store.insert(cus, tag=cus["email"])
    svc.emit(call, "customer.created", cus)
    return cus


def retrieve(svc: Service, call: Call) -> dict[str, Any]:
    call.params.allow(())
    customer_id = call.path["id"]
    cus = svc.store.get(customer_id, "customer", include_deleted=True)
    if cus is None:
        raise no_such("customer", customer_id)
    if svc.store.is_deleted(customer_id):
        return objects.deleted(customer_id, "customer")
    return svc.expand(cus, call.expand_list())


def update(svc: Service, call: Call) -> dict[str, Any]:
    p = call.params.allow(WRITABLE)
    before = svc.load("customer", call.path["id"])
    after = dict(before)
    for field, max_length in (("name", 256), ("email", 512), ("phone", 20), ("description", 5000)):
        if p.has(field):
            after[field] = p.str(field, max_length=max_length)
    if p.has("address"):
        after["address"] = _address(call)
    if p.has("preferred_locales"):
        after["preferred_locales"] = p.list("preferred_locales")
    after["metadata"] = p.metadata_update(before["metadata"])
    changes = diff(before, after)
    if changes:
        svc.store.save(after, tag=after["email"] or "")
        svc.emit(call, "customer.updated", after, changes)
    return after


def delete(svc: Service, call: Call) -> dict[str, Any]:
    call.params.allow(())
    cus = svc.load("customer", call.path["id"])
    svc.store.save(cus, deleted=True)
    svc.emit(call, "customer.deleted", cus)
    return objects.deleted(cus["id"], "customer")


def list_(svc: Service, call: Call) -> Raw:
    email = call.params.str("email")
    where, args = ([], [])
    if email:
        where, args = (["tag = ?"], [email])
    return svc.list_page(call, "customer", "/v1/customers", where=where, args=args, filters=("email", "test_clock"))


_CLAUSE = re.compile(
    r"""^\s*(metadata\[['"](?P<mkey>[^'"]+)['"]\]|(?P<field>[a-z_]+))"""
    r"""\s*(?P<op>:|~)\s*['"](?P<value>[^'"]*)['"]\s*$"""
)
SEARCHABLE = {"email", "name", "phone", "created"}


def search(svc: Service, call: Call) -> Raw:
    """A subset of Stripe's search language: ``field:'value'`` and ``metadata['k']:'v'`` joined by AND."""
    p = call.params.allow({"query", "limit", "page"})
    query = p.str("query", required=True) or ""
    limit = p.int("limit") or 10
    if not 1 <= limit <= 100:
        raise invalid_param("limit", "This value must be less than or equal to 100.")
    where, args = [], []
    for clause in re.split(r"\s+AND\s+", query):
        match = _CLAUSE.match(clause)
        if not match or (match.group("field") and match.group("field") not in SEARCHABLE):
            raise StripeError(400, f"Invalid search query: {query!r}. See https://stripe.com/docs/search#search-query-language.",
                              param="query")
        column = f"json_extract(body, '$.metadata.\"{match.group('mkey')}\"')" if match.group("mkey") else \
            f"json_extract(body, '$.{match.group('field')}')"
        if match.group("op") == "~":
            where.append(f"{column} LIKE ?")
            args.append(f"%{match.group('value')}%")
        else:
            where.append(f"{column} = ?")
            args.append(match.group("value"))
    offset = int(p.str("page") or 0) if (p.str("page") or "0").isdigit() else 0
    rows = svc.store.conn.execute(
        f"SELECT body FROM objects WHERE kind = 'customer' AND deleted = 0 AND {' AND '.join(where)} "
        "ORDER BY created DESC, seq DESC LIMIT ? OFFSET ?", (*args, limit + 1, offset),
    ).fetchall()
    has_more = len(rows) > limit
    next_page = f'"{offset + limit}"'.encode() if has_more else b"null"
    body = (b'{"object":"search_result","data":[' + b",".join(r[0].encode() for r in rows[:limit])
            + b'],"has_more":' + (b"true" if has_more else b"false") + b',"next_page":' + next_page
            + b',"url":"/v1/customers/search"}')
    return Raw(body)


ROUTES = [
    ("POST", "/v1/customers", create, "customers"),
    ("GET", "/v1/customers", list_, "customers"),
    ("GET", "/v1/customers/search", search, "customers"),
    ("GET", "/v1/customers/{id}", retrieve, "customers"),
    ("POST", "/v1/customers/{id}", update, "customers"),
    ("DELETE", "/v1/customers/{id}", delete, "customers"),
]
