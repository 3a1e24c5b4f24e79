"""Canonical-layer checks over the dbt marts (schema ``marts``): keys unique, relationships hold, and every
won opportunity has a customer. A mart not built yet makes its checks "not run", never failed."""

from __future__ import annotations

from expectations.checks import Check

MARTS = "marts"


def _unique(table: str, key: str, severity: str = "error") -> Check:
    return Check(
        name=f"{table}.{key}_unique", suite="canonical", severity=severity, schema=MARTS, table=table,  # type: ignore[arg-type]
        description=f"{table} has one row per {key}, and no row without one.",
        sql=f"select {key}, count(*) as rows from {{batch}} group by {key} having count(*) > 1 or {key} is null "
            f"order by {key}",
    )


def canonical_checks() -> list[Check]:
    """Every canonical-layer check."""
    return [
        _unique("fct_invoices", "erp_invoice_id"),
        _unique("fct_payments", "charge_id"),
        _unique("dim_customers", "customer_id"),
        _unique("fct_opportunities", "opportunity_id", "warn"),
        Check(
            name="fct_payments.erp_invoice_id_in_fct_invoices", suite="canonical", severity="error", schema=MARTS,
            table="fct_payments", requires=(f"{MARTS}.fct_invoices",), covers=((MARTS, "fct_invoices"),),
            description="A payment that names an ERP invoice names one the invoices mart holds.",
            sql="select p.charge_id, p.erp_invoice_id from {batch} as p "
                "left join marts.fct_invoices as i on i.erp_invoice_id = p.erp_invoice_id "
                "where p.erp_invoice_id is not null and i.erp_invoice_id is null order by p.charge_id",
        ),
        Check(
            name="fct_invoices.customer_id_in_dim_customers", suite="canonical", severity="error", schema=MARTS,
            table="fct_invoices", requires=(f"{MARTS}.dim_customers",), covers=((MARTS, "dim_customers"),),
            description="Every invoice belongs to a known customer.",
            sql="select i.erp_invoice_id, i.customer_id from {batch} as i "
                "left join marts.dim_customers as c on c.customer_id = i.customer_id "
                "where c.customer_id is null order by i.erp_invoice_id",
        ),
        Check(
            name="won_opportunity_has_customer", suite="canonical", severity="error", schema=MARTS,
            table="fct_opportunities", requires=(f"{MARTS}.dim_customers",), covers=((MARTS, "dim_customers"),),
            description="Every Closed Won opportunity resolves to a customer of dim_customers.",
            sql="select o.opportunity_id, o.salesforce_account_id, o.customer_id from {batch} as o "
                "left join marts.dim_customers as c on c.customer_id = o.customer_id "
                "where o.stage = 'closed_won' and c.customer_id is null order by o.opportunity_id",
        ),
    ]
