{#- One row per canonical customer (a real company). Salesforce owns the customer's identity and name
    (the anchor Account); the ERP owns billing (partner, tax id); the payments platform owns the payment
    customer. PII is exposed only as keyed hashes. -#}

with xref as (
    select * from {{ ref('int_customer_xref') }} where customer_id is not null
),

accounts as (
    select * from {{ ref('stg_salesforce__accounts') }}
),

partners as (
    select * from {{ ref('stg_erp__partners') }}
),

payments_customers as (
    select * from {{ ref('stg_payments__customers') }}
),

countries as (
    select * from {{ ref('countries') }}
),

members as (
    select
        customer_id,
        min(source_id) filter (where source_system = 'salesforce' and match_rule in ('salesforce_account'))
            as salesforce_account_id,
        count(*) filter (where source_system = 'salesforce') as salesforce_account_count,
        min(source_id::bigint) filter (where source_system = 'erp') as erp_partner_id,
        count(*) filter (where source_system = 'erp') as erp_partner_count,
        min(source_id) filter (where source_system = 'payments') as payments_customer_id,
        count(*) filter (where source_system = 'payments') as payments_customer_count,
        min(match_confidence) as lowest_match_confidence
    from xref
    group by customer_id
),

final as (
    select
        members.customer_id,
        members.salesforce_account_id,
        members.erp_partner_id,
        members.payments_customer_id,
        coalesce(accounts.account_name, partners.partner_name) as customer_name,
        coalesce(accounts.website_domain, partners.website_domain) as website_domain,
        accounts.industry,
        coalesce(accounts.billing_country_code, payments_customers.address_country_code) as country_code,
        coalesce(countries.time_zone, '{{ var("default_time_zone") }}') as time_zone,
        coalesce(accounts.currency_code, payments_customers.currency_code) as currency_code,
        coalesce(partners.tax_id_hash, accounts.tax_id_hash) as tax_id_hash,
        coalesce(partners.email_hash, payments_customers.email_hash) as billing_email_hash,
        members.salesforce_account_count,
        members.erp_partner_count,
        members.payments_customer_count,
        members.lowest_match_confidence,
        members.salesforce_account_count > 1 or members.erp_partner_count > 1 as has_duplicates,
        accounts.created_at
    from members
    left join accounts on accounts.account_id = members.salesforce_account_id
    left join partners on partners.partner_id = members.erp_partner_id
    left join payments_customers on payments_customers.customer_id = members.payments_customer_id
    left join countries on countries.country_code = accounts.billing_country_code
)

select * from final
