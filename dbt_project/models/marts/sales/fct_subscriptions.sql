{#- One row per Salesforce Subscription__c (Salesforce owns subscriptions), with its canonical status.
    Incremental: a refresh recomputes only the subscriptions loaded since the newest source_extracted_at
    built, and those whose Account now resolves to another canonical customer. -#}
{{ config(
    materialized='incremental',
    unique_key='subscription_id',
    incremental_strategy='delete+insert',
    on_schema_change='append_new_columns',
) }}

with
{% if is_incremental() %}
watermark as (
    select coalesce(max(source_extracted_at), '-infinity'::timestamptz) as extracted_at from {{ this }}
),

changed as materialized (
    select subscription_id from {{ ref('stg_salesforce__subscriptions') }}
    where extracted_at > (select extracted_at from watermark)
    union
    select built.subscription_id
    from {{ this }} as built
    left join {{ ref('int_customer_xref') }} as xref
      on xref.source_system = 'salesforce' and xref.source_id = built.salesforce_account_id
    where built.customer_id is distinct from xref.customer_id
),
{% endif %}

subscriptions as (
    select * from {{ ref('stg_salesforce__subscriptions') }}
    where not is_deleted
    {% if is_incremental() %} and subscription_id in (select subscription_id from changed) {% endif %}
),

xref as (
    select source_id, customer_id from {{ ref('int_customer_xref') }} where source_system = 'salesforce'
),

currencies as (
    select * from {{ ref('currencies') }}
)

select
    subscriptions.subscription_id,
    xref.customer_id,
    subscriptions.account_id as salesforce_account_id,
    subscriptions.renewal_opportunity_id,
    subscriptions.status,
    subscriptions.source_status,
    subscriptions.currency_code,
    {{ at_currency_scale('subscriptions.amount', 'currencies.iso_exponent') }} as annual_amount,
    subscriptions.start_date,
    subscriptions.end_date,
    subscriptions.created_at,
    subscriptions.updated_at,
    subscriptions.extracted_at as source_extracted_at
from subscriptions
left join xref on xref.source_id = subscriptions.account_id
left join currencies on currencies.currency_code = subscriptions.currency_code
