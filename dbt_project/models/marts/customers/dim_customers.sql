{#- One row per canonical customer (a real company). Salesforce owns the customer's identity and name
    (the anchor Account); the ERP owns billing (partner, tax id); the payments platform owns the payment
    customer. PII is exposed only as keyed hashes.
    Incremental: recomputed as a whole when identity resolution changed since the last build (a refresh
    writes only the customers that differ), and nothing to do otherwise. -#}
{{ config(
    materialized='incremental',
    unique_key='customer_id',
    incremental_strategy='refresh',
    on_schema_change='fail',
    indexes=[{'columns': ['refreshed_at']}],
) }}

with xref as (
    select * from {{ ref('int_customer_xref') }} where customer_id is not null
),

accounts as (
    select record_id as account_id, record_name as account_name, website_domain, industry,
           country_code as billing_country_code, currency_code, tax_id_hash, created_at
    from {{ ref('int_customer_evidence') }} where record_type = 'account'
),

partners as (
    select erp_partner_id as partner_id, record_name as partner_name, website_domain, tax_id_hash, email_hash
    from {{ ref('int_customer_evidence') }} where record_type = 'partner'
),

payments_customers as (
    select record_id as customer_id, country_code as address_country_code, currency_code, email_hash
    from {{ ref('int_customer_evidence') }} where record_type = 'payments_customer'
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
        accounts.created_at,
        {{ build_time() }} as refreshed_at
    from members
    left join accounts on accounts.account_id = members.salesforce_account_id
    left join partners on partners.partner_id = members.erp_partner_id
    left join payments_customers on payments_customers.customer_id = members.payments_customer_id
    left join countries on countries.country_code = accounts.billing_country_code
    {% if is_incremental() %} where {{ any_feed_changed() }} {% endif %}
)

{{ changed_rows_only('final', 'customer_id', 'select customer_id from ' ~ this ~ ' where ' ~ any_feed_changed()) }}
