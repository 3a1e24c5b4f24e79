{#- Every way an ERP partner or a payments customer can be tied to a Salesforce Account, one row per
    (record, candidate account, rule). Rules are ranked: the cross-references our own flows write come first
    (priority 1, confidence 1.0), then keyed hashes and normalized plain values. The ranking is applied in
    int_customer_xref; this model only lists the evidence, so each match can be explained. -#}

with accounts as (
    select * from {{ ref('stg_salesforce__accounts') }} where not is_deleted
),

partners as (
    select * from {{ ref('stg_erp__partners') }}
    where not is_deleted and (is_company or parent_partner_id is null)
),

customers as (
    select * from {{ ref('stg_payments__customers') }} where not is_deleted
),

contacts as (
    select * from {{ ref('stg_salesforce__contacts') }} where not is_deleted and email_hash is not null
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
)

select distinct * from partner_candidates
union all
select distinct * from customer_candidates
