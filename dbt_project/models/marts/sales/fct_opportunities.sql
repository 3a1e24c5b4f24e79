{#- One row per Salesforce Opportunity (Salesforce owns deals), with its canonical stage and customer.
    Incremental: a refresh recomputes only the Opportunities whose row or line items were loaded since the
    newest source_extracted_at built, and those whose Account now resolves to another canonical customer. -#}
{{ config(
    materialized='incremental',
    unique_key='opportunity_id',
    incremental_strategy='delete+insert',
    on_schema_change='append_new_columns',
) }}

with
{% if is_incremental() %}
watermark as (
    select coalesce(max(source_extracted_at), '-infinity'::timestamptz) as extracted_at from {{ this }}
),

changed as materialized (
    select opportunity_id from {{ ref('stg_salesforce__opportunities') }}
    where extracted_at > (select extracted_at from watermark)
    union
    select opportunity_id from {{ ref('stg_salesforce__opportunity_line_items') }}
    where extracted_at > (select extracted_at from watermark)
    union
    -- identity resolution moved the Account to another customer (a merge, a conflict, a new anchor)
    select built.opportunity_id
    from {{ this }} as built
    left join {{ ref('int_customer_xref') }} as xref
      on xref.source_system = 'salesforce' and xref.source_id = built.salesforce_account_id
    where built.customer_id is distinct from xref.customer_id
),
{% endif %}

opportunities as (
    select * from {{ ref('stg_salesforce__opportunities') }}
    where not is_deleted
    {% if is_incremental() %} and opportunity_id in (select opportunity_id from changed) {% endif %}
),

lines as (
    select opportunity_id, count(*) as line_count, sum(total_price) as lines_total, max(extracted_at) as extracted_at
    from {{ ref('stg_salesforce__opportunity_line_items') }}
    where not is_deleted
    {% if is_incremental() %} and opportunity_id in (select opportunity_id from changed) {% endif %}
    group by opportunity_id
),

xref as (
    select source_id, customer_id from {{ ref('int_customer_xref') }} where source_system = 'salesforce'
),

currencies as (
    select * from {{ ref('currencies') }}
)

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
    greatest(opportunities.extracted_at, lines.extracted_at) as source_extracted_at
from opportunities
left join lines on lines.opportunity_id = opportunities.opportunity_id
left join xref on xref.source_id = opportunities.account_id
left join currencies on currencies.currency_code = opportunities.currency_code
