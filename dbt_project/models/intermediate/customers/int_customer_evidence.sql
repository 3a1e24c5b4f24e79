{#- What identity resolution and dim_customers read from each Salesforce Account and Contact, ERP partner and
    payments customer: one row per record, with only the values they use (keys, cross-references, keyed
    hashes, normalized name and website domain, the names and places dim_customers shows). Deleted records
    are kept, flagged.

    Incremental: a refresh reads the records of the loads since its last build and writes only those whose
    values here changed. A record re-loaded for a change identity resolution does not read (a
    description, a phone) writes nothing, and the identity models after this one then have nothing to do. -#}
{{ config(
    materialized='incremental',
    unique_key='evidence_id',
    incremental_strategy='refresh',
    on_schema_change='fail',
    indexes=[{'columns': ['evidence_id'], 'unique': true}, {'columns': ['refreshed_at']}],
) }}

with accounts as (
    select * from {{ ref('stg_salesforce__accounts') }}
    {% if is_incremental() %} where {{ loaded_since_last_build('salesforce') }} {% endif %}
),

contacts as (
    select * from {{ ref('stg_salesforce__contacts') }}
    {% if is_incremental() %} where {{ loaded_since_last_build('salesforce') }} {% endif %}
),

partners as (
    select * from {{ ref('stg_erp__partners') }}
    {% if is_incremental() %} where {{ loaded_since_last_build('erp') }} {% endif %}
),

payments_customers as (
    select * from {{ ref('stg_payments__customers') }}
    {% if is_incremental() %} where {{ loaded_since_last_build('payments') }} {% endif %}
),

evidence as (
    select
        'salesforce:account:' || account_id as evidence_id,
        'account' as record_type,
        account_id as record_id,
        account_id,
        erp_partner_id,
        website_domain,
        tax_id_hash::text as tax_id_hash,
        normalized_name,
        account_name::text as record_name,
        industry::text as industry,
        billing_country_code as country_code,
        currency_code,
        null::text as email_hash,
        null::boolean as is_company,
        null::bigint as parent_partner_id,
        created_at,
        is_deleted
    from accounts
    union all
    select
        'erp:partner:' || partner_id,
        'partner',
        partner_id::text,
        salesforce_account_id,
        partner_id,
        website_domain,
        tax_id_hash,
        normalized_name,
        partner_name,
        null,
        null,
        null,
        email_hash,
        is_company,
        parent_partner_id,
        null,
        is_deleted
    from partners
    union all
    select
        'payments:customer:' || customer_id,
        'payments_customer',
        customer_id,
        salesforce_account_id,
        erp_partner_id,
        null,
        null,
        null,
        null,
        null,
        address_country_code,
        currency_code,
        email_hash,
        null,
        null,
        null,
        is_deleted
    from payments_customers
    union all
    select
        'salesforce:contact:' || contact_id,
        'contact',
        contact_id,
        account_id,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        email_hash,
        null,
        null,
        null,
        is_deleted
    from contacts
),

final as (
    select *, {{ build_time() }} as refreshed_at from evidence
)

{{ changed_rows_only('final', 'evidence_id', 'select evidence_id from final') }}
