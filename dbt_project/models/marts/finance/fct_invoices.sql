{#- One row per ERP customer invoice or credit note: the ERP owns the legal invoice (number, dates, amounts,
    state); the Salesforce Invoice__c and the payments invoice are joined through the cross-references our
    flows write. Incremental: a refresh recomputes the invoices whose ERP move or lines came with a load
    since the last build, those a Salesforce or payments invoice loaded since points at (or pointed at
    before), and those whose partner identity resolution re-resolved; it writes the ones that differ and
    removes the ones that are gone. -#}
{{ config(
    materialized='incremental',
    unique_key='erp_invoice_id',
    incremental_strategy='refresh',
    on_schema_change='fail',
    indexes=[{'columns': ['salesforce_opportunity_id']}, {'columns': ['salesforce_invoice_id']},
             {'columns': ['payments_invoice_id']}, {'columns': ['erp_partner_id']}, {'columns': ['refreshed_at']}],
) }}

-- depends_on: {{ ref('stg_erp__invoice_lines') }}
with
{% if is_incremental() %}
salesforce_invoices_loaded as (
    select invoice_id, erp_invoice_id from {{ ref('stg_salesforce__invoices') }}
    where {{ loaded_since_last_build('salesforce') }}
),

payments_invoices_loaded as (
    select invoice_id, erp_invoice_id from {{ ref('stg_payments__invoices') }}
    where {{ loaded_since_last_build('payments') }}
),

changed as materialized (
    select invoice_id as erp_invoice_id from {{ ref('stg_erp__invoices') }}
    where {{ loaded_since_last_build('erp') }}
    union
    select invoice_id from {{ ref('stg_erp__invoice_lines') }}
    where {{ loaded_since_last_build('erp') }}
    union
    -- the invoice a Salesforce or payments invoice points at now, and the one it pointed at before
    select erp_invoice_id from salesforce_invoices_loaded where erp_invoice_id is not null
    union
    select built.erp_invoice_id from {{ this }} as built
    where built.salesforce_invoice_id in (select invoice_id from salesforce_invoices_loaded)
    union
    select erp_invoice_id from payments_invoices_loaded where erp_invoice_id is not null
    union
    select built.erp_invoice_id from {{ this }} as built
    where built.payments_invoice_id in (select invoice_id from payments_invoices_loaded)
    union
    -- identity resolution re-resolved the partner (a merge, a conflict, a new anchor)
    select built.erp_invoice_id from {{ this }} as built
    where built.erp_partner_id in (select source_id::bigint from ({{ identity_changes('erp') }}) as partners)
),
{% endif %}

erp_invoices as (
    select * from {{ ref('stg_erp__invoices') }}
    where not is_deleted and move_type in ('out_invoice', 'out_refund')
    {% if is_incremental() %} and invoice_id = any(array(select erp_invoice_id from changed)) {% endif %}
),

salesforce_invoices as (
    select distinct on (erp_invoice_id) *
    from {{ ref('stg_salesforce__invoices') }}
    where not is_deleted and erp_invoice_id is not null
    {% if is_incremental() %} and erp_invoice_id = any(array(select erp_invoice_id from changed)) {% endif %}
    order by erp_invoice_id, system_modified_at desc
),

payments_invoices as (
    select distinct on (erp_invoice_id) *
    from {{ ref('stg_payments__invoices') }}
    where not is_deleted and erp_invoice_id is not null
    {% if is_incremental() %} and erp_invoice_id = any(array(select erp_invoice_id from changed)) {% endif %}
    order by erp_invoice_id, created_at desc
),

xref as (
    select source_id, customer_id from {{ ref('int_customer_xref') }} where source_system = 'erp'
),

currencies as (
    select * from {{ ref('currencies') }}
),

final as (
    select
        ---------- ids
        erp_invoices.invoice_id as erp_invoice_id,
        erp_invoices.invoice_number,
        xref.customer_id,
        erp_invoices.partner_id as erp_partner_id,
        erp_invoices.salesforce_opportunity_id,
        salesforce_invoices.invoice_id as salesforce_invoice_id,
        payments_invoices.invoice_id as payments_invoice_id,
        erp_invoices.revloop_key,
        erp_invoices.move_type,

        ---------- statuses
        erp_invoices.status,
        erp_invoices.payment_status,
        erp_invoices.source_state,
        erp_invoices.source_payment_state,

        ---------- money (major units, exact, at the currency's scale)
        erp_invoices.currency_code,
        {{ at_currency_scale('erp_invoices.amount_untaxed', 'currencies.iso_exponent') }} as amount_untaxed,
        {{ at_currency_scale('erp_invoices.amount_tax', 'currencies.iso_exponent') }} as amount_tax,
        {{ at_currency_scale('erp_invoices.amount_total', 'currencies.iso_exponent') }} as amount_total,
        {{ at_currency_scale('erp_invoices.amount_residual', 'currencies.iso_exponent') }} as amount_residual,
        {{ at_currency_scale('erp_invoices.amount_total - erp_invoices.amount_residual', 'currencies.iso_exponent') }}
            as amount_settled,

        ---------- dates (accounting dates, local to the ERP company)
        erp_invoices.invoice_date,
        erp_invoices.due_date,

        ---------- timestamps
        erp_invoices.created_at,
        erp_invoices.updated_at,
        {{ build_time() }} as refreshed_at
    from erp_invoices
    left join salesforce_invoices on salesforce_invoices.erp_invoice_id = erp_invoices.invoice_id
    left join payments_invoices on payments_invoices.erp_invoice_id = erp_invoices.invoice_id
    left join xref on xref.source_id = erp_invoices.partner_id::text
    left join currencies on currencies.currency_code = erp_invoices.currency_code
)

{{ changed_rows_only('final', 'erp_invoice_id', 'select erp_invoice_id from changed') }}
