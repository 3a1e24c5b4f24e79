{#- One canonical customer per real company, and which canonical customer every Salesforce Account, ERP
    partner and payments customer belongs to, with the rule and confidence of the match.

    1. Salesforce Accounts are the anchors. Accounts of one company (the same website domain, else the same
       tax-id hash) form one customer, anchored on the oldest Account: customer_id = 'salesforce:<Id>'.
    2. An ERP partner or payments customer takes the customer of its best-ranked candidate
       (int_customer_match_candidates). When the candidates of that best rank point at two different
       customers, the record is a conflict: customer_id stays null, match_rule = 'conflict', and the
       candidates are listed in int_customer_xref_conflicts. Nothing is resolved silently.
    3. A record with no candidate is a customer of its own ('erp:<id>', 'payments:<id>').

    Incremental: recomputed as a whole when the evidence changed since the last build; a refresh writes only
    the rows that differ, which the facts follow to re-resolve their customer. -#}
{{ config(
    materialized='incremental',
    unique_key='xref_id',
    incremental_strategy='refresh',
    on_schema_change='fail',
    indexes=[{'columns': ['xref_id'], 'unique': true}, {'columns': ['source_system', 'source_id']},
             {'columns': ['refreshed_at']}],
) }}

with accounts as (
    select record_id as account_id, website_domain, tax_id_hash, created_at
    from {{ ref('int_customer_evidence') }} where record_type = 'account' and not is_deleted
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

-- the candidates are a view over the evidence: computed once here
candidate_rows as materialized (
    select * from {{ ref('int_customer_match_candidates') }}
),

candidates as (
    select
        candidates.source_system,
        candidates.source_id,
        candidates.match_rule,
        candidates.priority,
        candidates.confidence,
        'salesforce:' || anchored_accounts.anchor_account_id as customer_id
    from candidate_rows as candidates
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
    select record_id as source_id from {{ ref('int_customer_evidence') }}
    where record_type = 'partner' and not is_deleted and (is_company or parent_partner_id is null)
),

payments_customers as (
    select record_id as source_id from {{ ref('int_customer_evidence') }}
    where record_type = 'payments_customer' and not is_deleted
),

-- a record with no candidate (every candidate names a live Account, so it is in matched_rows otherwise)
unmatched_rows as (
    select 'erp' as source_system, partners.source_id, 'erp:' || partners.source_id as customer_id,
           'unmatched' as match_rule, 1.00 as match_confidence
    from partners
    where not exists (
        select 1 from candidate_rows as candidates
        where candidates.source_system = 'erp' and candidates.source_id = partners.source_id
    )
    union all
    select 'payments', payments_customers.source_id, 'payments:' || payments_customers.source_id,
           'unmatched', 1.00
    from payments_customers
    where not exists (
        select 1 from candidate_rows as candidates
        where candidates.source_system = 'payments' and candidates.source_id = payments_customers.source_id
    )
),

unioned as (
    select * from account_rows
    union all
    select * from matched_rows
    union all
    select * from unmatched_rows
),

final as (
    select
        source_system || ':' || source_id as xref_id,
        source_system,
        source_id,
        customer_id,
        match_rule,
        match_confidence::numeric(3, 2) as match_confidence,
        {{ build_time() }} as refreshed_at
    from unioned
    {% if is_incremental() %} where {{ any_feed_changed() }} {% endif %}
)

{{ changed_rows_only('final', 'xref_id', 'select xref_id from ' ~ this ~ ' where ' ~ any_feed_changed()) }}
