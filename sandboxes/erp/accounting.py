"""Odoo Invoicing's rules: invoice totals from lines, posting with sequence numbers, cancel/reset, payments.

Payments settle immediately (as for a company whose bank journal has no outstanding-payments account),
so a matched invoice goes straight to ``partial`` or ``paid``; ``in_payment`` is never produced. A payment
settles the documents its direction can settle, as Odoo's reconciliation only matches opposite receivable
(payable) items: money received from a customer settles customer invoices, money sent to a customer
settles customer credit notes (a refund paid out). An invoice paid in full whose credit notes are paid out
for its whole total is ``reversed``: the end state Odoo shows once the invoice is matched with its
reversal and the receipt with the refund (the sandbox keeps no journal items to match them itself).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sandboxes.erp import orm
from sandboxes.erp.errors import UserError
from sandboxes.erp.orm import Env, ModelHooks
from sandboxes.erp.schema import MODELS, Model

INVOICE_TYPES = ("out_invoice", "out_refund", "in_invoice", "in_refund")
SEQUENCE_PREFIXES = {"out_invoice": "INV", "out_refund": "RINV", "in_invoice": "BILL", "in_refund": "RBILL",
                     "entry": "MISC"}
PAYMENT_PREFIX = "PBNK1"
LOCKED_MOVE_FIELDS = {"invoice_line_ids", "partner_id", "currency_id", "invoice_date", "date", "move_type",
                      "reversed_entry_id"}
"""Fields a posted entry refuses to change until it is reset to draft (``ref`` and others stay editable)."""
LOCKED_PAYMENT_FIELDS = {"amount", "partner_id", "currency_id", "invoice_ids", "payment_type", "date"}
SETTLES: dict[tuple[str, str], tuple[str, ...]] = {
    ("customer", "inbound"): ("out_invoice",),
    ("customer", "outbound"): ("out_refund",),
    ("supplier", "outbound"): ("in_invoice",),
    ("supplier", "inbound"): ("in_refund",),
}
"""Per (partner_type, payment_type): the entries a payment can be matched with (opposite receivable or
payable items): a customer's receipt pays invoices, a payment sent to a customer pays credit notes."""
REVERSAL_TYPES = {"out_invoice": "out_refund", "in_invoice": "in_refund"}


def money(value: Any, digits: int) -> Decimal:
    """``value`` rounded half-up to ``digits`` decimals, from its decimal text (never through binary floats)."""
    return Decimal(str(value or 0)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)


def next_number(env: Env, prefix: str) -> int:
    row = env.conn.execute(
        "INSERT INTO sandbox_sequence (prefix, last) VALUES (?, 1) "
        "ON CONFLICT(prefix) DO UPDATE SET last = last + 1 RETURNING last",
        (prefix,),
    ).fetchone()
    return int(row[0])


def company_currency(env: Env) -> int | None:
    row = env.conn.execute("SELECT currency_id FROM res_company ORDER BY id LIMIT 1").fetchone()
    return row[0] if row else None


def currency_digits(env: Env, currency_id: int | None) -> int:
    row = env.conn.execute("SELECT decimal_places FROM res_currency WHERE id = ?", (currency_id,)).fetchone()
    return int(row[0]) if row and row[0] is not None else 2


def _moves(env: Env, ids: list[int]) -> list[dict[str, Any]]:
    return orm.read(env, MODELS["account.move"], ids,
                    ["name", "state", "move_type", "partner_id", "invoice_date", "invoice_date_due", "date",
                     "currency_id", "amount_residual", "amount_total", "payment_reference", "ref", "reversed_entry_id"],
                    load=None)


# ------------------------------------------------------------------------------------------------- totals


def recompute_moves(env: Env, move_ids: list[int]) -> None:
    """Recompute lines' amounts, the entries' totals, residuals and payment states (Decimal arithmetic)."""
    for move in _moves(env, list(dict.fromkeys(move_ids))):
        digits = currency_digits(env, move["currency_id"])
        untaxed = tax = Decimal(0)
        lines = env.conn.execute(
            "SELECT id, quantity, price_unit, discount FROM account_move_line WHERE move_id = ?", (move["id"],)
        ).fetchall()
        for line_id, quantity, price_unit, discount in lines:
            qty = Decimal(str(quantity or 0))
            base = qty * Decimal(str(price_unit or 0)) * (1 - Decimal(str(discount or 0)) / 100)
            subtotal = money(base, digits)
            line_tax = Decimal(0)
            for amount, amount_type in env.conn.execute(
                "SELECT t.amount, t.amount_type FROM account_move_line_tax_rel r JOIN account_tax t "
                "ON t.id = r.tax_id WHERE r.line_id = ?", (line_id,)
            ):
                rate = Decimal(str(amount or 0))
                percent = amount_type == "percent"
                line_tax += money(subtotal * rate / 100, digits) if percent else money(rate * qty, digits)
            env.conn.execute(
                "UPDATE account_move_line SET price_subtotal = ?, price_tax = ?, price_total = ? WHERE id = ?",
                (float(subtotal), float(line_tax), float(subtotal + line_tax), line_id),
            )
            untaxed += subtotal
            tax += line_tax
        total = untaxed + tax
        settle_move(env, move["id"], move["state"], total, digits, untaxed, tax)


def settle_move(env: Env, move_id: int, state: str, total: Decimal, digits: int,
                untaxed: Decimal | None = None, tax: Decimal | None = None) -> None:
    """Set residual and payment state from the payments matched with the entry, and move its write_date."""
    paid_row = env.conn.execute(
        "SELECT COALESCE(SUM(amount), 0) FROM account_payment_invoice_rel WHERE invoice_id = ?", (move_id,)
    ).fetchone()
    paid = money(paid_row[0], digits)
    residual = max(total - paid, Decimal(0))
    if state != "posted":
        payment_state = "not_paid"
    elif residual == 0:
        payment_state = "reversed" if total > 0 and _paid_out_reversals(env, move_id, digits) >= total else "paid"
    elif paid > 0:
        payment_state = "partial"
    else:
        payment_state = "not_paid"
    columns: dict[str, Any] = {"amount_total": float(total), "amount_residual": float(residual),
                               "payment_state": payment_state}
    if untaxed is not None and tax is not None:
        columns.update(amount_untaxed=float(untaxed), amount_tax=float(tax))
    orm.touch(env, MODELS["account.move"], [move_id], columns)


def _paid_out_reversals(env: Env, move_id: int, digits: int) -> Decimal:
    """The total of the posted credit notes reversing an invoice that were paid out in full (refunds made)."""
    row = env.conn.execute("SELECT move_type FROM account_move WHERE id = ?", (move_id,)).fetchone()
    if row is None or row[0] not in REVERSAL_TYPES:
        return Decimal(0)
    total = env.conn.execute(
        "SELECT COALESCE(SUM(amount_total), 0) FROM account_move WHERE reversed_entry_id = ? AND state = 'posted' "
        "AND move_type = ? AND payment_state IN ('paid', 'in_payment')", (move_id, REVERSAL_TYPES[row[0]]),
    ).fetchone()
    return money(total[0], digits)


def _refresh_settlement(env: Env, move_ids: list[int]) -> None:
    """Settle the entries, then the invoices that those of them which are credit notes reverse."""
    reversed_ids: list[int] = []
    for move in _moves(env, move_ids):
        digits = currency_digits(env, move["currency_id"])
        settle_move(env, move["id"], move["state"], money(move["amount_total"], digits), digits)
        if move["move_type"] in REVERSAL_TYPES.values() and move["reversed_entry_id"]:
            reversed_ids.append(int(move["reversed_entry_id"]))
    for move in _moves(env, list(dict.fromkeys(reversed_ids))):
        digits = currency_digits(env, move["currency_id"])
        settle_move(env, move["id"], move["state"], money(move["amount_total"], digits), digits)


# ------------------------------------------------------------------------------------------ account.move


def _prepare_move(env: Env, model: Model, vals: dict[str, Any]) -> None:
    vals["state"] = "draft"
    vals["name"] = "/"
    if "move_type" not in vals or vals["move_type"] == "entry":
        vals["move_type"] = env.context.get("default_move_type", vals.get("move_type", "entry"))
    vals.setdefault("currency_id", company_currency(env))
    vals.setdefault("date", vals.get("invoice_date") or env.today())


def _before_move_write(env: Env, model: Model, ids: list[int], vals: dict[str, Any]) -> None:
    if "state" in vals:
        raise UserError("The status of a journal entry changes through its actions "
                        "(action_post, button_draft, button_cancel), not by writing it.")
    locked = LOCKED_MOVE_FIELDS & vals.keys()
    if not locked:
        return
    for move in _moves(env, ids):
        if move["state"] == "posted":
            raise UserError(f"You cannot modify a posted entry ({move['name']}): reset it to draft first "
                            f"(fields: {', '.join(sorted(locked))}).")
        if move["state"] == "cancel":
            raise UserError(f"You cannot modify a cancelled entry (id {move['id']}): reset it to draft first.")


def _before_move_unlink(env: Env, model: Model, ids: list[int]) -> None:
    for move in _moves(env, ids):
        if move["state"] == "posted" or move["name"] not in ("/", False):
            raise UserError("You cannot delete an entry which has been posted once.")
    return None


def action_post(env: Env, model: Model, ids: list[int]) -> bool:
    for move in _moves(env, ids):
        if move["state"] == "posted":
            raise UserError(f"The entry {move['name']} (id {move['id']}) is already posted.")
        if move["state"] != "draft":
            raise UserError("Only draft journal entries can be posted.")
        is_invoice = move["move_type"] in INVOICE_TYPES
        if is_invoice and not move["partner_id"]:
            raise UserError("The field 'Customer' is required, please complete it to validate the Customer Invoice.")
        if not env.conn.execute("SELECT 1 FROM account_move_line WHERE move_id = ? LIMIT 1", (move["id"],)).fetchone():
            raise UserError("You need to add a line before posting.")
        invoice_date = move["invoice_date"] or env.today()
        columns: dict[str, Any] = {"state": "posted", "date": invoice_date}
        if is_invoice:
            columns.update(invoice_date=invoice_date, invoice_date_due=move["invoice_date_due"] or invoice_date)
        if move["name"] in ("/", False):
            prefix = f"{SEQUENCE_PREFIXES[move['move_type']]}/{invoice_date[:4]}"
            columns["name"] = f"{prefix}/{next_number(env, prefix):05d}"
        orm.touch(env, model, [move["id"]], columns)
        if move["move_type"] in ("out_invoice", "out_refund") and move["partner_id"]:
            env.conn.execute("UPDATE res_partner SET customer_rank = COALESCE(customer_rank, 0) + 1 WHERE id = ?",
                             (move["partner_id"],))
    _refresh_settlement(env, ids)
    return True


def button_draft(env: Env, model: Model, ids: list[int]) -> bool:
    """Back to draft; as in Odoo this undoes the reconciliation with payments."""
    for move in _moves(env, ids):
        if move["state"] == "draft":
            continue
        payments = [r[0] for r in env.conn.execute(
            "SELECT payment_id FROM account_payment_invoice_rel WHERE invoice_id = ? AND amount > 0", (move["id"],))]
        env.conn.execute("UPDATE account_payment_invoice_rel SET amount = 0 WHERE invoice_id = ?", (move["id"],))
        _refresh_payment_states(env, payments)
        orm.touch(env, model, [move["id"]], {"state": "draft"})
    _refresh_settlement(env, ids)
    return True


def button_cancel(env: Env, model: Model, ids: list[int]) -> bool:
    posted = [m["id"] for m in _moves(env, ids) if m["state"] == "posted"]
    if posted:
        button_draft(env, model, posted)
    for move in _moves(env, ids):
        if move["state"] != "draft":
            raise UserError("Only draft journal entries can be cancelled.")
    orm.touch(env, model, ids, {"state": "cancel"})
    _refresh_settlement(env, ids)
    return True


# ------------------------------------------------------------------------------------- account.move.line


def _line_moves(env: Env, line_ids: list[int]) -> list[int]:
    marks = ", ".join("?" * len(line_ids))
    return [r[0] for r in env.conn.execute(
        f"SELECT DISTINCT move_id FROM account_move_line WHERE id IN ({marks})", line_ids)]


def _check_moves_editable(env: Env, move_ids: list[int]) -> None:
    for move in _moves(env, move_ids):
        if move["state"] != "draft":
            raise UserError(f"You cannot modify a posted journal item of {move['name']}: "
                            "reset the journal entry to draft to do so.")


def _prepare_line(env: Env, model: Model, vals: dict[str, Any]) -> None:
    move_id = vals.get("move_id")
    if isinstance(move_id, int) and not isinstance(move_id, bool):
        _check_moves_editable(env, [move_id])
    product_id = vals.get("product_id")
    if isinstance(product_id, int) and not isinstance(product_id, bool):
        row = env.conn.execute("SELECT name, list_price FROM product_product WHERE id = ?", (product_id,)).fetchone()
        if row:
            vals.setdefault("name", row[0])
            vals.setdefault("price_unit", row[1])


def _before_line_write(env: Env, model: Model, ids: list[int], vals: dict[str, Any]) -> None:
    _check_moves_editable(env, _line_moves(env, ids))


def _after_line_change(env: Env, model: Model, ids: list[int]) -> None:
    recompute_moves(env, _line_moves(env, ids))


def _before_line_unlink(env: Env, model: Model, ids: list[int]):  # type: ignore[no-untyped-def]
    moves = _line_moves(env, ids)
    _check_moves_editable(env, moves)
    return lambda: recompute_moves(env, moves)


# ------------------------------------------------------------------------------------------ account.payment


def _prepare_payment(env: Env, model: Model, vals: dict[str, Any]) -> None:
    vals["state"] = "draft"
    vals["name"] = "/"
    vals.setdefault("date", env.today())
    vals.setdefault("currency_id", company_currency(env))


def _before_payment_write(env: Env, model: Model, ids: list[int], vals: dict[str, Any]) -> None:
    if "state" in vals:
        raise UserError("The status of a payment changes through its actions (action_post), not by writing it.")
    if LOCKED_PAYMENT_FIELDS & vals.keys():
        for state, name in env.conn.execute(
            f"SELECT state, name FROM account_payment WHERE id IN ({', '.join('?' * len(ids))})", ids
        ):
            if state != "draft":
                raise UserError(f"You cannot modify the payment {name}: it is no longer a draft.")


def payment_action_post(env: Env, model: Model, ids: list[int]) -> bool:
    """Post draft payments and reconcile each with its ``invoice_ids``, oldest due date first."""
    fields = ["state", "amount", "currency_id", "date", "payment_type", "partner_type"]
    for payment in orm.read(env, model, ids, fields, load=None):
        if payment["state"] != "draft":
            raise UserError("Only a draft payment can be posted.")
        digits = currency_digits(env, payment["currency_id"])
        remaining = money(payment["amount"], digits)
        if remaining <= 0:
            raise UserError("The payment amount must be strictly positive.")
        invoice_ids = [r[0] for r in env.conn.execute(
            "SELECT invoice_id FROM account_payment_invoice_rel WHERE payment_id = ?", (payment["id"],))]
        invoices = sorted(_moves(env, invoice_ids), key=lambda m: (m["invoice_date_due"] or "", m["id"]))
        settles = SETTLES.get((payment["partner_type"], payment["payment_type"]), ())
        for invoice in invoices:
            if invoice["state"] != "posted":
                raise UserError("You can only register payment for posted journal entries.")
            if invoice["move_type"] not in settles:
                raise UserError(f"A payment {'sent to' if payment['payment_type'] == 'outbound' else 'received from'}"
                                f" a {payment['partner_type']} cannot be reconciled with {invoice['name']} "
                                f"({invoice['move_type']}): the journal items are on the same side.")
            if invoice["currency_id"] != payment["currency_id"]:
                raise UserError(f"The payment's currency differs from the currency of {invoice['name']}.")
            allocated = min(money(invoice["amount_residual"], digits), remaining)
            env.conn.execute(
                "UPDATE account_payment_invoice_rel SET amount = ? WHERE payment_id = ? AND invoice_id = ?",
                (float(allocated), payment["id"], invoice["id"]),
            )
            remaining -= allocated
        prefix = f"{PAYMENT_PREFIX}/{payment['date'][:4]}"
        orm.touch(env, model, [payment["id"]], {"name": f"{prefix}/{next_number(env, prefix):05d}"})
        _refresh_payment_states(env, [payment["id"]])
        _refresh_settlement(env, invoice_ids)
    return True


def payment_action_draft(env: Env, model: Model, ids: list[int]) -> bool:
    """Back to draft; as in Odoo this undoes the payment's reconciliation, so its invoices open again."""
    for payment in orm.read(env, model, ids, ["state"], load=None):
        if payment["state"] == "draft":
            continue
        invoice_ids = [r[0] for r in env.conn.execute(
            "SELECT invoice_id FROM account_payment_invoice_rel WHERE payment_id = ?", (payment["id"],))]
        env.conn.execute("UPDATE account_payment_invoice_rel SET amount = 0 WHERE payment_id = ?", (payment["id"],))
        orm.touch(env, model, [payment["id"]], {"state": "draft"})
        _refresh_settlement(env, invoice_ids)
    return True


def payment_action_cancel(env: Env, model: Model, ids: list[int]) -> bool:
    """Cancel payments (a posted one is reset to draft first, which undoes its reconciliation)."""
    payment_action_draft(env, model, ids)
    orm.touch(env, model, ids, {"state": "canceled"})
    return True


def _refresh_payment_states(env: Env, payment_ids: list[int]) -> None:
    for payment_id in payment_ids:
        matched = env.conn.execute(
            "SELECT 1 FROM account_payment_invoice_rel WHERE payment_id = ? AND amount > 0 LIMIT 1", (payment_id,)
        ).fetchone()
        orm.touch(env, MODELS["account.payment"], [payment_id], {"state": "paid" if matched else "in_process"})


# --------------------------------------------------------------------------------- account.payment.register


def _prepare_register(env: Env, model: Model, vals: dict[str, Any]) -> None:
    if env.context.get("active_model") not in ("account.move", None) or not env.context.get("active_ids"):
        raise UserError("The register payment wizard should only be called on account.move or "
                        "account.move.line records (context: active_model, active_ids).")
    move_ids = orm.normalize_ids(env.context["active_ids"])
    orm.check_exist(env, MODELS["account.move"], move_ids)
    moves = _moves(env, move_ids)
    if any(m["state"] != "posted" for m in moves):
        raise UserError("You can only register payment for posted journal entries.")
    if not any(m["amount_residual"] > 0 for m in moves):
        raise UserError("You can't register a payment because there is nothing left to pay on the selected "
                        "journal items.")
    if len({m["currency_id"] for m in moves}) > 1 or len({m["partner_id"] for m in moves}) > 1:
        raise UserError("The sandbox registers one payment per wizard: select invoices of one customer in one "
                        "currency.")
    kinds = {kind for kind, types in SETTLES.items() for m in moves if m["move_type"] in types}
    if len(kinds) != 1:
        raise UserError("The sandbox registers one payment per wizard: select invoices, or credit notes, of one "
                        "kind.")
    ((partner_type, payment_type),) = kinds
    first = moves[0]
    vals.setdefault("amount", sum(m["amount_residual"] for m in moves))
    vals.setdefault("currency_id", first["currency_id"])
    vals.setdefault("payment_date", env.today())
    vals.setdefault("communication", " ".join(m["payment_reference"] or m["name"] for m in moves))
    vals.update(partner_id=first["partner_id"], payment_type=payment_type, partner_type=partner_type,
                line_ids=[(6, 0, move_ids)])


def action_create_payments(env: Env, model: Model, ids: list[int]) -> dict[str, Any]:
    payment_model = MODELS["account.payment"]
    payment_ids = []
    for wizard in orm.read(env, model, ids, load=None):
        payment_ids += orm.create(env, payment_model, [{
            "partner_id": wizard["partner_id"], "amount": wizard["amount"], "currency_id": wizard["currency_id"],
            "date": wizard["payment_date"], "memo": wizard["communication"] or False,
            "payment_type": wizard["payment_type"] or "inbound", "partner_type": wizard["partner_type"] or "customer",
            "invoice_ids": [(6, 0, wizard["line_ids"])],
        }])
    payment_action_post(env, payment_model, payment_ids)
    action: dict[str, Any] = {"name": "Payments", "type": "ir.actions.act_window", "res_model": "account.payment",
                              "context": {"create": False}}
    if len(payment_ids) == 1:
        action.update(view_mode="form", res_id=payment_ids[0])
    else:
        action.update(view_mode="list,form", domain=[["id", "in", payment_ids]])
    return action


def _prepare_currency(env: Env, model: Model, vals: dict[str, Any]) -> None:
    rounding = float(vals.get("rounding") or 0.01)
    vals["rounding"] = rounding
    vals["decimal_places"] = max(0, len(f"{Decimal(str(rounding)).normalize():f}".partition(".")[2]))


orm.HOOKS.update({
    "account.move": ModelHooks(prepare_create=_prepare_move, before_write=_before_move_write,
                               after_change=lambda env, model, ids: recompute_moves(env, ids),
                               before_unlink=_before_move_unlink),
    "account.move.line": ModelHooks(prepare_create=_prepare_line, before_write=_before_line_write,
                                    after_change=_after_line_change, before_unlink=_before_line_unlink),
    "account.payment": ModelHooks(prepare_create=_prepare_payment, before_write=_before_payment_write),
    "account.payment.register": ModelHooks(prepare_create=_prepare_register),
    "res.currency": ModelHooks(prepare_create=_prepare_currency),
})
