"""Customer invoices created and posted on the ERP in batches, with the exactly-once rules of one at a time.

One ``("account.move", "post")`` write on its own costs five calls (look up its ``ref``, create, read, post,
read). Odoo's ``create`` takes a list of values and ``action_post`` a list of ids, so a batch of up to
:data:`BATCH_SIZE` writes costs about five calls in all:

1. one ``search_read`` of the customer invoices whose ``ref`` is one of the writes' keys (not cancelled):
   found posted -> returned (``created=False``); found draft (an earlier delivery crashed between create
   and post) -> posted in step 4; two found -> that write alone is parked (``duplicate_ref``);
2. the partners of the others: one ``search_read`` of the external ids ``revloop.sf_account_<Id>`` and one
   ``search`` that those partners still exist; an Account without one goes through
   :meth:`~revloop.sync.writers.erp.ErpWriter.partner_for` (found by ``ref``, else created), once;
3. one ``create`` of the list. Odoo creates a list in one transaction, so one refused record (a
   ``ValidationError``) refuses them all: the batch is then created one write at a time, so that only the
   refused write is parked, with the ERP's reason, and the rest are delivered;
4. one ``action_post`` of all the drafts (one at a time too if the ERP refuses one of them);
5. one ``read`` of every invoice for the outcomes.

A failure of a whole call (timeout, 5xx, 429) becomes the error of each write it carried: the worker
retries them, and step 1 then finds whatever a call whose answer was lost had made.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from revloop.sync.model import DeliveryError, DeliveryOutcome, IntendedWrite, PermanentError
from revloop.sync.writers.erp import (
    ALL_RECORDS,
    EXTERNAL_ID_MODULE,
    MOVE_FIELDS,
    ErpWriter,
    classify,
    move_outcome,
    partner_external_name,
)

logger = logging.getLogger(__name__)

BATCH_SIZE = 200
"""Invoices per ``create``/``action_post`` call: the same as the worker's claim, and small enough that one
refused record costs at most this many single retries."""
INVOICE_POSTS = frozenset({("account.move", "post"), ("account.move", "create")})

Result = DeliveryOutcome | DeliveryError


def deliver_many(writer: ErpWriter, writes: Sequence[IntendedWrite]) -> list[Result]:
    """One result per write, in order: invoice posts in batches, any other operation one by one."""
    results: list[Result | None] = [None] * len(writes)
    batched: list[int] = []
    for index, write in enumerate(writes):
        if (write.target_object, write.operation) in INVOICE_POSTS:
            batched.append(index)
            continue
        try:
            results[index] = writer.deliver(write)
        except DeliveryError as error:
            results[index] = error
    for start in range(0, len(batched), BATCH_SIZE):
        chunk = batched[start:start + BATCH_SIZE]
        for index, result in zip(chunk, post_invoices(writer, [writes[i] for i in chunk]), strict=True):
            results[index] = result
    return [_settled(result) for result in results]


def post_invoices(writer: ErpWriter, writes: Sequence[IntendedWrite]) -> list[Result]:
    """Create and post the customer invoices of ``writes`` once each (see the module docstring)."""
    results: dict[int, Result] = {}
    try:
        found = _invoices_by_ref(writer, [w.idempotency_key for w in writes])
    except Exception as exc:
        error = classify(exc)
        return [error] * len(writes)
    drafts: dict[int, int] = {}
    already: dict[int, int] = {}
    new: list[int] = []
    for position, write in enumerate(writes):
        moves = found.get(write.idempotency_key, [])
        if len(moves) > 1:
            results[position] = PermanentError(
                f"{len(moves)} out_invoice entries carry ref {write.idempotency_key!r} "
                f"(ids {[m['id'] for m in moves]}); resolve by hand", code="duplicate_ref")
        elif moves and moves[0]["state"] == "draft":
            drafts[position] = int(moves[0]["id"])
        elif moves:
            already[position] = int(moves[0]["id"])
        else:
            new.append(position)

    values = _invoice_values(writer, {p: writes[p] for p in new}, results)
    created = _create(writer, values, results)
    to_post = {**drafts, **created}
    posted = _post(writer, to_post, results)

    outcome_ids = {**already, **{p: to_post[p] for p in posted}}
    if outcome_ids:
        try:
            moves_read = writer.call("account.move", "read", ids=sorted(set(outcome_ids.values())), fields=MOVE_FIELDS)
        except Exception as exc:  # posted, unread: the next delivery finds them posted
            error = classify(exc)
            moves_read = []
            results.update({p: error for p in outcome_ids})
        by_id = {int(m["id"]): m for m in moves_read}
        for position, move_id in outcome_ids.items():
            move = by_id.get(move_id)
            if move is not None:
                results[position] = move_outcome(move, created=position in created, posted_now=position in to_post)
            elif position not in results:
                results[position] = PermanentError(f"account.move {move_id} does not exist", code="MissingError")
    return [results[position] for position in range(len(writes))]


def _invoices_by_ref(writer: ErpWriter, refs: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The customer invoices (not cancelled) carrying each of ``refs``, oldest first."""
    rows = writer.call("account.move", "search_read",
                       domain=[["ref", "in", refs], ["move_type", "=", "out_invoice"], ["state", "!=", "cancel"]],
                       fields=MOVE_FIELDS, order="id")
    found: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        found.setdefault(str(row["ref"]), []).append(row)
    return found


def _invoice_values(writer: ErpWriter, writes: dict[int, IntendedWrite],
                    results: dict[int, Result]) -> dict[int, dict[str, Any]]:
    """Each write's ``account.move`` values, its partner resolved in bulk; a write that cannot be built
    (no such product, currency or partner) gets its error in ``results``."""
    partners = _partners(writer, list(writes.values()))
    values: dict[int, dict[str, Any]] = {}
    for position, write in writes.items():
        partner = write.payload.get("partner")
        partner_id: int | None = None
        if not write.payload.get("partner_id") and isinstance(partner, dict):
            resolved = partners.get(str(partner.get("salesforce_account_id")))
            if isinstance(resolved, DeliveryError):
                results[position] = resolved
                continue
            partner_id = resolved
        try:
            values[position] = writer.invoice_values(write, partner_id)
        except Exception as exc:
            results[position] = classify(exc)
    return values


def _partners(writer: ErpWriter, writes: list[IntendedWrite]) -> dict[str, int | DeliveryError]:
    """The ERP partner of each Salesforce Account the writes name by payload (not by ``partner_id``)."""
    payloads: dict[str, dict[str, Any]] = {}
    for write in writes:
        partner = write.payload.get("partner")
        if not write.payload.get("partner_id") and isinstance(partner, dict) and partner.get("salesforce_account_id"):
            payloads.setdefault(str(partner["salesforce_account_id"]), partner)
    if not payloads:
        return {}
    names = {partner_external_name(account): account for account in payloads}
    try:
        rows = writer.call("ir.model.data", "search_read",
                           domain=[["module", "=", EXTERNAL_ID_MODULE], ["name", "in", sorted(names)],
                                   ["model", "=", "res.partner"]],
                           fields=["name", "res_id"])
        linked = {names[row["name"]]: int(row["res_id"]) for row in rows}
        alive = set(writer.call("res.partner", "search", domain=[["id", "in", sorted(set(linked.values()))]],
                                context=ALL_RECORDS)) if linked else set()
    except Exception as exc:
        error = classify(exc)
        return dict.fromkeys(payloads, error)
    result: dict[str, int | DeliveryError] = {}
    for account, payload in payloads.items():
        if linked.get(account) in alive:
            result[account] = linked[account]
            continue
        try:  # no partner yet (or a conflict or a dangling id, which partner_for names): one at a time
            result[account] = writer.partner_for(payload)[0]
        except Exception as exc:
            result[account] = classify(exc)
    return result


def _create(writer: ErpWriter, values: dict[int, dict[str, Any]], results: dict[int, Result]) -> dict[int, int]:
    """Create the drafts: one call for the list; one at a time when the ERP refused a record of it."""
    if not values:
        return {}
    positions = list(values)
    try:
        ids = writer.call("account.move", "create", vals_list=[values[p] for p in positions])
        return dict(zip(positions, (int(i) for i in ids), strict=True))
    except Exception as exc:
        error = classify(exc)
    if not isinstance(error, PermanentError) or len(positions) == 1:
        results.update({p: error for p in positions})
        return {}
    logger.info("the ERP refused a batch of %d invoices (%s); creating them one at a time", len(positions),
                error.code)
    created: dict[int, int] = {}
    for position in positions:
        try:
            created[position] = int(writer.call("account.move", "create", vals_list=[values[position]])[0])
        except Exception as exc:
            results[position] = classify(exc)
    return created


def _post(writer: ErpWriter, drafts: dict[int, int], results: dict[int, Result]) -> set[int]:
    """Post the drafts: one call; one at a time when the ERP refused one. Returns the positions posted."""
    if not drafts:
        return set()
    try:
        writer.call("account.move", "action_post", ids=sorted(drafts.values()))
        return set(drafts)
    except Exception as exc:
        error = classify(exc)
    if not isinstance(error, PermanentError) or len(drafts) == 1:
        results.update({p: error for p in drafts})
        return set()
    posted: set[int] = set()
    for position, move_id in drafts.items():
        try:
            writer.call("account.move", "action_post", ids=[move_id])
            posted.add(position)
        except Exception as exc:
            results[position] = classify(exc)
    return posted


def _settled(result: Result | None) -> Result:
    assert result is not None, "every write gets a result"
    return result
