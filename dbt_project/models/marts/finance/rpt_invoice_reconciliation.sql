{#- Per won Opportunity, the invoice as each system holds it, side by side, with the differences in amount,
    currency and payment status, and one reconciliation_status naming the first disagreement found
    (checked in the order of the case expression below). -#}

with opportunities as (
    select * from {{ ref('stg_salesforce__opportunities') }}
    where not is_deleted and stage = 'closed_won'
),

salesforce_invoices as (
    select distinct on (opportunity_id) *
    from {{ ref('stg_salesforce__invoices') }}
    where not is_deleted and opportunity_id is not null
    order by opportunity_id, system_modified_at desc
),

erp_invoices as (
    select distinct on (salesforce_opportunity_id) *
    from {{ ref('fct_invoices') }}
    where move_type = 'out_invoice' and salesforce_opportunity_id is not null
    order by salesforce_opportunity_id, erp_invoice_id desc
),

payments_invoices as (
    select distinct on (salesforce_opportunity_id) *
    from {{ ref('stg_payments__invoices') }}
    where not is_deleted and salesforce_opportunity_id is not null
    order by salesforce_opportunity_id, created_at desc
),

collected as (
    select
        payments_invoice_id,
        count(*) as payment_attempts,
        coalesce(sum(amount_captured) filter (where is_succeeded), 0) as amount_captured,
        coalesce(sum(amount_refunded) filter (where is_succeeded), 0) as amount_refunded
    from {{ ref('fct_payments') }}
    where payments_invoice_id is not null
    group by payments_invoice_id
),

xref as (
    select source_id, customer_id from {{ ref('int_customer_xref') }} where source_system = 'salesforce'
),

currencies as (
    select * from {{ ref('currencies') }}
),

joined as (
    select
        opportunities.opportunity_id as salesforce_opportunity_id,
        xref.customer_id,
        salesforce_invoices.invoice_id as salesforce_invoice_id,
        erp_invoices.erp_invoice_id,
        erp_invoices.invoice_number as erp_invoice_number,
        payments_invoices.invoice_id as payments_invoice_id,

        opportunities.currency_code as salesforce_opportunity_currency_code,
        salesforce_invoices.currency_code as salesforce_invoice_currency_code,
        erp_invoices.currency_code as erp_currency_code,
        payments_invoices.currency_code as payments_currency_code,

        {{ at_currency_scale('opportunities.amount', 'currencies.iso_exponent') }} as salesforce_opportunity_amount,
        {{ at_currency_scale('salesforce_invoices.amount', 'currencies.iso_exponent') }} as salesforce_invoice_amount,
        erp_invoices.amount_total as erp_amount,
        payments_invoices.total as payments_invoice_amount,
        coalesce(collected.amount_captured, 0) as payments_captured_amount,
        coalesce(collected.amount_refunded, 0) as payments_refunded_amount,
        coalesce(collected.payment_attempts, 0) as payment_attempts,

        salesforce_invoices.status as salesforce_invoice_status,
        erp_invoices.status as erp_invoice_status,
        payments_invoices.status as payments_invoice_status,
        salesforce_invoices.payment_status as salesforce_payment_status,
        salesforce_invoices.source_payment_status as salesforce_source_payment_status,
        erp_invoices.payment_status as erp_payment_status,
        case
            when payments_invoices.invoice_id is null then null
            when coalesce(collected.amount_captured, 0) = 0 then 'unpaid'
            when collected.amount_refunded >= collected.amount_captured then 'refunded'
            when collected.amount_captured >= payments_invoices.total then 'paid'
            else 'partially_paid'
        end as payments_payment_status
    from opportunities
    left join salesforce_invoices on salesforce_invoices.opportunity_id = opportunities.opportunity_id
    left join erp_invoices on erp_invoices.salesforce_opportunity_id = opportunities.opportunity_id
    left join payments_invoices on payments_invoices.salesforce_opportunity_id = opportunities.opportunity_id
    left join collected on collected.payments_invoice_id = payments_invoices.invoice_id
    left join xref on xref.source_id = opportunities.account_id
    left join currencies on currencies.currency_code = opportunities.currency_code
),

compared as (
    select
        *,
        erp_amount - coalesce(salesforce_invoice_amount, salesforce_opportunity_amount) as erp_minus_salesforce_amount,
        payments_invoice_amount - erp_amount as payments_minus_erp_amount,
        payments_captured_amount - payments_refunded_amount - erp_amount as collected_minus_erp_amount,
        (
            select count(distinct code) = 1
            from (values (salesforce_opportunity_currency_code), (salesforce_invoice_currency_code),
                         (erp_currency_code), (payments_currency_code)) as codes (code)
            where code is not null
        ) as is_currency_matched,
        (
            select count(distinct amount) = 1
            from (values (salesforce_opportunity_amount), (salesforce_invoice_amount), (erp_amount),
                         (payments_invoice_amount)) as amounts (amount)
            where amount is not null
        ) as is_amount_matched,
        (
            select count(distinct status) <= 1
            from (values (salesforce_payment_status), (erp_payment_status), (payments_payment_status))
                as statuses (status)
            where status is not null
        ) as is_payment_status_matched
    from joined
),

final as (
    select
        *,
        case
            when erp_invoice_id is null then 'missing_erp_invoice'
            when salesforce_invoice_id is null then 'missing_salesforce_invoice'
            when payments_invoice_id is null then 'missing_payments_invoice'
            when not is_currency_matched then 'currency_mismatch'
            when not is_amount_matched then 'amount_mismatch'
            when not is_payment_status_matched then 'status_mismatch'
            when erp_invoice_status = 'void' then 'void'
            when erp_payment_status = 'refunded' then 'refunded'
            when erp_payment_status = 'paid' and payments_captured_amount = erp_amount then 'reconciled'
            when erp_payment_status = 'paid' then 'payment_amount_mismatch'
            when erp_payment_status = 'partially_paid' then 'partially_paid'
            else 'awaiting_payment'
        end as reconciliation_status
    from compared
)

select
    *,
    reconciliation_status = 'reconciled' as is_fully_reconciled
from final
