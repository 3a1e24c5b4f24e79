{#- One row per Salesforce Opportunity (Salesforce owns deals), with its canonical stage and customer. -#}

with opportunities as (
    select * from {{ ref('stg_salesforce__opportunities') }} where not is_deleted
),

lines as (
    select opportunity_id, count(*) as line_count, sum(total_price) as lines_total
    from {{ ref('stg_salesforce__opportunity_line_items') }}
    where not is_deleted
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
    opportunities.updated_at
from opportunities
left join lines on lines.opportunity_id = opportunities.opportunity_id
left join xref on xref.source_id = opportunities.account_id
left join currencies on currencies.currency_code = opportunities.currency_code
