"""Customer master data: each field flows from its owner (Salesforce: name and billing address; the ERP:
billing email and phone) to the systems that follow it, once, and our own writes coming back change nothing.
Driven through the real clients: simple-salesforce, odoolib, the stripe SDK."""

from __future__ import annotations

import secrets
from typing import Any

import psycopg
from typer.testing import CliRunner

from revloop.cli import app
from revloop.connectors import erp as erp_connector
from tests.flows.conftest import World, wait_for
from tests.flows.test_plan_and_rules import _refresh_without_flows

FLOW = "customer_master"


def linked_customer(world: World, offset: int) -> dict[str, Any]:
    """An Account whose customer has exactly one ERP partner and one payments customer, both firmly linked
    (picked from the end of the list, away from the Accounts other flow tests use)."""
    with psycopg.connect(world.database_url) as conn:
        row = conn.execute(
            """select a.source_id, e.source_id::bigint, p.source_id
               from intermediate.int_customer_xref a
               join intermediate.int_customer_xref e
                 on e.customer_id = a.customer_id and e.source_system = 'erp' and e.match_confidence >= 0.95
               join intermediate.int_customer_xref p
                 on p.customer_id = a.customer_id and p.source_system = 'payments' and p.match_confidence >= 0.95
               where a.source_system = 'salesforce' and a.match_rule = 'salesforce_account'
                 and (select count(*) from intermediate.int_customer_xref o
                      where o.customer_id = a.customer_id and o.source_system in ('erp', 'payments')) = 2
               order by a.source_id desc offset %s limit 1""",
            (offset,),
        ).fetchone()
    assert row is not None, "the demo book has firmly linked customers"
    return {"account": row[0], "partner": int(row[1]), "customer": row[2]}


def master_writes(world: World) -> list[dict[str, Any]]:
    with psycopg.connect(world.database_url) as conn:
        cursor = conn.execute("select id, target_system, source_ref, idempotency_key, state from sync.outbox "
                              "where flow = %s order by id", (FLOW,))
        return [dict(zip(("id", "system", "ref", "key", "state"), row, strict=True)) for row in cursor]


def partner(world: World, partner_id: int) -> dict[str, Any]:
    return world.erp.get_model("res.partner").read([partner_id], ["name", "street", "city", "zip", "email",
                                                                  "country_id"])


def payments_customer(world: World, customer_id: str) -> dict[str, Any]:
    return world.stripe.v1.customers.retrieve(customer_id).to_dict()


def test_billing_address_reaches_erp_and_payments_once_and_comes_back_without_a_write_when_changed_in_salesforce(
        world: World) -> None:
    ids = linked_customer(world, 0)
    street = f"{secrets.randbelow(900) + 100} Robinson Road"
    world.sf.Account.update(ids["account"], {"BillingStreet": street, "BillingCity": "Singapore",
                                             "BillingPostalCode": "068898"})
    before = master_writes(world)

    wait_for(lambda: partner(world, ids["partner"])["street"] == street, step=world.run_cycle,
             what="the ERP partner's street")
    held = partner(world, ids["partner"])
    assert (held["city"], held["zip"]) == ("Singapore", "068898")
    address = payments_customer(world, ids["customer"])["address"]
    assert (address["line1"], address["city"], address["postal_code"]) == (street, "Singapore", "068898")
    written = master_writes(world)[len(before):]
    assert sorted((w["system"], w["ref"], w["state"]) for w in written) == [
        ("erp", f"erp:{ids['partner']}", "delivered"), ("payments", f"payments:{ids['customer']}", "delivered")]

    for _ in range(2):  # the loads read both followers back (our own writes): nothing goes either way
        world.run_cycle()
    assert master_writes(world) == before + written
    with psycopg.connect(world.database_url) as conn:
        reread = conn.execute(
            """select p.extracted_at > o.delivered_at, p.street_hash = a.billing_street_hash
               from staging.stg_erp__partners p, staging.stg_salesforce__accounts a, sync.outbox o
               where p.partner_id = %s and a.account_id = %s and o.id = %s""",
            (ids["partner"], ids["account"], next(w["id"] for w in written if w["system"] == "erp")),
        ).fetchone()
    assert reread == (True, True), "the ERP load read our write back and it equals the owner's value"


def test_billing_email_flows_from_the_erp_to_payments_and_never_to_salesforce_when_finance_changes_it(
        world: World) -> None:
    ids = linked_customer(world, 1)
    email = f"accounts.payable+{secrets.token_hex(3)}@example.com"
    erp_connector.connect(world.settings.erp).get_model("res.partner").write([ids["partner"]], {"email": email})
    before = master_writes(world)

    wait_for(lambda: payments_customer(world, ids["customer"])["email"] == email, step=world.run_cycle,
             what="the payments customer's billing email")

    written = master_writes(world)[len(before):]
    assert [(w["system"], w["ref"]) for w in written] == [("payments", f"payments:{ids['customer']}")]
    world.run_cycle()
    assert len(master_writes(world)) == len(before) + 1


def test_follower_edit_is_overwritten_by_the_owners_value_when_someone_edits_the_erp_partner(world: World) -> None:
    ids = linked_customer(world, 2)
    owner_city = world.sf.Account.get(ids["account"])["BillingCity"]
    assert owner_city, "the demo book's Accounts carry a billing city"
    erp_connector.connect(world.settings.erp).get_model("res.partner").write([ids["partner"]],
                                                                              {"city": "Somewhere Else"})
    before = master_writes(world)

    reports = []
    wait_for(lambda: partner(world, ids["partner"])["city"] == owner_city,
             step=lambda: reports.append(world.run_cycle()), what="the owner's city back in the ERP")

    (write,) = [w for w in master_writes(world)[len(before):]]
    assert (write["system"], write["ref"]) == ("erp", f"erp:{ids['partner']}")
    planned = [p for r in reports for plan in r.plans if plan.flow == FLOW for p in plan.writes]
    assert [(p.write.source_ref, [c.describe() for c in p.changes]) for p in planned] == [
        (f"erp:{ids['partner']}", [f"city: Somewhere Else -> {owner_city}"])]


def test_plan_masks_the_street_and_names_the_change_when_run_dry(world: World, cli_env: dict[str, str]) -> None:
    ids = linked_customer(world, 3)
    street = f"{secrets.randbelow(900) + 100} Secret Lane"
    world.sf.Account.update(ids["account"], {"BillingStreet": street})
    _refresh_without_flows(world)

    result = CliRunner().invoke(app, ["plan"], env=cli_env)

    assert result.exit_code == 0, result.output
    assert street not in result.output
    assert f"erp:{ids['partner']}: update erp res.partner [master:erp:{ids['partner']}:" in result.output
    assert f"street: *** -> {street[0]}***e" in result.output
    assert f"payments:{ids['customer']}: update payments customer" in result.output
    wait_for(lambda: partner(world, ids["partner"])["street"] == street, step=world.run_cycle,
             what="the street delivered")  # leave the world settled for the next tests


def test_phone_too_long_for_the_payments_platform_is_held_not_sent_when_the_erp_holds_one(world: World) -> None:
    ids = linked_customer(world, 4)
    partners = erp_connector.connect(world.settings.erp).get_model("res.partner")
    long_phone = "+65 6123 4567 extension 8901"  # 28 characters; Stripe takes 20 and echoes longer ones
    partners.write([ids["partner"]], {"phone": long_phone})
    before = master_writes(world)
    try:
        report = world.run_cycle()
        holds = [h for p in report.plans if p.flow == FLOW for h in p.holds
                 if h.source_ref == f"payments:{ids['customer']}"]
        assert len(holds) == 1 and "phone from the ERP partner is longer" in holds[0].reason
        assert long_phone not in holds[0].reason
        assert payments_customer(world, ids["customer"])["phone"] != long_phone
        assert master_writes(world) == before
    finally:
        partners.write([ids["partner"]], {"phone": "+65 6123 4567"})
    wait_for(lambda: payments_customer(world, ids["customer"])["phone"] == "+65 6123 4567", step=world.run_cycle,
             what="a valid phone delivered")
