{#- Per won Opportunity, the invoice as each system holds it, side by side, with the differences in amount,
    currency and payment status, and one reconciliation_status naming the first disagreement found
    (checked in the order of the case expression below).
    Incremental: a refresh recomputes the Opportunities whose own row, Salesforce invoice or payments invoice
    came with a load since the last build, those whose ERP invoice (fct_invoices) or payments (fct_payments)
    were written or removed since, whether they point at the Opportunity now or did before, and those whose
    Account identity resolution re-resolved. An Opportunity no longer won, or deleted, is removed. -#}
{{ config(
    materialized='incremental',
    unique_key='salesforce_opportunity_id',
    incremental_strategy='refresh',
    on_schema_change='append_new_columns',
    indexes=[{'columns': ['salesforce_invoice_id']}, {'columns': ['erp_invoice_id']},
             {'columns': ['payments_invoice_id']}, {'columns': ['refreshed_at']}],
) }}

-- depends_on: {{ ref('fct_opportunities') }}, {{ ref('stg_payments__charges') }}, {{ ref('stg_payments__payment_intents') }}
with
{% if is_incremental() %}
salesforce_invoices_loaded as (
    select invoice_id, opportunity_id from {{ ref('stg_salesforce__invoices') }}
    where {{ loaded_since_last_build('salesforce') }}
),

erp_invoices_changed as (
    select erp_invoice_id, salesforce_opportunity_id from {{ ref('fct_invoices') }}
    where {{ refreshed_since_last_build('fct_invoices') }}
    union all
    select removed.key::bigint, null from ({{ removed_since_last_build('fct_invoices') }}) as removed
),

-- charges fct_payments removed since, as loaded (a charge never changes invoice)
removed_charges as (
    select charge_id, invoice_id, payment_intent_id from {{ ref('stg_payments__charges') }}
    where charge_id = any(array(select key from ({{ removed_since_last_build('fct_payments') }}) as removed))
),

-- payments invoices loaded since, and those whose payments were written or removed since
payments_invoices_changed as (
    select invoice_id from {{ ref('stg_payments__invoices') }} where {{ loaded_since_last_build('payments') }}
    union
    select payments_invoice_id from {{ ref('fct_payments') }}
    where {{ refreshed_since_last_build('fct_payments') }} and payments_invoice_id is not null
    union
    select invoice_id from removed_charges where invoice_id is not null
    union
    select invoice_id from {{ ref('stg_payments__payment_intents') }}
    where payment_intent_id = any(array(select payment_intent_id from removed_charges)) and invoice_id is not null
),

changed as materialized (
    select opportunity_id from {{ ref('stg_salesforce__opportunities') }}
    where {{ loaded_since_last_build('salesforce') }}
    union
    select opportunity_id from salesforce_invoices_loaded where opportunity_id is not null
    union
    select salesforce_opportunity_id from erp_invoices_changed where salesforce_opportunity_id is not null
    union
    select salesforce_opportunity_id from {{ ref('stg_payments__invoices') }}
    where invoice_id = any(array(select invoice_id from payments_invoices_changed)) and salesforce_opportunity_id is not null
    union
    -- what the report held before: the invoices that pointed at an Opportunity
    select built.salesforce_opportunity_id from {{ this }} as built
    where built.salesforce_invoice_id in (select invoice_id from salesforce_invoices_loaded)
    union
    select built.salesforce_opportunity_id from {{ this }} as built
    where built.erp_invoice_id in (select erp_invoice_id from erp_invoices_changed)
    union
    select built.salesforce_opportunity_id from {{ this }} as built
    where built.payments_invoice_id in (select invoice_id from payments_invoices_changed)
    union
    -- identity resolution re-resolved the Account
    select opportunity_id from {{ ref('fct_opportunities') }}
    where salesforce_account_id in ({{ identity_changes('salesforce') }})
),
{% endif %}

opportunities as (
    select * from {{ ref('stg_salesforce__opportunities') }}
    where not is_deleted and stage = 'closed_won'
    {% if is_incremental() %} and opportunity_id = any(array(select opportunity_id from changed)) {% endif %}
),

salesforce_invoices as (
    select distinct on (opportunity_id) *
    from {{ ref('stg_salesforce__invoices') }}
    where not is_deleted and opportunity_id is not null
    {% if is_incremental() %} and opportunity_id = any(array(select opportunity_id from changed)) {% endif %}
    order by opportunity_id, system_modified_at desc
),

erp_invoices as (
    select distinct on (salesforce_opportunity_id) *
    from {{ ref('fct_invoices') }}
    where move_type = 'out_invoice' and salesforce_opportunity_id is not null
    {% if is_incremental() %} and salesforce_opportunity_id in (select opportunity_id from changed) {% endif %}
    order by salesforce_opportunity_id, erp_invoice_id desc
),

payments_invoices as (
    select distinct on (salesforce_opportunity_id) *
    from {{ ref('stg_payments__invoices') }}
    where not is_deleted and salesforce_opportunity_id is not null
    {% if is_incremental() %} and salesforce_opportunity_id = any(array(select opportunity_id from changed)) {% endif %}
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
    {% if is_incremental() %} and payments_invoice_id in (select invoice_id from payments_invoices) {% endif %}
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
        end as payments_payment_status,
        {{ build_time() }} as refreshed_at
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
),

reported as (
    select
        *,
        reconciliation_status = 'reconciled' as is_fully_reconciled
    from final
)

{{ changed_rows_only('reported', 'salesforce_opportunity_id', 'select opportunity_id from changed') }}
