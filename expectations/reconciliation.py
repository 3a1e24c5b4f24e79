"""Reconciliation checks: Salesforce, the ERP and the payments platform agree, and where they do not.

Written in SQL over the raw layer and pushed down to PostgreSQL (GX's ``UnexpectedRowsExpectation``), so a
million-record book is joined by the database, not pulled into pandas. They read the raw tables, not the
canonical marts, on purpose: the reconciliation is an independent proof that must not share the joins it
is checking. Cross-references are the ones our flows write:

* ERP ``account_move.invoice_origin`` = the Salesforce Opportunity Id, ``ref`` = ``rl-inv-<opportunity id>``;
* Salesforce ``invoice_c.erp_invoice_id_c`` = the ERP invoice id, ``revloop_key_c`` = the ERP ``ref``;
* payments ``metadata`` (JSON) carries ``erp_invoice_id``, ``salesforce_opportunity_id`` and ``revloop_key``.

Amounts: Salesforce and the ERP in major units, the payments platform in integer minor units by Stripe's
exponent for the currency; compared at the currency's ISO 4217 scale (to the cent, to the yen).
Every query returns one row per offending record with each system's id and the differences.
"""

from __future__ import annotations

import os

from expectations.checks import Check
from pipelines.common.currencies import _THREE_DECIMALS, EXPONENTS, STRIPE_ZERO_DECIMAL

INVOICE_SLA_DAYS = int(os.environ.get("REVLOOP_QUALITY_INVOICE_SLA_DAYS", "3"))
"""A Closed Won opportunity must have its posted ERP invoice within this many days of its close date."""

SALESFORCE = ("raw_salesforce", "opportunity"), ("raw_salesforce", "invoice_c")
ERP = ("raw_erp", "account_move"), ("raw_erp", "account_payment")
PAYMENTS = ("raw_payments", "invoice"), ("raw_payments", "charge"), ("raw_payments", "refund")


def _codes(codes: object) -> str:
    return ", ".join(f"'{code}'" for code in sorted(codes))  # type: ignore[call-overload]


STRIPE_EXPONENT = (
    f"(case when upper({{col}}) in ({_codes(STRIPE_ZERO_DECIMAL)}) then 0 "
    f"when upper({{col}}) in ({_codes(_THREE_DECIMALS)}) then 3 else 2 end)"
)
"""Stripe's minor-unit exponent of a currency column (``{col}``), as SQL."""

_ISO_GROUPS: dict[int, list[str]] = {}
for _code, _exponent in EXPONENTS.items():
    _ISO_GROUPS.setdefault(_exponent, []).append(_code)
ISO_EXPONENT = (
    "(case "
    + " ".join(f"when upper({{col}}) in ({_codes(codes)}) then {exp}" for exp, codes in sorted(_ISO_GROUPS.items())
               if exp != 2)
    + " else 2 end)"
)
"""ISO 4217 exponent of a currency column (``{col}``), as SQL; the scale amounts are compared at."""


def _stripe_exponent(column: str) -> str:
    return STRIPE_EXPONENT.replace("{col}", column)


def _iso_exponent(column: str) -> str:
    return ISO_EXPONENT.replace("{col}", column)


def _escaped(sql: str) -> str:
    """Doubles braces in a fragment that goes into a ``str.format`` template (GX formats ``{batch}``)."""
    return sql.replace("{", "{{").replace("}", "}}")


# The three views of one invoice, keyed by the ERP invoice id. Salesforce and the payments platform
# may hold more than one record per ERP invoice after a bad retry: the newest one speaks for the system.
_SALESFORCE_INVOICES = """
    select distinct on (erp_invoice_id_c) erp_invoice_id_c::bigint as erp_invoice_id, id, amount_c,
           currency_iso_code, status_c, payment_status_c
    from raw_salesforce.invoice_c
    where not is_deleted and erp_invoice_id_c ~ '^[0-9]+$'
    order by erp_invoice_id_c, system_modstamp desc
"""

_PAYMENTS_INVOICES = f"""
    select distinct on (erp_invoice_id) *
    from (
        select (metadata::jsonb ->> 'erp_invoice_id')::bigint as erp_invoice_id, id, total, amount_paid, currency,
               status, created, {_escaped(_stripe_exponent('currency'))} as stripe_exponent
        from raw_payments.invoice
        where not is_deleted and metadata::jsonb ->> 'erp_invoice_id' ~ '^[0-9]+$'
    ) as invoices
    order by erp_invoice_id, created desc
"""

_ERP_INVOICES = f"""
    select m.id, m.name, m.ref, m.invoice_origin, m.state, m.payment_state, m.currency_name,
           m.amount_total, m.amount_residual, {_escaped(_iso_exponent('m.currency_name'))} as iso_exponent
    from {{batch}} as m
    where not m.is_deleted and m.move_type = 'out_invoice'
"""

_THREE_WAY = f"""
    with erp as ({_ERP_INVOICES}),
    sf as ({_SALESFORCE_INVOICES}),
    pay as ({_PAYMENTS_INVOICES})
"""

WON_DEAL_INVOICED_ONCE = f"""
    with posted as (
        select invoice_origin, count(*) as posted_count, array_agg(id order by id) as erp_invoice_ids
        from raw_erp.account_move
        where not is_deleted and move_type = 'out_invoice' and state = 'posted'
        group by invoice_origin
    )
    select o.id as salesforce_opportunity_id, o.account_id as salesforce_account_id, o.close_date,
           coalesce(p.posted_count, 0) as posted_erp_invoices, p.erp_invoice_ids
    from {{batch}} as o
    left join posted as p on p.invoice_origin = o.id
    where not o.is_deleted and o.stage_name = 'Closed Won'
      and o.close_date < current_date - {INVOICE_SLA_DAYS}
      and coalesce(p.posted_count, 0) <> 1
    order by o.id
"""

ERP_INVOICE_HAS_DEAL = """
    select m.id as erp_invoice_id, m.name as erp_invoice_number, m.invoice_origin as salesforce_opportunity_id,
           o.stage_name as opportunity_stage,
           case when o.id is null then 'no such opportunity' else 'opportunity not Closed Won' end as problem
    from {batch} as m
    left join raw_salesforce.opportunity as o on o.id = m.invoice_origin and not o.is_deleted
    where not m.is_deleted and m.move_type = 'out_invoice' and m.state <> 'cancel'
      and (o.id is null or o.stage_name <> 'Closed Won')
    order by m.id
"""

INVOICE_AMOUNTS_AGREE = f"""
    {_THREE_WAY}
    select erp.id as erp_invoice_id, sf.id as salesforce_invoice_id, pay.id as payments_invoice_id,
           erp.currency_name as currency,
           round(erp.amount_total, erp.iso_exponent) as erp_amount,
           round(sf.amount_c, erp.iso_exponent) as salesforce_amount,
           round(pay.total / 10 ^ pay.stripe_exponent::numeric, erp.iso_exponent) as payments_amount,
           round(sf.amount_c - erp.amount_total, erp.iso_exponent) as salesforce_minus_erp,
           round(pay.total / 10 ^ pay.stripe_exponent::numeric - erp.amount_total, erp.iso_exponent)
               as payments_minus_erp
    from erp
    left join sf on sf.erp_invoice_id = erp.id
    left join pay on pay.erp_invoice_id = erp.id
    where erp.state = 'posted'
      and (round(sf.amount_c, erp.iso_exponent) <> round(erp.amount_total, erp.iso_exponent)
        or round(pay.total / 10 ^ pay.stripe_exponent::numeric, erp.iso_exponent)
           <> round(erp.amount_total, erp.iso_exponent))
    order by erp.id
"""

INVOICE_CURRENCIES_AGREE = f"""
    {_THREE_WAY}
    select erp.id as erp_invoice_id, sf.id as salesforce_invoice_id, pay.id as payments_invoice_id,
           erp.currency_name as erp_currency, sf.currency_iso_code as salesforce_currency,
           upper(pay.currency) as payments_currency
    from erp
    left join sf on sf.erp_invoice_id = erp.id
    left join pay on pay.erp_invoice_id = erp.id
    where sf.currency_iso_code <> erp.currency_name or upper(pay.currency) <> erp.currency_name
    order by erp.id
"""

# Each system's status in one vocabulary. The payments platform keeps a refunded invoice `paid` (the
# refund lives on the charge), so against it a refund counts as paid.
_ERP_STATUS = """case when erp.state = 'cancel' then 'cancelled' when erp.state <> 'posted' then 'draft'
    when erp.payment_state in ('paid', 'in_payment') then 'paid'
    when erp.payment_state = 'partial' then 'partially_paid'
    when erp.payment_state = 'reversed' then 'refunded' else 'unpaid' end"""
_SF_STATUS = """case when sf.status_c = 'Cancelled' then 'cancelled' when sf.status_c = 'Draft' then 'draft'
    when sf.payment_status_c in ('Paid', 'Disputed') then 'paid'
    when sf.payment_status_c = 'Partially Paid' then 'partially_paid'
    when sf.payment_status_c = 'Refunded' then 'refunded' else 'unpaid' end"""
_PAY_STATUS = """case when pay.status = 'void' then 'cancelled' when pay.status = 'paid' then 'paid'
    when pay.status = 'open' and pay.amount_paid > 0 then 'partially_paid' else 'unpaid' end"""

INVOICE_STATUSES_AGREE = f"""
    {_THREE_WAY},
    lost as (  -- a lost dispute took the money back: the invoice is unpaid again wherever it shows as paid
        select distinct charge.invoice as payments_invoice_id
        from raw_payments.dispute join raw_payments.charge on charge.id = dispute.charge and not charge.is_deleted
        where not dispute.is_deleted and dispute.status = 'lost' and charge.invoice is not null
    ),
    statuses as (
        select erp.id as erp_invoice_id, sf.id as salesforce_invoice_id, pay.id as payments_invoice_id,
               erp.state || '/' || erp.payment_state as erp_status,
               sf.status_c || '/' || sf.payment_status_c as salesforce_status, pay.status as payments_status,
               lost.payments_invoice_id is not null as dispute_lost,
               {_ERP_STATUS} as erp_normalized,
               case when sf.id is null then null
                    when lost.payments_invoice_id is not null and sf.payment_status_c = 'Disputed' then 'unpaid'
                    else {_SF_STATUS} end as salesforce_normalized,
               case when pay.id is null then null
                    when lost.payments_invoice_id is not null and pay.status = 'paid' then 'unpaid'
                    else {_PAY_STATUS} end as payments_normalized
        from erp
        left join sf on sf.erp_invoice_id = erp.id
        left join pay on pay.erp_invoice_id = erp.id
        left join lost on lost.payments_invoice_id = pay.id
    )
    select * from statuses
    where salesforce_normalized <> erp_normalized
       or payments_normalized <> case when erp_normalized = 'refunded' then 'paid' else erp_normalized end
    order by erp_invoice_id
"""

PAYMENTS_NET_EQUALS_ERP_PAID = f"""
    with charges as (
        select c.id, c.amount_captured, c.currency,
               coalesce(c.metadata::jsonb ->> 'erp_invoice_id', i.metadata::jsonb ->> 'erp_invoice_id')
                   as erp_invoice_id
        from raw_payments.charge as c
        left join raw_payments.invoice as i on i.id = c.invoice and not i.is_deleted
        where not c.is_deleted and c.status = 'succeeded'
    ),
    refunds as (
        select charge, sum(amount) as refunded from raw_payments.refund
        where not is_deleted and status = 'succeeded' group by charge
    ),
    lost_disputes as (  -- a lost dispute takes the money back as surely as a refund
        select charge, sum(amount) as withdrawn from raw_payments.dispute
        where not is_deleted and status = 'lost' group by charge
    ),
    net as (
        select charges.erp_invoice_id::bigint as erp_invoice_id, min(charges.currency) as currency,
               count(*) as charges, array_agg(charges.id order by charges.id) as charge_ids,
               sum(charges.amount_captured - coalesce(refunds.refunded, 0) - coalesce(lost_disputes.withdrawn, 0))
                   / 10 ^ min({_escaped(_stripe_exponent('charges.currency'))})::numeric as net_paid
        from charges left join refunds on refunds.charge = charges.id
                     left join lost_disputes on lost_disputes.charge = charges.id
        where charges.erp_invoice_id ~ '^[0-9]+$'
        group by charges.erp_invoice_id
    ),
    credit_notes as (
        select reversed_entry_id, sum(amount_total - amount_residual) as refunded
        from raw_erp.account_move
        where not is_deleted and move_type = 'out_refund' and state = 'posted' group by reversed_entry_id
    ),
    erp as ({_ERP_INVOICES})
    select erp.id as erp_invoice_id, net.charge_ids as payments_charge_ids, erp.currency_name as currency,
           erp.payment_state as erp_payment_state,
           round(case when erp.payment_state = 'reversed' then 0
                      else erp.amount_total - erp.amount_residual - coalesce(cn.refunded, 0) end,
                 erp.iso_exponent) as erp_paid,
           round(coalesce(net.net_paid, 0), erp.iso_exponent) as payments_net,
           round(coalesce(net.net_paid, 0) - case when erp.payment_state = 'reversed' then 0
                 else erp.amount_total - erp.amount_residual - coalesce(cn.refunded, 0) end, erp.iso_exponent)
               as payments_minus_erp
    from erp
    join net on net.erp_invoice_id = erp.id
    left join credit_notes as cn on cn.reversed_entry_id = erp.id
    where erp.state = 'posted'
      and round(coalesce(net.net_paid, 0), erp.iso_exponent)
          <> round(case when erp.payment_state = 'reversed' then 0
                        else erp.amount_total - erp.amount_residual - coalesce(cn.refunded, 0) end, erp.iso_exponent)
    order by erp.id
"""

NO_ORPHAN_PAYMENTS = f"""
    select c.id as payments_charge_id, c.payment_intent as payments_payment_intent_id,
           c.customer as payments_customer_id,
           round(c.amount / 10 ^ {_escaped(_stripe_exponent('c.currency'))}::numeric,
                 {_escaped(_stripe_exponent('c.currency'))}) as amount, upper(c.currency) as currency,
           c.created, c.invoice as payments_invoice_id, c.metadata::jsonb ->> 'erp_invoice_id' as erp_invoice_id
    from {{batch}} as c
    left join raw_payments.invoice as i on i.id = c.invoice and not i.is_deleted
    left join raw_erp.account_move as m
        on m.id::text = coalesce(c.metadata::jsonb ->> 'erp_invoice_id', i.metadata::jsonb ->> 'erp_invoice_id')
        and not m.is_deleted
    where not c.is_deleted and c.status = 'succeeded' and m.id is null
    order by c.id
"""


# what the checks read of disputes while the payments platform has none (dlt creates the table with the first)
_NO_DISPUTES = ("select null::text as charge, 0::bigint as amount, null::text as status, false as is_deleted "
                "where false")
_NO_CHARGES = "select null::text as id, null::text as invoice, false as is_deleted where false"


def reconciliation_checks() -> list[Check]:
    """Every reconciliation check; all are errors: a sync writing from disagreeing systems spreads the error."""
    sf_opp, sf_inv = SALESFORCE
    move, payment = ERP
    pay_inv, charge, refund = PAYMENTS
    three_way = (*[f"{s}.{t}" for s, t in (sf_inv, pay_inv)],)
    return [
        Check(
            name="won_deal_invoiced_once", suite="reconciliation", severity="error", schema=sf_opp[0],
            table=sf_opp[1], sql=WON_DEAL_INVOICED_ONCE, requires=("raw_erp.account_move",), covers=(move,),
            description=f"Every Closed Won opportunity closed more than {INVOICE_SLA_DAYS} days ago has exactly "
                        "one posted ERP invoice (none: never invoiced; two or more: invoiced twice).",
        ),
        Check(
            name="erp_invoice_has_deal", suite="reconciliation", severity="error", schema=move[0], table=move[1],
            sql=ERP_INVOICE_HAS_DEAL, requires=("raw_salesforce.opportunity",), covers=(sf_opp,),
            description="Every ERP customer invoice that is not cancelled comes from a Closed Won opportunity.",
        ),
        Check(
            name="invoice_amounts_agree", suite="reconciliation", severity="error", schema=move[0], table=move[1],
            sql=INVOICE_AMOUNTS_AGREE, requires=three_way, covers=(sf_inv, pay_inv),
            description="Salesforce Invoice__c, the ERP invoice and the payments invoice hold the same total, "
                        "to the minor unit of the invoice's currency.",
        ),
        Check(
            name="invoice_currencies_agree", suite="reconciliation", severity="error", schema=move[0],
            table=move[1], sql=INVOICE_CURRENCIES_AGREE, requires=three_way, covers=(sf_inv, pay_inv),
            description="The three systems hold the invoice in the same currency.",
        ),
        Check(
            name="invoice_statuses_agree", suite="reconciliation", severity="error", schema=move[0],
            table=move[1], sql=INVOICE_STATUSES_AGREE, requires=three_way,
            optional=(("raw_payments.dispute", _NO_DISPUTES), ("raw_payments.charge", _NO_CHARGES)),
            covers=(sf_inv, pay_inv),
            description="The three systems agree whether the invoice is cancelled, unpaid, partially paid, paid "
                        "or refunded (a paid invoice whose dispute was lost is unpaid again: the ERP receipt "
                        "is cancelled, Salesforce shows Disputed, the payments invoice stays paid).",
        ),
        Check(
            name="payments_net_equals_erp_paid", suite="reconciliation", severity="error", schema=move[0],
            table=move[1], sql=PAYMENTS_NET_EQUALS_ERP_PAID,
            requires=("raw_payments.charge", "raw_payments.refund", "raw_payments.invoice"),
            optional=(("raw_payments.dispute", _NO_DISPUTES),),
            covers=(charge, refund, payment),
            description="Per invoice, succeeded charges minus succeeded refunds and lost disputes equal what the "
                        "ERP records as paid (total minus residual, less posted credit notes; zero once reversed).",
        ),
        Check(
            name="no_orphan_payments", suite="reconciliation", severity="error", schema=charge[0], table=charge[1],
            sql=NO_ORPHAN_PAYMENTS, requires=("raw_payments.invoice", "raw_erp.account_move"), covers=(move,),
            description="Every succeeded charge belongs to an ERP invoice (through its payments invoice or its "
                        "own metadata).",
        ),
    ]
