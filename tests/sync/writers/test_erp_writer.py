"""The ERP writer against the Odoo sandbox: partners with external ids, posted invoices and credit notes
found by ``ref``, payments found by memo, crash windows, and each error class."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from revloop.settings import ErpSettings
from revloop.sync.model import PermanentError, RateLimited, RetryableError
from revloop.sync.writers.erp import ErpWriter
from tests.sandbox_harness import RunningSandbox
from tests.sync.writers.conftest import faults, unique, write


def account_id() -> str:
    """A Salesforce Account Id no seeded partner has (18 characters, like the real ones)."""
    return f"001T{unique('acct').replace('-', '').upper():0>14}"[-18:]


def partner_write(account: str, key: str | None = None, **values: Any) -> Any:
    return write("erp", "res.partner", "create", key or f"partner:{account}", {
        "salesforce_account_id": account,
        "values": {"name": f"Customer {account}", "street": "1 Raffles Place", "city": "Singapore",
                   "country_code": "SG", **values},
    })


def invoice_write(account: str, key: str, opportunity: str = "006T00000000001AAA") -> Any:
    return write("erp", "account.move", "post", key, {
        "partner": partner_write(account).payload,
        "currency": "USD",
        "invoice_date": "2026-03-02",
        "invoice_date_due": "2026-04-01",
        "invoice_origin": opportunity,
        "lines": [{"product_code": "RL-BILL-STD", "quantity": 2, "price_unit": 1500.25},
                  {"product_code": "RL-BILL-ENT", "quantity": 1, "price_unit": 99.5, "name": "Onboarding"}],
    }, flow="won_deal_invoice")


def moves_with_ref(reader: Any, ref: str) -> list[dict[str, Any]]:
    return reader.get_model("account.move").search_read(
        [("ref", "=", ref)], ["name", "state", "move_type", "invoice_origin", "currency_id", "partner_id",
                              "invoice_date", "invoice_date_due", "amount_total", "reversed_entry_id",
                              "invoice_line_ids", "payment_state"])


def external_ids(reader: Any, account: str) -> list[dict[str, Any]]:
    return reader.get_model("ir.model.data").search_read(
        [("module", "=", "revloop"), ("name", "=", f"sf_account_{account}")], ["model", "res_id"])


# ---- res.partner --------------------------------------------------------------------------------------


def test_partner_is_created_with_ref_and_external_id_when_the_account_is_new(
    erp_writer: ErpWriter, erp_reader: Any
) -> None:
    account = account_id()
    outcome = erp_writer.deliver(partner_write(account))
    # odoolib's read answers one record as a dict
    partner = erp_reader.get_model("res.partner").read([int(outcome.target_id)], ["ref", "name", "country_id"])
    assert outcome.created is True
    assert partner["ref"] == account
    assert partner["country_id"][1] == "Singapore"
    assert external_ids(erp_reader, account) == [
        {"id": external_ids(erp_reader, account)[0]["id"], "model": "res.partner", "res_id": int(outcome.target_id)}]


def test_partner_is_found_not_duplicated_when_delivered_twice(erp_writer: ErpWriter) -> None:
    account = account_id()
    first = erp_writer.deliver(partner_write(account))
    again = erp_writer.deliver(partner_write(account, key="another-write-for-the-same-account"))
    assert (again.created, again.target_id) == (False, first.target_id)


def test_partner_is_found_by_ref_and_gets_its_external_id_when_a_crash_came_before_the_external_id(
    erp_settings: ErpSettings, erp_reader: Any
) -> None:
    account = account_id()
    writer = ErpWriter(erp_settings)
    first = writer.deliver(partner_write(account))
    # The crash: the partner was created, its external id never was.
    xid_ids = [row["id"] for row in external_ids(erp_reader, account)]
    writer.call("ir.model.data", "unlink", ids=xid_ids)
    fresh = ErpWriter(erp_settings)
    again = fresh.deliver(partner_write(account))
    assert (again.created, again.target_id) == (False, first.target_id)
    assert [row["res_id"] for row in external_ids(erp_reader, account)] == [int(first.target_id)]
    assert erp_reader.get_model("res.partner").search_count([("ref", "=", account)]) == 1


def test_partner_update_writes_master_data_when_the_partner_exists(erp_writer: ErpWriter, erp_reader: Any) -> None:
    account = account_id()
    created = erp_writer.deliver(partner_write(account))
    outcome = erp_writer.deliver(write("erp", "res.partner", "update", unique("master"),
                                       {"salesforce_account_id": account, "values": {"city": "Jurong"}}))
    assert outcome.target_id == created.target_id
    assert erp_reader.get_model("res.partner").read([int(created.target_id)], ["city"])["city"] == "Jurong"


def test_partner_update_by_id_writes_only_the_changed_fields_when_the_partner_was_not_created_by_us(
    erp_writer: ErpWriter, erp_reader: Any
) -> None:
    partner_id = erp_writer.call("res.partner", "create", vals_list=[{"name": "Hand Made Pte Ltd", "city": "Tuas",
                                                                      "is_company": False}])[0]
    update = write("erp", "res.partner", "update", unique("master"),
                   {"partner_id": partner_id, "values": {"street": "8 Marina View", "country_code": "SG"}})
    first = erp_writer.deliver(update)
    again = erp_writer.deliver(update)
    partner = erp_reader.get_model("res.partner").read([partner_id], ["street", "city", "country_id", "is_company"])
    assert (first.target_id, first.created, again.target_id) == (str(partner_id), False, str(partner_id))
    assert first.detail == {"fields": ["country_id", "street"]}
    assert (partner["street"], partner["city"], partner["country_id"][1]) == ("8 Marina View", "Tuas", "Singapore")
    assert partner["is_company"] is False  # an update never turns a person into a company


def test_partner_update_is_parked_when_the_partner_is_gone(erp_writer: ErpWriter) -> None:
    with pytest.raises(PermanentError) as caught:
        erp_writer.deliver(write("erp", "res.partner", "update", unique("master"),
                                 {"partner_id": 999_999_999, "values": {"city": "Nowhere"}}))
    assert caught.value.code == "partner_not_found"


# ---- account.move ------------------------------------------------------------------------------------


def test_invoice_is_created_and_posted_with_its_cross_references_when_the_deal_is_won(
    erp_writer: ErpWriter, erp_reader: Any
) -> None:
    key = unique("won")
    outcome = erp_writer.deliver(invoice_write(account_id(), key, opportunity="006T00000000077AAA"))
    (move,) = moves_with_ref(erp_reader, key)
    assert outcome.created is True
    assert (move["state"], move["move_type"], move["invoice_origin"]) == ("posted", "out_invoice", "006T00000000077AAA")
    assert move["currency_id"][1] == "USD"
    assert (move["invoice_date"], move["invoice_date_due"]) == ("2026-03-02", "2026-04-01")
    assert move["amount_total"] >= 3100.0  # 2 x 1500.25 + 99.5, plus the products' taxes if any
    assert len(move["invoice_line_ids"]) == 2
    assert move["name"].startswith("INV/") and outcome.detail["name"] == move["name"]


def test_invoice_is_returned_not_created_when_delivered_again_by_a_fresh_writer(
    erp_settings: ErpSettings, erp_reader: Any
) -> None:
    key = unique("won")
    account = account_id()
    first = ErpWriter(erp_settings).deliver(invoice_write(account, key))
    again = ErpWriter(erp_settings).deliver(invoice_write(account, key))
    assert (again.created, again.target_id, again.detail["posted_now"]) == (False, first.target_id, False)
    assert len(moves_with_ref(erp_reader, key)) == 1


def test_invoice_left_in_draft_is_posted_not_duplicated_when_a_crash_came_before_posting(
    erp_settings: ErpSettings, erp_reader: Any
) -> None:
    key = unique("won")
    account = account_id()
    writer = ErpWriter(erp_settings)
    partner_id = int(writer.deliver(partner_write(account)).target_id)
    currency = writer.call("res.currency", "search", domain=[["name", "=", "USD"]])[0]
    # The crash: the invoice was created (with our key as ref) but action_post never ran.
    draft_id = writer.call("account.move", "create", vals_list=[{
        "move_type": "out_invoice", "partner_id": partner_id, "currency_id": currency, "ref": key,
        "invoice_date": "2026-03-02", "date": "2026-03-02",
        "invoice_line_ids": [[0, 0, {"name": "Billing", "quantity": 1, "price_unit": 10}]]}])[0]
    outcome = ErpWriter(erp_settings).deliver(invoice_write(account, key))
    (move,) = moves_with_ref(erp_reader, key)
    assert (outcome.created, outcome.target_id, outcome.detail["posted_now"]) == (False, str(draft_id), True)
    assert move["state"] == "posted"


def test_invoice_is_parked_when_a_product_code_is_unknown(erp_writer: ErpWriter) -> None:
    payload = dict(invoice_write(account_id(), unique("won")).payload)
    payload["lines"] = [{"product_code": "NO-SUCH-PRODUCT", "quantity": 1, "price_unit": 1}]
    with pytest.raises(PermanentError) as caught:
        erp_writer.deliver(write("erp", "account.move", "post", unique("won"), payload))
    assert caught.value.code == "unknown_product"


def test_invoice_is_parked_with_odoos_validation_error_when_the_partner_does_not_exist(
    erp_writer: ErpWriter,
) -> None:
    payload = {**invoice_write(account_id(), "x").payload, "partner_id": 987654321}
    payload.pop("partner")
    with pytest.raises(PermanentError) as caught:
        erp_writer.deliver(write("erp", "account.move", "post", unique("won"), payload))
    assert caught.value.code == "odoo.exceptions.ValidationError"
    assert caught.value.http_status == 422


def test_credit_note_reverses_the_invoice_once_when_delivered_twice(erp_writer: ErpWriter, erp_reader: Any) -> None:
    invoice_key = unique("won")
    invoice = erp_writer.deliver(invoice_write(account_id(), invoice_key))
    credit = write("erp", "account.move", "credit_note", unique("reinvoice"),
                   {"reversed_entry_ref": invoice_key, "invoice_date": "2026-03-05"})
    first = erp_writer.deliver(credit)
    again = erp_writer.deliver(credit)
    (note,) = moves_with_ref(erp_reader, credit.idempotency_key)
    assert first.created is True and (again.created, again.target_id) == (False, first.target_id)
    assert (note["move_type"], note["state"]) == ("out_refund", "posted")
    assert note["reversed_entry_id"][0] == int(invoice.target_id)
    assert note["amount_total"] == invoice.detail["amount_total"]
    assert note["name"].startswith("RINV/")


# ---- account.payment ----------------------------------------------------------------------------------


def payment_write(invoice_key: str, payment_id: str, amount: float) -> Any:
    return write("erp", "account.payment", "register_payment", f"payment:{payment_id}",
                 {"invoice_ref": invoice_key, "payment_id": payment_id, "amount": amount, "date": "2026-03-10"},
                 flow="payment_outcome")


def test_payment_is_registered_once_and_moves_payment_state_when_delivered_twice(
    erp_writer: ErpWriter, erp_reader: Any
) -> None:
    invoice_key = unique("won")
    invoice = erp_writer.deliver(invoice_write(account_id(), invoice_key))
    payment_id = unique("pi_test")
    first = erp_writer.deliver(payment_write(invoice_key, payment_id, 100.0))
    again = erp_writer.deliver(payment_write(invoice_key, payment_id, 100.0))
    assert first.created is True and (again.created, again.target_id) == (False, first.target_id)
    assert first.detail["invoices"] == {invoice.target_id: "partial"}
    payments = erp_reader.get_model("account.payment").search_read([("memo", "=", payment_id)],
                                                                   ["state", "amount", "invoice_ids"])
    assert [(p["amount"], p["invoice_ids"]) for p in payments] == [(100.0, [int(invoice.target_id)])]

    rest = erp_writer.deliver(payment_write(invoice_key, unique("pi_test"), invoice.detail["amount_total"] - 100))
    assert rest.detail["invoices"] == {invoice.target_id: "paid"}


def test_payment_left_in_draft_is_posted_not_duplicated_when_a_crash_came_before_posting(
    erp_settings: ErpSettings, erp_reader: Any
) -> None:
    writer = ErpWriter(erp_settings)
    invoice_key = unique("won")
    invoice = writer.deliver(invoice_write(account_id(), invoice_key))
    payment_id = unique("pi_test")
    draft_id = writer.call("account.payment", "create", vals_list=[{
        "payment_type": "inbound", "partner_type": "customer", "partner_id": invoice.detail["partner_id"],
        "amount": invoice.detail["amount_total"], "currency_id": writer.call(
            "res.currency", "search", domain=[["name", "=", "USD"]])[0],
        "date": "2026-03-10", "memo": payment_id, "invoice_ids": [[6, 0, [int(invoice.target_id)]]]}])[0]
    outcome = ErpWriter(erp_settings).deliver(payment_write(invoice_key, payment_id, invoice.detail["amount_total"]))
    assert (outcome.created, outcome.target_id) == (False, str(draft_id))
    assert outcome.detail["invoices"] == {invoice.target_id: "paid"}
    assert erp_reader.get_model("account.payment").search_count([("memo", "=", payment_id)]) == 1


def paid_invoice(writer: ErpWriter) -> tuple[str, Any, str]:
    """A posted invoice paid in full by a receipt; returns its key, its outcome and the receipt's reference."""
    invoice_key = unique("won")
    invoice = writer.deliver(invoice_write(account_id(), invoice_key))
    receipt = unique("pi_test")
    writer.deliver(payment_write(invoice_key, receipt, invoice.detail["amount_total"]))
    return invoice_key, invoice, receipt


def refund_write(invoice: Any, refund_id: str, amount: float) -> Any:
    return write("erp", "account.payment", "refund", f"erp-refund:{refund_id}",
                 {"invoice_id": int(invoice.target_id), "refund_id": refund_id, "amount": str(amount),
                  "date": "2026-03-12"}, flow="payment_outcome")


def test_full_refund_is_a_credit_note_paid_out_once_and_reverses_the_invoice_when_delivered_twice(
    erp_writer: ErpWriter, erp_reader: Any
) -> None:
    _, invoice, _ = paid_invoice(erp_writer)
    refund = refund_write(invoice, unique("re_test"), invoice.detail["amount_total"])

    first = erp_writer.deliver(refund)
    again = erp_writer.deliver(refund)

    assert first.created is True and (again.created, again.target_id) == (False, first.target_id)
    assert first.detail["reversed_invoices"] == {invoice.target_id: "reversed"}
    (note,) = moves_with_ref(erp_reader, refund.idempotency_key)
    assert (note["move_type"], note["state"], note["payment_state"]) == ("out_refund", "posted", "paid")
    assert note["reversed_entry_id"][0] == int(invoice.target_id)
    assert note["amount_total"] == invoice.detail["amount_total"]
    sent = erp_reader.get_model("account.payment").search_read(
        [("memo", "=", refund.payload["refund_id"])], ["payment_type", "partner_type", "amount", "invoice_ids"])
    assert [(p["payment_type"], p["partner_type"], p["invoice_ids"]) for p in sent] == [
        ("outbound", "customer", [note["id"]])]


def test_partial_refund_leaves_the_invoice_paid_and_pays_out_its_credit_note_when_delivered(
    erp_writer: ErpWriter, erp_reader: Any
) -> None:
    _, invoice, _ = paid_invoice(erp_writer)
    refund = refund_write(invoice, unique("re_test"), 120.25)

    outcome = erp_writer.deliver(refund)

    assert outcome.detail["reversed_invoices"] == {invoice.target_id: "paid"}
    (note,) = moves_with_ref(erp_reader, refund.idempotency_key)
    assert (note["amount_total"], note["payment_state"]) == (120.25, "paid")


def test_refund_pays_out_the_credit_note_left_unpaid_when_a_crash_came_after_the_credit_note(
    erp_settings: ErpSettings, erp_reader: Any
) -> None:
    writer = ErpWriter(erp_settings)
    _, invoice, _ = paid_invoice(writer)
    refund = refund_write(invoice, unique("re_test"), invoice.detail["amount_total"])
    left = writer.deliver(write("erp", "account.move", "credit_note", refund.idempotency_key,
                                {"reversed_entry_id": int(invoice.target_id)}))  # the same ref, no payment yet

    outcome = ErpWriter(erp_settings).deliver(refund)

    assert outcome.created is True
    assert [n["id"] for n in moves_with_ref(erp_reader, refund.idempotency_key)] == [int(left.target_id)]
    assert outcome.detail["invoices"] == {left.target_id: "paid"}
    assert outcome.detail["reversed_invoices"] == {invoice.target_id: "reversed"}


def test_chargeback_cancels_the_receipt_once_and_reopens_the_invoice_when_delivered_twice(
    erp_writer: ErpWriter, erp_reader: Any
) -> None:
    _, invoice, receipt = paid_invoice(erp_writer)
    chargeback = write("erp", "account.payment", "chargeback", f"erp-chargeback:{unique('dp_test')}",
                       {"invoice_id": int(invoice.target_id), "payment_id": receipt, "dispute_id": "dp_test",
                        "amount": str(invoice.detail["amount_total"])}, flow="payment_outcome")

    first = erp_writer.deliver(chargeback)
    again = erp_writer.deliver(chargeback)

    assert first.created is True and (again.created, again.target_id) == (False, first.target_id)
    assert first.detail["invoices"] == {invoice.target_id: "not_paid"}
    (stored,) = erp_reader.get_model("account.payment").search_read([("memo", "=", receipt)], ["state"])
    assert stored["state"] == "canceled"


def test_partial_chargeback_is_parked_when_the_dispute_takes_back_less_than_the_receipt(
    erp_writer: ErpWriter, erp_reader: Any
) -> None:
    _, invoice, receipt = paid_invoice(erp_writer)
    with pytest.raises(PermanentError) as caught:
        erp_writer.deliver(write("erp", "account.payment", "chargeback", f"erp-chargeback:{unique('dp_test')}",
                                 {"invoice_id": int(invoice.target_id), "payment_id": receipt, "dispute_id": "dp_x",
                                  "amount": "1.00"}))
    assert caught.value.code == "partial_chargeback"
    assert erp_reader.get_model("account.move").read([int(invoice.target_id)], ["payment_state"])[
        "payment_state"] == "paid"


# ---- error classes ------------------------------------------------------------------------------------


def test_server_errors_are_retryable_when_the_erp_answers_500(
    erp_writer: ErpWriter, erp_sandbox: RunningSandbox
) -> None:
    with faults(erp_sandbox, server_error_rate=1.0), pytest.raises(RetryableError) as caught:
        erp_writer.deliver(partner_write(account_id()))
    assert caught.value.http_status == 500
    assert not isinstance(caught.value, RateLimited)


def test_serialization_failures_are_retryable_when_the_erp_cannot_lock(
    erp_writer: ErpWriter, erp_sandbox: RunningSandbox
) -> None:
    with faults(erp_sandbox, lock_error_rate=1.0), pytest.raises(RetryableError) as caught:
        erp_writer.deliver(partner_write(account_id()))
    assert caught.value.code == "psycopg2.errors.SerializationFailure"


def test_rate_limits_carry_retry_after_when_the_erp_answers_429(
    erp_writer: ErpWriter, erp_sandbox: RunningSandbox
) -> None:
    with faults(erp_sandbox, rate_limit_rate=1.0, retry_after_seconds=5), pytest.raises(RateLimited) as caught:
        erp_writer.deliver(partner_write(account_id()))
    assert caught.value.retry_after_seconds == 5.0
    assert caught.value.http_status == 429


def test_unknown_fields_are_parked_with_odoos_error_when_the_payload_is_wrong(erp_writer: ErpWriter) -> None:
    with pytest.raises(PermanentError) as caught:
        erp_writer.deliver(partner_write(account_id(), no_such_field=1))
    assert caught.value.code == "builtins.ValueError"
    assert "no_such_field" in str(caught.value)


def test_a_refused_api_key_is_permanent_when_the_key_is_wrong(erp_settings: ErpSettings) -> None:
    writer = ErpWriter(erp_settings.model_copy(update={"api_key": SecretStr("not-a-key")}))
    with pytest.raises(PermanentError) as caught:
        writer.deliver(partner_write(account_id()))
    assert (caught.value.code, caught.value.http_status) == ("authentication_failed", 401)
