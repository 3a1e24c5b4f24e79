{#- One row per Salesforce Opportunity (Salesforce owns deals), with its canonical stage and customer.
    Incremental: a refresh recomputes the Opportunities whose row or line items came with a load since the
    last build, and those whose Account identity resolution re-resolved; it writes the ones that differ
    and removes the deleted ones. -#}
{{ config(
    materialized='incremental',
    unique_key='opportunity_id',
    incremental_strategy='refresh',
    on_schema_change='append_new_columns',
    indexes=[{'columns': ['salesforce_account_id']}, {'columns': ['refreshed_at']}],
) }}

with
{% if is_incremental() %}
changed as materialized (
    select opportunity_id from {{ ref('stg_salesforce__opportunities') }}
    where {{ loaded_since_last_build('salesforce') }}
    union
    select opportunity_id from {{ ref('stg_salesforce__opportunity_line_items') }}
    where {{ loaded_since_last_build('salesforce') }}
    union
    -- identity resolution re-resolved the Account (a merge, a conflict, a new anchor)
    select built.opportunity_id
    from {{ this }} as built
    where built.salesforce_account_id in ({{ identity_changes('salesforce') }})
),
{% endif %}

opportunities as (
    select * from {{ ref('stg_salesforce__opportunities') }}
    where not is_deleted
    {% if is_incremental() %} and opportunity_id = any(array(select opportunity_id from changed)) {% endif %}
),

lines as (
    select opportunity_id, count(*) as line_count, sum(total_price) as lines_total
    from {{ ref('stg_salesforce__opportunity_line_items') }}
    where not is_deleted
    {% if is_incremental() %} and opportunity_id = any(array(select opportunity_id from changed)) {% endif %}
    group by opportunity_id
),

xref as (
    select source_id, customer_id from {{ ref('int_customer_xref') }} where source_system = 'salesforce'
),

currencies as (
    select * from {{ ref('currencies') }}
),

final as (
    select
        opportunities.opportunity_id,
        xref.customer_id,
        opportunities.account_id as salesforce_account_id,
        opportunities.opportunity_name,
        opportunities.opportunity_type,
        opportunities.stage,
        opportunities.source_stage,
        case
            when opportunities.stage = 'closed_won' then 'won'
            when opportunities.stage = 'closed_lost' then 'lost'
            else 'open'
        end as stage_category,
        opportunities.currency_code,
        {{ at_currency_scale('opportunities.amount', 'currencies.iso_exponent') }} as amount,
        {{ at_currency_scale('lines.lines_total', 'currencies.iso_exponent') }} as line_items_amount,
        coalesce(lines.line_count, 0) as line_item_count,
        opportunities.close_date,
        opportunities.created_at,
        opportunities.updated_at,
        {{ build_time() }} as refreshed_at
    from opportunities
    left join lines on lines.opportunity_id = opportunities.opportunity_id
    left join xref on xref.source_id = opportunities.account_id
    left join currencies on currencies.currency_code = opportunities.currency_code
)

{{ changed_rows_only('final', 'opportunity_id', 'select opportunity_id from changed') }}
