{#- One row per Salesforce Subscription__c (Salesforce owns subscriptions), with its canonical status.
    Incremental: a refresh recomputes the subscriptions that came with a load since the last build and those
    whose Account identity resolution re-resolved; it writes the ones that differ and removes the deleted
    ones. -#}
{{ config(
    materialized='incremental',
    unique_key='subscription_id',
    incremental_strategy='refresh',
    on_schema_change='append_new_columns',
    indexes=[{'columns': ['salesforce_account_id']}, {'columns': ['refreshed_at']}],
) }}

with
{% if is_incremental() %}
changed as materialized (
    select subscription_id from {{ ref('stg_salesforce__subscriptions') }}
    where {{ loaded_since_last_build('salesforce') }}
    union
    select built.subscription_id
    from {{ this }} as built
    where built.salesforce_account_id in ({{ identity_changes('salesforce') }})
),
{% endif %}

subscriptions as (
    select * from {{ ref('stg_salesforce__subscriptions') }}
    where not is_deleted
    {% if is_incremental() %} and subscription_id = any(array(select subscription_id from changed)) {% endif %}
),

xref as (
    select source_id, customer_id from {{ ref('int_customer_xref') }} where source_system = 'salesforce'
),

currencies as (
    select * from {{ ref('currencies') }}
),

final as (
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
        {{ build_time() }} as refreshed_at
    from subscriptions
    left join xref on xref.source_id = subscriptions.account_id
    left join currencies on currencies.currency_code = subscriptions.currency_code
)

{{ changed_rows_only('final', 'subscription_id', 'select subscription_id from changed') }}
