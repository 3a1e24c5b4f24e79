"""Flow 5, ``customer_master``: a customer's name, billing address and billing contact agree in the three
systems, each field taken from the one system that owns it (docs/canonical-model.md, "Who owns a customer's
master data").

Owners: the Salesforce anchor Account owns the name and the billing address (street, city, postal code,
country); the ERP partner owns the billing contact (email, phone). Followers: the ERP partner takes the name
and address; the payments customer takes all of them. Salesforce follows nothing here: the Account has no
billing contact field (its Phone is the company's switchboard, sales' own).

Trigger: for each canonical customer (``int_customer_xref``: its anchor Account, and the ERP partner and
payments customer linked with confidence >= 0.95: a guess by name or website never receives writes; when
several qualify, the lowest id, as ``dim_customers`` picks), an owner's value that differs from what the
follower holds. Values are compared as Revloop's keyed hashes of normalized values (the only form the
warehouse keeps of encrypted fields), so case, spacing and punctuation alone are not a change. An owner with
no value never blanks a follower's.

Writes (only the changed fields): ``("res.partner", "update")`` ``{"partner_id", "values"}`` and
``("customer", "update")`` ``{"customer_id", "fields"}`` (an address goes whole: Stripe replaces it).
Idempotency key: ``master:<system>:<record id>:<sequence>:<digest>``, the digest over the keyed hashes of
what the follower holds after the write (never over clear values, which would put a guessable digest of PII
into keys and logs).

No ping-pong: each write records, in its (encrypted) outbox payload, the hashes of every field the follower
holds once it is applied. Until a load has read the follower again after the delivery, those recorded
values stand for the follower's, so a follower not reloaded yet is not "still different"; once reloaded, our
own write reads back equal to the owner and nothing is planned. A follower only ever receives the owner's
value, so no write flows back the other way.

Conflicts: a follower edited by a person is overwritten by the owner's value on the next cycle (the owner is
where such a change must be made). One write per record is in flight at a time; a parked or dead write
holds the record until a person replays it.

PII: street, email and phone are decrypted only to be sent; plans and logs show them masked.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable
from typing import Any

from revloop.crypto import MatchHasher
from revloop.flows.base import (
    OUTBOX_PAYLOAD_FIELD,
    FieldChange,
    FlowContext,
    FlowPlan,
    Hold,
    PlannedWrite,
    content_hash,
)
from revloop.sync.model import IntendedWrite

NAME = "customer_master"
MIN_CONFIDENCE = 0.95
"""Links weaker than this (name or website guesses) never receive master-data writes."""
PII_FIELDS = frozenset({"street", "email", "phone"})
ADDRESS_FIELDS = ("street", "city", "postal_code", "country")
OWNER_OF = {"name": "salesforce", "street": "salesforce", "city": "salesforce", "postal_code": "salesforce",
            "country": "salesforce", "email": "erp", "phone": "erp"}
"""The owner system of each master-data field (docs/canonical-model.md)."""
HASH_KIND = {"name": "name", "street": "address", "city": "name", "postal_code": "name", "country": "name",
             "email": "email", "phone": "phone"}
"""The normalization each field is compared under (the loads hash encrypted fields the same way)."""
ERP_FOLLOWS = ("name", "street", "city", "postal_code", "country")
PAYMENTS_FOLLOWS = ("name", "street", "city", "postal_code", "country", "email", "phone")
ERP_COLUMN = {"name": "name", "street": "street", "city": "city", "postal_code": "zip", "country": "country_code"}
PAYMENTS_MAX_LENGTH = {"name": 256, "email": 512, "phone": 20}
"""Stripe's limits on customer fields."""

_CUSTOMERS = """
    with members as materialized (
        select customer_id,
               min(source_id) filter (where source_system = 'salesforce' and match_rule = 'salesforce_account')
                   as account_id,
               min(source_id::bigint) filter (where source_system = 'erp' and match_confidence >= %(confidence)s)
                   as partner_id,
               min(source_id) filter (where source_system = 'payments' and match_confidence >= %(confidence)s)
                   as payments_customer_id
        from intermediate.int_customer_xref
        where customer_id is not null
        group by customer_id
    ),
    accounts as materialized (
        select account_id, account_name, billing_street_enc, billing_street_hash, billing_city, billing_postal_code,
               billing_country_code
        from staging.stg_salesforce__accounts where not is_deleted
    ),
    partners as materialized (
        select p.partner_id, p.partner_name, p.name_hash, p.street_hash, p.city, p.postal_code,
               c.country_code, p.email_enc, p.email_hash, p.phone_enc, p.phone_hash, p.extracted_at
        from staging.stg_erp__partners p
        left join staging.stg_erp__countries c on c.country_id = p.country_id
        where not p.is_deleted and p.is_active
    ),
    customers as materialized (
        select customer_id, name_hash, address_line1_enc, address_line1_hash, address_city, address_postal_code,
               address_country_code, email_hash, phone_hash, extracted_at
        from staging.stg_payments__customers where not is_deleted
    )
    select a.account_id, a.account_name, a.billing_street_enc, a.billing_street_hash, a.billing_city,
           a.billing_postal_code, a.billing_country_code,
           p.partner_id, p.partner_name, p.name_hash as partner_name_hash, p.street_hash as partner_street_hash,
           p.city as partner_city, p.postal_code as partner_postal_code, p.country_code as partner_country,
           p.email_enc as partner_email_enc, p.email_hash as partner_email_hash,
           p.phone_enc as partner_phone_enc, p.phone_hash as partner_phone_hash,
           p.extracted_at as partner_extracted_at,
           c.customer_id as payments_customer_id, c.name_hash as payments_name_hash,
           c.address_line1_enc as payments_street_enc, c.address_line1_hash as payments_street_hash,
           c.address_city as payments_city, c.address_postal_code as payments_postal_code,
           c.address_country_code as payments_country, c.email_hash as payments_email_hash,
           c.phone_hash as payments_phone_hash, c.extracted_at as payments_extracted_at
    from members m
    join accounts a on a.account_id = m.account_id
    left join partners p on p.partner_id = m.partner_id
    left join customers c on c.customer_id = m.payments_customer_id
    where p.partner_id is not null or c.customer_id is not null
    order by a.account_id
"""


@dataclasses.dataclass(frozen=True)
class _Last:
    """The latest outbox row of this flow for one follower record."""

    id: int
    idempotency_key: str
    state: str
    delivered_at: dt.datetime | None
    follower: dict[str, str | None]
    """Keyed hashes of every field the follower holds once that write is applied."""
    rows: int


class CustomerMasterFlow:
    """Plans master-data updates of ERP partners and payments customers from their owners' values."""

    name: str = NAME
    depends_on: tuple[tuple[str, ...], ...] = (
        ("marts", "dim_customers"), ("raw_salesforce", "account"), ("raw_erp", "res_partner"),
        ("raw_payments", "customer"),
    )

    def plan(self, ctx: FlowContext) -> FlowPlan:
        plan = FlowPlan(self.name)
        hasher = MatchHasher(ctx.cipher.keyring)
        rows = ctx.rows(_CUSTOMERS, {"confidence": MIN_CONFIDENCE})
        history = _history(ctx, [ref for row in rows for ref in _refs(row)])
        for row in rows:
            owner = _owner_hashes(row, hasher)
            if row["partner_id"] is not None:
                ref = f"erp:{row['partner_id']}"
                loaded = _erp_hashes(row, hasher)
                self._plan_follower(ctx, plan, row, ref, ERP_FOLLOWS, owner, loaded, row["partner_extracted_at"],
                                    history.get(ref))
            if row["payments_customer_id"] is not None:
                ref = f"payments:{row['payments_customer_id']}"
                loaded = _payments_hashes(row, hasher)
                self._plan_follower(ctx, plan, row, ref, PAYMENTS_FOLLOWS, owner, loaded,
                                    row["payments_extracted_at"], history.get(ref))
        return plan

    def _plan_follower(self, ctx: FlowContext, plan: FlowPlan, row: dict[str, Any], ref: str, follows: Iterable[str],
                       owner: dict[str, str | None], loaded: dict[str, str | None],
                       extracted_at: dt.datetime | None, last: _Last | None) -> None:
        current = {**loaded, **_written_since_load(last, extracted_at)}
        changed = [f for f in follows if owner[f] is not None and owner[f] != current.get(f)]
        if not changed:
            return
        if last is not None and last.state in ("pending", "in_flight"):
            return  # one write per record at a time: the next difference is planned once this one settles
        if last is not None and last.state in ("parked", "dead"):
            plan.holds.append(Hold(self.name, ref, f"last write {last.idempotency_key} is {last.state}: "
                                                   f"replay it (revloop replay --id {last.id})"))
            return
        system, record_id = ref.split(":", 1)
        values = _owner_values(ctx, row, changed)
        if system == "payments":
            # Stripe echoes the start of a too-long value in its error: never send one (it would be stored)
            too_long = [f for f in changed if len(values[f] or "") > PAYMENTS_MAX_LENGTH.get(f, 5000)]
            for field in too_long:
                plan.holds.append(Hold(self.name, ref, f"{field} from the {_owners([field])} is longer than the "
                                                       f"payments platform accepts ({PAYMENTS_MAX_LENGTH[field]} "
                                                       "characters): correct it there"))
            changed = [f for f in changed if f not in too_long]
            if not changed:
                return
        after = {f: current.get(f) for f in follows} | {f: owner[f] for f in changed}
        sequence = (last.rows if last else 0) + 1
        key = f"master:{system}:{record_id}:{sequence}:{content_hash(after)}"
        if system == "erp":
            write = IntendedWrite(
                flow=self.name, target_system="erp", target_object="res.partner", operation="update",
                idempotency_key=key, source_ref=ref,
                payload={"partner_id": int(record_id), "salesforce_account_id": row["account_id"],
                         "values": {ERP_COLUMN[f]: values[f] for f in changed}, "revloop_follower": after},
            )
        else:
            write = IntendedWrite(
                flow=self.name, target_system="payments", target_object="customer", operation="update",
                idempotency_key=key, source_ref=ref,
                payload={"customer_id": record_id, "fields": _payments_fields(ctx, row, changed, values),
                         "revloop_follower": after},
            )
        changes = tuple(FieldChange(f, _shown_old(row, system, f), _shown(f, values[f])) for f in changed)
        edited = last is not None and any(current.get(f) != last.follower.get(f) for f in changed)
        reason = (f"{_owners(changed)} changed" if not edited
                  else f"edited in the {'ERP' if system == 'erp' else 'payments platform'}: the owner's value wins")
        plan.writes.append(PlannedWrite(write, changes, reason))


# ---- what each system holds ----------------------------------------------------------------------------


def _owner_hashes(row: dict[str, Any], hasher: MatchHasher) -> dict[str, str | None]:
    return {
        "name": hasher.hash(row["account_name"], HASH_KIND["name"]),
        "street": row["billing_street_hash"],
        "city": hasher.hash(row["billing_city"], HASH_KIND["city"]),
        "postal_code": hasher.hash(row["billing_postal_code"], HASH_KIND["postal_code"]),
        "country": hasher.hash(row["billing_country_code"], HASH_KIND["country"]),
        "email": row["partner_email_hash"],
        "phone": row["partner_phone_hash"],
    }


def _erp_hashes(row: dict[str, Any], hasher: MatchHasher) -> dict[str, str | None]:
    name = row["partner_name"]  # a company's name is plain; a person's only hashed
    return {
        "name": hasher.hash(name, HASH_KIND["name"]) if name else row["partner_name_hash"],
        "street": row["partner_street_hash"],
        "city": hasher.hash(row["partner_city"], HASH_KIND["city"]),
        "postal_code": hasher.hash(row["partner_postal_code"], HASH_KIND["postal_code"]),
        "country": hasher.hash(row["partner_country"], HASH_KIND["country"]),
    }


def _payments_hashes(row: dict[str, Any], hasher: MatchHasher) -> dict[str, str | None]:
    return {
        "name": row["payments_name_hash"],
        "street": row["payments_street_hash"],
        "city": hasher.hash(row["payments_city"], HASH_KIND["city"]),
        "postal_code": hasher.hash(row["payments_postal_code"], HASH_KIND["postal_code"]),
        "country": hasher.hash(row["payments_country"], HASH_KIND["country"]),
        "email": row["payments_email_hash"],
        "phone": row["payments_phone_hash"],
    }


def _written_since_load(last: _Last | None, extracted_at: dt.datetime | None) -> dict[str, str | None]:
    """What our last delivered write put into the follower, while no load has read it again since."""
    if last is None or last.state != "delivered" or last.delivered_at is None:
        return {}
    if extracted_at is not None and extracted_at >= last.delivered_at:
        return {}  # the follower was read after our write: what it holds now is what the load saw
    return dict(last.follower)


def _owner_values(ctx: FlowContext, row: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    """The owners' clear values of ``fields`` (encrypted ones decrypted here, to be sent)."""
    clear = {"name": lambda: row["account_name"], "city": lambda: row["billing_city"],
             "postal_code": lambda: row["billing_postal_code"], "country": lambda: row["billing_country_code"],
             "street": lambda: ctx.decrypt(row["billing_street_enc"], "salesforce.account.billing_street"),
             "email": lambda: ctx.decrypt(row["partner_email_enc"], "erp.res_partner.email"),
             "phone": lambda: ctx.decrypt(row["partner_phone_enc"], "erp.res_partner.phone")}
    return {f: clear[f]() for f in fields}


def _payments_fields(ctx: FlowContext, row: dict[str, Any], changed: list[str], values: dict[str, Any]
                     ) -> dict[str, Any]:
    """The Stripe customer fields of a change; the address whole (the follower's own part where the owner has
    none, so an update never erases what the owner does not know)."""
    fields: dict[str, Any] = {f: values[f] for f in changed if f in ("name", "email", "phone")}
    if any(f in ADDRESS_FIELDS for f in changed):
        street = values["street"] if "street" in values else ctx.decrypt(row["billing_street_enc"],
                                                                          "salesforce.account.billing_street")
        fields["address"] = {
            "line1": street or ctx.decrypt(row["payments_street_enc"], "payments.customer.address_line1"),
            "city": row["billing_city"] or row["payments_city"],
            "postal_code": row["billing_postal_code"] or row["payments_postal_code"],
            "country": row["billing_country_code"] or row["payments_country"],
        }
    return fields


# ---- what a plan shows ---------------------------------------------------------------------------------


def mask(value: Any) -> str | None:
    """A PII value as plans and logs show it: its first and last characters only."""
    if value is None:
        return None
    text = str(value)
    return f"{text[0]}***{text[-1]}" if len(text) >= 6 else "***"


def _shown(field: str, value: Any) -> Any:
    return mask(value) if field in PII_FIELDS else value


def _shown_old(row: dict[str, Any], system: str, field: str) -> Any:
    """The follower's current value as a plan shows it (encrypted values are never opened for a plan)."""
    plain = {("erp", "name"): row["partner_name"], ("erp", "city"): row["partner_city"],
             ("erp", "postal_code"): row["partner_postal_code"], ("erp", "country"): row["partner_country"],
             ("payments", "city"): row["payments_city"], ("payments", "postal_code"): row["payments_postal_code"],
             ("payments", "country"): row["payments_country"]}
    return plain.get((system, field), "***")


def _owners(fields: list[str]) -> str:
    owners = sorted({OWNER_OF[f] for f in fields})
    names = {"salesforce": "Salesforce Account", "erp": "ERP partner"}
    return " and ".join(names[o] for o in owners)


# ---- the outbox's history ------------------------------------------------------------------------------


def _refs(row: dict[str, Any]) -> list[str]:
    refs = []
    if row["partner_id"] is not None:
        refs.append(f"erp:{row['partner_id']}")
    if row["payments_customer_id"] is not None:
        refs.append(f"payments:{row['payments_customer_id']}")
    return refs


def _history(ctx: FlowContext, refs: list[str]) -> dict[str, _Last]:
    """The latest row per follower record, with when it was delivered and what it left there."""
    if not refs:
        return {}
    result = {}
    for row_id, ref, key, state, delivered_at, payload_enc, count in ctx.conn.execute(
        """select distinct on (source_ref) id, source_ref, idempotency_key, state, delivered_at, payload_enc,
                  count(*) over (partition by source_ref)
           from sync.outbox where flow = %s and source_ref = any(%s)
           order by source_ref, id desc""",
        (NAME, sorted(set(refs))),
    ):
        payload = json.loads(ctx.cipher.decrypt(payload_enc, OUTBOX_PAYLOAD_FIELD) or "{}")
        result[ref] = _Last(int(row_id), key, state, delivered_at, dict(payload.get("revloop_follower") or {}),
                            int(count))
    return result
