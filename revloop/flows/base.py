"""What every flow shares: the planning context, a planned write with its field-level diff, holds, and
the outbox's own history (what each flow last recorded for each source record).

A flow plans; it never sends. Planning reads the canonical marts (and staging where a mart does not carry a
value) with SQL, compares the value it would send with what it last recorded in ``sync.outbox`` for the same
record, and returns only the writes whose content changed. Enqueueing them (one transaction) and delivering
them (the worker) is :mod:`revloop.cycle`'s job.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import psycopg
from psycopg.rows import dict_row

from revloop.crypto import FieldCipher
from revloop.sync.model import IntendedWrite, payload_hash

OUTBOX_PAYLOAD_FIELD = "sync.outbox.payload"
LIVE_STATES = ("pending", "in_flight", "delivered")
"""Outbox states that mean "this content is (or will be) at the target". Parked and dead writes are not:
they are replayed by a person (``revloop replay``), never re-planned behind their back."""


@dataclasses.dataclass(frozen=True)
class FlowConfig:
    """Knobs of the flows (defaults are what ``revloop sync`` uses)."""

    won_deal_lookback_days: int = 30
    """Only deals whose close date is this recent are invoiced automatically; older won deals without an
    invoice are history from before Revloop and are reported by reconciliation instead."""
    default_payment_terms_days: int = 30
    """Due date = invoice date + the customer's usual terms (their ERP invoices' median), else this."""
    renewal_window_days: int = 90
    """A subscription ending within this many days gets its renewal Opportunity."""


@dataclasses.dataclass(frozen=True)
class FieldChange:
    """One field a write would change at the target: ``field: old -> new`` (old is None when unknown)."""

    field: str
    old: Any
    new: Any

    def describe(self) -> str:
        return f"{self.field}: {_show(self.old)} -> {_show(self.new)}"


@dataclasses.dataclass(frozen=True)
class PlannedWrite:
    """A write a flow wants, with the fields it changes (what ``revloop plan`` prints)."""

    write: IntendedWrite
    changes: tuple[FieldChange, ...]
    reason: str


@dataclasses.dataclass(frozen=True)
class Hold:
    """A record a flow will not write on its own (a rule says a person decides), with the reason."""

    flow: str
    source_ref: str
    reason: str


@dataclasses.dataclass
class FlowPlan:
    """What one flow would do now."""

    flow: str
    writes: list[PlannedWrite] = dataclasses.field(default_factory=list)
    holds: list[Hold] = dataclasses.field(default_factory=list)
    blocked_by: list[str] = dataclasses.field(default_factory=list)
    """Names of the failed error-level checks that stop this flow (empty when it may write)."""


@dataclasses.dataclass
class FlowContext:
    """What a flow plans with: one warehouse connection, the cipher, today's date and the knobs."""

    conn: psycopg.Connection[Any]
    cipher: FieldCipher
    today: dt.date
    config: FlowConfig = dataclasses.field(default_factory=FlowConfig)
    erp_invoices: Any = None
    """An :class:`revloop.flows.erp_lookup.ErpInvoiceLookup` reading invoices the warehouse has not loaded yet."""

    def rows(self, query: str, params: Sequence[Any] | dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows of ``query`` as dicts."""
        with self.conn.cursor(row_factory=dict_row) as cursor:
            cursor.execute(query, params)  # type: ignore[arg-type]
            return list(cursor.fetchall())

    def decrypt(self, token: str | None, field: str) -> str | None:
        """A PII value the warehouse holds encrypted (``<col>_enc``); field is ``<system>.<table>.<column>``."""
        return self.cipher.decrypt(token, field) if token else None


class Flow(Protocol):
    """One reverse-ETL flow: plans the writes that bring a target in line with the canonical model."""

    name: str
    depends_on: tuple[tuple[str, ...], ...]
    """Asset keys whose failed error-level checks block the flow."""

    def plan(self, ctx: FlowContext) -> FlowPlan: ...


# ---- the outbox's own history ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Recorded:
    """The latest outbox row of a flow for one source record."""

    id: int
    idempotency_key: str
    payload_hash: str
    state: str
    target_id: str | None
    payload: dict[str, Any]
    rows_before: int
    """How many rows the flow recorded for this record (any state): the next write's sequence number."""


def recorded(ctx: FlowContext, flow: str, source_refs: Iterable[str] | None = None,
             target_object: str | None = None) -> dict[str, Recorded]:
    """The latest row (by id) per ``source_ref`` that ``flow`` recorded, payload decrypted."""
    refs = None if source_refs is None else sorted(set(source_refs))
    if refs is not None and not refs:
        return {}
    rows = ctx.conn.execute(
        """select distinct on (source_ref) id, source_ref, idempotency_key, payload_hash, state, target_id,
                  payload_enc, count(*) over (partition by source_ref) as n
           from sync.outbox
           where flow = %(flow)s and source_ref is not null
             and (%(refs)s::text[] is null or source_ref = any(%(refs)s::text[]))
             and (%(object)s::text is null or target_object = %(object)s)
           order by source_ref, id desc""",
        {"flow": flow, "refs": refs, "object": target_object},
    ).fetchall()
    result = {}
    for row_id, ref, key, digest, state, target_id, payload_enc, count in rows:
        payload = json.loads(ctx.cipher.decrypt(payload_enc, OUTBOX_PAYLOAD_FIELD) or "{}")
        result[ref] = Recorded(int(row_id), key, digest, state, target_id, payload, int(count))
    return result


def diff(old: dict[str, Any] | None, new: dict[str, Any]) -> tuple[FieldChange, ...]:
    """Field-level changes from ``old`` (what was last recorded; None: nothing) to ``new``."""
    before = old or {}
    return tuple(
        FieldChange(key, before.get(key), value) for key, value in new.items()
        if key not in before or _canonical(before.get(key)) != _canonical(value)
    )


def content_hash(value: Any) -> str:
    """A short, stable digest of ``value`` (for idempotency keys; the full one is the outbox's payload_hash)."""
    return payload_hash({"v": value})[:16]


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _show(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)
