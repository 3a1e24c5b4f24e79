{#- One canonical customer per real company, and which canonical customer every Salesforce Account, ERP
    partner and payments customer belongs to, with the rule and confidence of the match.

    1. Salesforce Accounts are the anchors. Accounts of one company (the same website domain, else the same
       tax-id hash) form one customer, anchored on the oldest Account: customer_id = 'salesforce:<Id>'.
    2. An ERP partner or payments customer takes the customer of its best-ranked candidate
       (int_customer_match_candidates). When the candidates of that best rank point at two different
       customers, the record is a conflict: customer_id stays null, match_rule = 'conflict', and the
       candidates are listed in int_customer_xref_conflicts. Nothing is resolved silently.
    3. A record with no candidate is a customer of its own ('erp:<id>', 'payments:<id>'). -#}

with accounts as (
    select * from {{ ref('stg_salesforce__accounts') }} where not is_deleted
),

account_groups as (
    select
        account_id,
        coalesce(website_domain, 'tax:' || tax_id_hash, 'account:' || account_id) as company_key,
        created_at
    from accounts
),

anchored_accounts as (
    select
        account_id,
        first_value(account_id) over (
            partition by company_key order by created_at, account_id
        ) as anchor_account_id
    from account_groups
),

account_rows as (
    select
        'salesforce' as source_system,
        account_id as source_id,
        'salesforce:' || anchor_account_id as customer_id,
        case when account_id = anchor_account_id then 'salesforce_account' else 'duplicate_account_website_domain' end
            as match_rule,
        case when account_id = anchor_account_id then 1.00 else 0.90 end as match_confidence
    from anchored_accounts
),

candidates as (
    select
        candidates.source_system,
        candidates.source_id,
        candidates.match_rule,
        candidates.priority,
        candidates.confidence,
        'salesforce:' || anchored_accounts.anchor_account_id as customer_id
    from {{ ref('int_customer_match_candidates') }} as candidates
    join anchored_accounts on anchored_accounts.account_id = candidates.account_id
),

best_rank as (
    select
        *,
        min(priority) over (partition by source_system, source_id) as best_priority
    from candidates
),

decided as (
    select
        source_system,
        source_id,
        count(distinct customer_id) as customer_count,
        min(customer_id) as customer_id,
        min(match_rule) as match_rule,
        max(confidence) as match_confidence
    from best_rank
    where priority = best_priority
    group by source_system, source_id
),

matched_rows as (
    select
        source_system,
        source_id,
        case when customer_count = 1 then customer_id end as customer_id,
        case when customer_count = 1 then match_rule else 'conflict' end as match_rule,
        case when customer_count = 1 then match_confidence end as match_confidence
    from decided
),

partners as (
    select partner_id::text as source_id from {{ ref('stg_erp__partners') }}
    where not is_deleted and (is_company or parent_partner_id is null)
),

payments_customers as (
    select customer_id as source_id from {{ ref('stg_payments__customers') }} where not is_deleted
),

unmatched_rows as (
    select 'erp' as source_system, partners.source_id, 'erp:' || partners.source_id as customer_id,
           'unmatched' as match_rule, 1.00 as match_confidence
    from partners
    where not exists (select 1 from matched_rows m where m.source_system = 'erp' and m.source_id = partners.source_id)
    union all
    select 'payments', payments_customers.source_id, 'payments:' || payments_customers.source_id,
           'unmatched', 1.00
    from payments_customers
    where not exists (
        select 1 from matched_rows m where m.source_system = 'payments' and m.source_id = payments_customers.source_id
    )
),

unioned as (
    select * from account_rows
    union all
    select * from matched_rows
    union all
    select * from unmatched_rows
)

select
    source_system || ':' || source_id as xref_id,
    source_system,
    source_id,
    customer_id,
    match_rule,
    match_confidence::numeric(3, 2) as match_confidence
from unioned
