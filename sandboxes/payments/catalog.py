"""``/v1/products`` and ``/v1/prices``: the catalogue invoices are priced from."""

from __future__ import annotations

from typing import Any

from sandboxes.payments import objects
from sandboxes.payments.errors import invalid_param
from sandboxes.payments.service import Call, Raw, Service, diff

PRODUCT_FIELDS = ("name", "description", "active", "metadata", "unit_label", "id", "default_price_data")
PRICE_FIELDS = ("product", "currency", "unit_amount", "recurring", "nickname", "lookup_key", "metadata", "active",
                "product_data", "unit_amount_decimal", "billing_scheme", "tax_behavior")


def create_product(svc: Service, call: Call) -> dict[str, Any]:
    p = call.params.allow(PRODUCT_FIELDS)
    product_id = p.str("id") or objects.new_id("prod", 14)
    if svc.store.get(product_id, include_deleted=True) is not None:
        raise invalid_param("id", "Product already exists.", "resource_already_exists")
    prod = objects.product(product_id, call.now, p.str("name", required=True) or "",
                           description=p.str("description"), active=bool(p.bool("active", True)),
                           metadata=p.metadata_update(), unit_label=p.str("unit_label"))
    svc.store.insert(prod, tag="active" if prod["active"] else "inactive")
    svc.emit(call, "product.created", prod)
    default_price = p.hash("default_price_data", ("currency", "unit_amount", "recurring"))
    if default_price:
        from sandboxes.payments.params import Params

        sub = Params(default_price)
        price = _new_price(svc, call, prod["id"], sub.currency(required=True) or "",
                           sub.int("unit_amount", required=True, minimum=0) or 0, default_price.get("recurring"))
        before = dict(prod)
        prod["default_price"] = price["id"]
        svc.store.save(prod)
        svc.emit(call, "product.updated", prod, diff(before, prod))
    return prod


def retrieve_product(svc: Service, call: Call) -> dict[str, Any]:
    call.params.allow(())
    return svc.expand(svc.load("product", call.path["id"]), call.expand_list())


def update_product(svc: Service, call: Call) -> dict[str, Any]:
    p = call.params.allow(("name", "description", "active", "metadata", "unit_label", "default_price"))
    before = svc.load("product", call.path["id"])
    after = dict(before)
    if p.has("name"):
        after["name"] = p.str("name", required=True)
    if p.has("description"):
        after["description"] = p.str("description")
    if p.has("unit_label"):
        after["unit_label"] = p.str("unit_label")
    if p.has("active"):
        after["active"] = p.bool("active")
    if p.has("default_price"):
        price_id = p.str("default_price")
        if price_id:
            svc.load("price", price_id, param="default_price")
        after["default_price"] = price_id
    after["metadata"] = p.metadata_update(before["metadata"])
    changes = diff(before, after)
    if changes:
        after["updated"] = call.now
        svc.store.save(after, tag="active" if after["active"] else "inactive")
        svc.emit(call, "product.updated", after, changes)
    return after


def list_products(svc: Service, call: Call) -> Raw:
    active = call.params.bool("active")
    where, args = ([], []) if active is None else (["tag = ?"], ["active" if active else "inactive"])
    ids = call.params.list("ids")
    if ids:
        where.append(f"id IN ({','.join('?' * len(ids))})")
        args.extend(ids)
    return svc.list_page(call, "product", "/v1/products", where=where, args=args,
                         filters=("active", "ids", "shippable", "url"))


def _recurring(raw: Any) -> dict[str, Any] | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, dict):
        raise invalid_param("recurring", "Invalid object: recurring must be a hash")
    for key in raw:
        if key not in ("interval", "interval_count", "usage_type", "trial_period_days"):
            raise invalid_param(f"recurring[{key}]", f"Received unknown parameter: recurring[{key}]",
                                "parameter_unknown")
    interval = raw.get("interval")
    if interval not in ("day", "week", "month", "year"):
        raise invalid_param("recurring[interval]",
                            "Invalid recurring[interval]: must be one of day, week, month, or year")
    count = raw.get("interval_count", "1")
    if not str(count).isdigit() or int(count) < 1:
        raise invalid_param("recurring[interval_count]", f"Invalid integer: {count}", "parameter_invalid_integer")
    return {"interval": interval, "interval_count": int(count), "usage_type": raw.get("usage_type", "licensed")}


def _new_price(svc: Service, call: Call, product_id: str, currency: str, unit_amount: int, recurring: Any,
               **extra: Any) -> dict[str, Any]:
    price = objects.price(objects.new_id("price"), call.now, product_id, currency, unit_amount,
                          recurring=_recurring(recurring), **extra)
    svc.store.insert(price, parent=product_id, tag="active" if price["active"] else "inactive")
    svc.emit(call, "price.created", price)
    return price


def create_price(svc: Service, call: Call) -> dict[str, Any]:
    p = call.params.allow(PRICE_FIELDS)
    currency = p.currency(required=True) or ""
    unit_amount = p.int("unit_amount", minimum=0)
    if unit_amount is None:
        decimal = p.str("unit_amount_decimal")
        if decimal is None:
            raise invalid_param("unit_amount", "Missing required param: unit_amount.", "parameter_missing")
        try:
            unit_amount = int(float(decimal))
        except ValueError:
            raise invalid_param("unit_amount_decimal", f"Invalid decimal: {decimal}") from None
    product_id = p.str("product")
    if product_id:
        svc.load("product", product_id, param="product")
    else:
        data = p.hash("product_data", ("name", "metadata", "active", "unit_label"))
        if not data or not data.get("name"):
            raise invalid_param("product", "Missing required param: product.", "parameter_missing")
        prod = objects.product(objects.new_id("prod", 14), call.now, data["name"],
                               metadata=data.get("metadata") or {})
        svc.store.insert(prod, tag="active")
        svc.emit(call, "product.created", prod)
        product_id = prod["id"]
    return _new_price(svc, call, product_id, currency, unit_amount, p.data.get("recurring"),
                      nickname=p.str("nickname"), lookup_key=p.str("lookup_key"), metadata=p.metadata_update(),
                      active=bool(p.bool("active", True)))


def retrieve_price(svc: Service, call: Call) -> dict[str, Any]:
    call.params.allow(())
    return svc.expand(svc.load("price", call.path["id"]), call.expand_list())


def update_price(svc: Service, call: Call) -> dict[str, Any]:
    p = call.params.allow(("active", "metadata", "nickname", "lookup_key", "tax_behavior"))
    before = svc.load("price", call.path["id"])
    after = dict(before)
    if p.has("active"):
        after["active"] = p.bool("active")
    if p.has("nickname"):
        after["nickname"] = p.str("nickname")
    if p.has("lookup_key"):
        after["lookup_key"] = p.str("lookup_key")
    after["metadata"] = p.metadata_update(before["metadata"])
    changes = diff(before, after)
    if changes:
        svc.store.save(after, tag="active" if after["active"] else "inactive")
        svc.emit(call, "price.updated", after, changes)
    return after


def list_prices(svc: Service, call: Call) -> Raw:
    p = call.params
    where: list[str] = []
    args: list[Any] = []
    product_id = p.str("product")
    if product_id:
        where.append("parent = ?")
        args.append(product_id)
    active = p.bool("active")
    if active is not None:
        where.append("tag = ?")
        args.append("active" if active else "inactive")
    currency = p.currency()
    if currency:
        where.append("json_extract(body, '$.currency') = ?")
        args.append(currency)
    price_type = p.enum("type", ("one_time", "recurring"))
    if price_type:
        where.append("json_extract(body, '$.type') = ?")
        args.append(price_type)
    return svc.list_page(call, "price", "/v1/prices", where=where, args=args,
                         filters=("product", "active", "currency", "type", "lookup_keys", "recurring"))


ROUTES = [
    ("POST", "/v1/products", create_product, "products"),
    ("GET", "/v1/products", list_products, "products"),
    ("GET", "/v1/products/{id}", retrieve_product, "products"),
    ("POST", "/v1/products/{id}", update_product, "products"),
    ("POST", "/v1/prices", create_price, "prices"),
    ("GET", "/v1/prices", list_prices, "prices"),
    ("GET", "/v1/prices/{id}", retrieve_price, "prices"),
    ("POST", "/v1/prices/{id}", update_price, "prices"),
]
