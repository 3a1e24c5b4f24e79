{#- One row per payment attempt (a charge) in the payments platform, which owns payment outcomes; with its
    refunds, fees, the invoice it paid in the ERP and Salesforce, and the ERP payment that recorded it.
    Column types are guarded by the enforced contract; new columns are appended on an incremental run.
    Incremental on charges, refunds and balance transactions loaded since the last build, and on charges
    whose payments customer now resolves to another canonical customer. -#}
{{ config(
    materialized='incremental',
    unique_key='charge_id',
    incremental_strategy='delete+insert',
    on_schema_change='append_new_columns',
) }}

with
{% if is_incremental() %}
watermark as (
    select coalesce(max(source_extracted_at), '-infinity'::timestamptz) as extracted_at from {{ this }}
),

changed as materialized (
    select charge_id from {{ ref('stg_payments__charges') }}
    where extracted_at > (select extracted_at from watermark)
    union
    select charge_id from {{ ref('stg_payments__refunds') }}
    where extracted_at > (select extracted_at from watermark)
    union
    select source_object_id from {{ ref('stg_payments__balance_transactions') }}
    where extracted_at > (select extracted_at from watermark)
    union
    -- what the fact takes from other records: the intent, the invoice, the ERP payment, the customer
    select charges.charge_id
    from {{ ref('stg_payments__charges') }} as charges
    left join {{ ref('stg_payments__payment_intents') }} as intents
      on intents.payment_intent_id = charges.payment_intent_id
    where intents.extracted_at > (select extracted_at from watermark)
       or charges.customer_id in (
            select customer_id from {{ ref('stg_payments__customers') }}
            where extracted_at > (select extracted_at from watermark))
       or coalesce(charges.invoice_id, intents.invoice_id) in (
            select invoice_id from {{ ref('stg_payments__invoices') }}
            where extracted_at > (select extracted_at from watermark))
       or charges.payment_intent_id in (
            select payment_reference from {{ ref('stg_erp__payments') }}
            where extracted_at > (select extracted_at from watermark))
    union
    -- identity resolution moved the payments customer to another customer
    select built.charge_id
    from {{ this }} as built
    left join {{ ref('int_customer_xref') }} as xref
      on xref.source_system = 'payments' and xref.source_id = built.payments_customer_id
    where built.customer_id is distinct from xref.customer_id
),
{% endif %}

charges as (
    select * from {{ ref('stg_payments__charges') }}
    where not is_deleted
    {% if is_incremental() %} and charge_id in (select charge_id from changed) {% endif %}
),

payment_intents as (
    select * from {{ ref('stg_payments__payment_intents') }}
),

payments_invoices as (
    select * from {{ ref('stg_payments__invoices') }}
),

refunds as (
    select
        charge_id,
        sum(amount) filter (where status = 'succeeded') as amount_refunded,
        max(extracted_at) as extracted_at
    from {{ ref('stg_payments__refunds') }}
    where not is_deleted
    {% if is_incremental() %} and charge_id in (select charge_id from changed) {% endif %}
    group by charge_id
),

balance_transactions as (
    select * from {{ ref('stg_payments__balance_transactions') }}
),

erp_payments as (
    select distinct on (payment_reference) *
    from {{ ref('stg_erp__payments') }}
    where not is_deleted and payment_reference is not null
    order by payment_reference, payment_id
),

customers as (
    select * from {{ ref('stg_payments__customers') }}
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
        greatest(charges.extracted_at, refunds.extracted_at, balance_transactions.extracted_at) as source_extracted_at,

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

select * from final
