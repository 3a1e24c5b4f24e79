with source as (
    select * from {{ source('payments', 'invoice_line') }}
),

currencies as (
    select * from {{ ref('currencies') }}
),

renamed as (
    select
        source.invoice || ':' || source.id as invoice_line_key,
        source.id as invoice_line_id,
        source.invoice as invoice_id,
        source.price as price_id,
        source.product as product_id,
        source.invoice_item as invoice_item_id,
        source.subscription as subscription_id,
        source.description,
        source.quantity,
        {{ normalize_currency('source.currency') }} as currency_code,
        source.amount as amount_minor,
        {{ minor_to_major('source.amount', 'currencies.stripe_exponent') }} as amount,
        source.period_start as period_start_at,
        source.period_end as period_end_at,
        source._revloop_observed_at as observed_at,
        source._revloop_extracted_at as extracted_at,
        source._dlt_load_id as load_id,
        coalesce(source.is_deleted, false) as is_deleted
    from source
    left join currencies on currencies.currency_code = {{ normalize_currency('source.currency') }}
)

select * from renamed
