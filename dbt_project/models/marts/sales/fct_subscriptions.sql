{#- One row per Salesforce Subscription__c (Salesforce owns subscriptions), with its canonical status. -#}

with subscriptions as (
    select * from {{ ref('stg_salesforce__subscriptions') }} where not is_deleted
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
    subscriptions.updated_at
from subscriptions
left join xref on xref.source_id = subscriptions.account_id
left join currencies on currencies.currency_code = subscriptions.currency_code
