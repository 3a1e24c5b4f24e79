{#- Every way an ERP partner or a payments customer can be tied to a Salesforce Account, one row per
    (record, candidate account, rule). Rules are ranked: the cross-references our own flows write come first
    (priority 1, confidence 1.0), then keyed hashes and normalized plain values. The ranking is applied in
    int_customer_xref; this model only lists the evidence, so each match can be explained. A view over
    int_customer_evidence: int_customer_xref reads it whole when identity resolution is recomputed, and
    nothing else needs it kept. -#}
{{ config(materialized='view') }}

with accounts as (
    select record_id as account_id, erp_partner_id, tax_id_hash, website_domain, normalized_name
    from {{ ref('int_customer_evidence') }} where record_type = 'account' and not is_deleted
),

partners as (
    select erp_partner_id as partner_id, account_id as salesforce_account_id, tax_id_hash, website_domain,
           normalized_name, email_hash
    from {{ ref('int_customer_evidence') }}
    where record_type = 'partner' and not is_deleted and (is_company or parent_partner_id is null)
),

customers as (
    select record_id as customer_id, account_id as salesforce_account_id, erp_partner_id, email_hash
    from {{ ref('int_customer_evidence') }} where record_type = 'payments_customer' and not is_deleted
),

contacts as (
    select account_id, email_hash
    from {{ ref('int_customer_evidence') }}
    where record_type = 'contact' and not is_deleted and email_hash is not null
),

partner_candidates as (
    select 'erp' as source_system, partners.partner_id::text as source_id, accounts.account_id,
           'salesforce_account_erp_partner_id' as match_rule, 1 as priority, 1.00 as confidence
    from partners join accounts on accounts.erp_partner_id = partners.partner_id
    union all
    select 'erp', partners.partner_id::text, accounts.account_id, 'erp_partner_ref', 1, 1.00
    from partners join accounts on accounts.account_id = partners.salesforce_account_id
    union all
    select 'erp', partners.partner_id::text, accounts.account_id, 'payments_customer_metadata', 1, 1.00
    from partners
    join customers on customers.erp_partner_id = partners.partner_id
    join accounts on accounts.account_id = customers.salesforce_account_id
    union all
    select 'erp', partners.partner_id::text, accounts.account_id, 'tax_id_hash', 2, 0.95
    from partners join accounts on accounts.tax_id_hash = partners.tax_id_hash
    union all
    select 'erp', partners.partner_id::text, accounts.account_id, 'website_domain', 3, 0.85
    from partners join accounts on accounts.website_domain = partners.website_domain
    union all
    select 'erp', partners.partner_id::text, accounts.account_id, 'normalized_name', 4, 0.70
    from partners join accounts on accounts.normalized_name = partners.normalized_name
),

customer_candidates as (
    select 'payments' as source_system, customers.customer_id as source_id, accounts.account_id,
           'payments_metadata_salesforce_account_id' as match_rule, 1 as priority, 1.00 as confidence
    from customers join accounts on accounts.account_id = customers.salesforce_account_id
    union all
    select 'payments', customers.customer_id, accounts.account_id, 'payments_metadata_erp_partner_id', 1, 1.00
    from customers join accounts on accounts.erp_partner_id = customers.erp_partner_id
    union all
    select 'payments', customers.customer_id, accounts.account_id, 'partner_email_hash', 2, 0.90
    from customers
    join partners on partners.email_hash = customers.email_hash
    join accounts on accounts.erp_partner_id = partners.partner_id
    union all
    select 'payments', customers.customer_id, accounts.account_id, 'contact_email_hash', 3, 0.80
    from customers
    join contacts on contacts.email_hash = customers.email_hash
    join accounts on accounts.account_id = contacts.account_id
),

candidates as (
    select distinct * from partner_candidates
    union all
    select distinct * from customer_candidates
)

select
    source_system || ':' || source_id || ':' || account_id || ':' || match_rule as candidate_id,
    source_system,
    source_id,
    account_id,
    match_rule,
    priority,
    confidence
from candidates
