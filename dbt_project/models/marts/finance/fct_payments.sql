{#- One row per payment attempt (a charge) in the payments platform, which owns payment outcomes; with its
    refunds, fees, the invoice it paid in the ERP and Salesforce, and the ERP payment that recorded it.
    Column types are guarded by the enforced contract; new columns are appended on an incremental run.
    Incremental: a refresh recomputes the charges that came with a load since the last build, and those
    whose refunds, balance transaction, payment intent, payments invoice, payments customer or ERP payment
    did, or whose payments customer identity resolution re-resolved; it writes the ones that differ and
    removes the deleted ones. -#}
{{ config(
    materialized='incremental',
    unique_key='charge_id',
    incremental_strategy='refresh',
    on_schema_change='append_new_columns',
    indexes=[{'columns': ['payment_intent_id']}, {'columns': ['payments_invoice_id']},
             {'columns': ['payments_customer_id']}, {'columns': ['erp_payment_id']}, {'columns': ['refreshed_at']}],
) }}

with
{% if is_incremental() %}
erp_payments_loaded as (
    select payment_id, payment_reference from {{ ref('stg_erp__payments') }}
    where {{ loaded_since_last_build('erp') }}
),

changed as materialized (
    select charge_id from {{ ref('stg_payments__charges') }}
    where {{ loaded_since_last_build('payments') }}
    union
    select charge_id from {{ ref('stg_payments__refunds') }}
    where {{ loaded_since_last_build('payments') }}
    union
    select source_object_id from {{ ref('stg_payments__balance_transactions') }}
    where {{ loaded_since_last_build('payments') }}
    union
    -- what the fact takes from other records: the intent, the invoice, the customer, the ERP payment
    select built.charge_id from {{ this }} as built
    where built.payment_intent_id in (
        select payment_intent_id from {{ ref('stg_payments__payment_intents') }}
        where {{ loaded_since_last_build('payments') }}
        union all
        select payment_reference from erp_payments_loaded)
    union
    select built.charge_id from {{ this }} as built
    where built.payments_invoice_id in (
        select invoice_id from {{ ref('stg_payments__invoices') }} where {{ loaded_since_last_build('payments') }})
    union
    select built.charge_id from {{ this }} as built
    where built.payments_customer_id in (
        select customer_id from {{ ref('stg_payments__customers') }} where {{ loaded_since_last_build('payments') }}
        union all
        -- identity resolution re-resolved the payments customer
        {{ identity_changes('payments') }})
    union
    -- the ERP payment that recorded it before
    select built.charge_id from {{ this }} as built
    where built.erp_payment_id in (select payment_id from erp_payments_loaded)
),
{% endif %}

charges as (
    select * from {{ ref('stg_payments__charges') }}
    where not is_deleted
    {% if is_incremental() %} and charge_id = any(array(select charge_id from changed)) {% endif %}
),

payment_intents as (
    select * from {{ ref('stg_payments__payment_intents') }}
    {% if is_incremental() %} where payment_intent_id = any(array(select payment_intent_id from charges)) {% endif %}
),

payments_invoices as (
    select * from {{ ref('stg_payments__invoices') }}
    {% if is_incremental() %}
    where invoice_id = any(array(
        select invoice_id from charges union all select invoice_id from payment_intents))
    {% endif %}
),

refunds as (
    select
        charge_id,
        sum(amount) filter (where status = 'succeeded') as amount_refunded
    from {{ ref('stg_payments__refunds') }}
    where not is_deleted
    {% if is_incremental() %} and charge_id = any(array(select charge_id from charges)) {% endif %}
    group by charge_id
),

balance_transactions as (
    select * from {{ ref('stg_payments__balance_transactions') }}
    {% if is_incremental() %}
    where balance_transaction_id = any(array(select balance_transaction_id from charges))
    {% endif %}
),

erp_payments as (
    select distinct on (payment_reference) *
    from {{ ref('stg_erp__payments') }}
    where not is_deleted and payment_reference is not null
    {% if is_incremental() %} and payment_reference = any(array(select payment_intent_id from charges)) {% endif %}
    order by payment_reference, payment_id
),

customers as (
    select * from {{ ref('stg_payments__customers') }}
    {% if is_incremental() %} where customer_id = any(array(select customer_id from charges)) {% endif %}
),

xref as (
    select source_id, customer_id from {{ ref('int_customer_xref') }} where source_system = 'payments'
),

countries as (
    select * from {{ ref('countries') }}
),

final as (
    select
        ---------- ids
        charges.charge_id,
        charges.payment_intent_id,
        coalesce(charges.invoice_id, payment_intents.invoice_id) as payments_invoice_id,
        charges.customer_id as payments_customer_id,
        xref.customer_id,
        coalesce(charges.erp_invoice_id, payments_invoices.erp_invoice_id) as erp_invoice_id,
        coalesce(charges.erp_payment_id, erp_payments.payment_id) as erp_payment_id,
        coalesce(charges.salesforce_opportunity_id, payments_invoices.salesforce_opportunity_id)
            as salesforce_opportunity_id,
        charges.balance_transaction_id,

        ---------- statuses
        charges.status,
        charges.source_status,
        payment_intents.status as payment_intent_status,
        charges.failure_code,

        ---------- money (major units, exact; converted with the currency's Stripe exponent)
        charges.currency_code,
        charges.amount_minor,
        charges.amount,
        charges.amount_captured,
        coalesce(refunds.amount_refunded, charges.amount_refunded, 0) as amount_refunded,
        charges.amount_captured - coalesce(refunds.amount_refunded, charges.amount_refunded, 0) as amount_net,
        balance_transactions.fee as fee_amount,

        ---------- payment method
        charges.payment_method_type,
        charges.card_brand,

        ---------- timestamps and business dates
        charges.created_at,
        {{ local_date('charges.created_at', 'countries.time_zone') }} as created_on_local_date,
        coalesce(countries.time_zone, '{{ var("default_time_zone") }}') as local_time_zone,
        {{ build_time() }} as refreshed_at,

        ---------- flags
        charges.status = 'succeeded' as is_succeeded,
        charges.is_disputed,
        coalesce(charges.invoice_id, payment_intents.invoice_id, charges.erp_invoice_id::text) is null
            as is_orphan
    from charges
    left join payment_intents on payment_intents.payment_intent_id = charges.payment_intent_id
    left join payments_invoices
        on payments_invoices.invoice_id = coalesce(charges.invoice_id, payment_intents.invoice_id)
    left join refunds on refunds.charge_id = charges.charge_id
    left join balance_transactions on balance_transactions.balance_transaction_id = charges.balance_transaction_id
    left join erp_payments on erp_payments.payment_reference = charges.payment_intent_id
    left join customers on customers.customer_id = charges.customer_id
    left join xref on xref.source_id = charges.customer_id
    left join countries on countries.country_code = customers.address_country_code
)

{{ changed_rows_only('final', 'charge_id', 'select charge_id from changed') }}
