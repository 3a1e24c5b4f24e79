{#- Records whose best-ranked evidence names two or more canonical customers (an ERP partner claimed by two
    Accounts of different companies, a payments customer whose metadata names one company and whose ERP
    partner belongs to another). One row per (record, candidate customer, candidate account, rule): a person
    decides. A view: there are few conflicts, and it is then as current as identity resolution, with nothing
    to refresh. -#}
{{ config(materialized='view') }}

with xref as (
    select * from {{ ref('int_customer_xref') }} where match_rule = 'conflict'
),

accounts as (
    select record_id as account_id, record_name as account_name
    from {{ ref('int_customer_evidence') }}
    where record_type = 'account'
),

anchors as (
    select source_id as account_id, customer_id
    from {{ ref('int_customer_xref') }}
    where source_system = 'salesforce'
),

-- the candidates of the records in conflict only (a record's best priority is over its own candidates)
candidates as (
    select
        candidates.*,
        anchors.customer_id,
        min(candidates.priority) over (partition by candidates.source_system, candidates.source_id) as best_priority
    from {{ ref('int_customer_match_candidates') }} as candidates
    join xref on xref.source_system = candidates.source_system and xref.source_id = candidates.source_id
    join anchors on anchors.account_id = candidates.account_id
),

final as (
    select
        xref.source_system || ':' || xref.source_id || ':' || candidates.customer_id || ':'
            || candidates.account_id || ':' || candidates.match_rule as conflict_id,
        xref.source_system,
        xref.source_id,
        candidates.customer_id as candidate_customer_id,
        candidates.account_id as candidate_account_id,
        accounts.account_name as candidate_account_name,
        candidates.match_rule,
        candidates.confidence as match_confidence
    from xref
    join candidates
      on candidates.source_system = xref.source_system
     and candidates.source_id = xref.source_id
     and candidates.priority = candidates.best_priority
    left join accounts on accounts.account_id = candidates.account_id
)

select * from final
