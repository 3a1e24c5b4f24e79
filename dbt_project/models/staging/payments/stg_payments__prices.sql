with source as (
    select * from {{ source('payments', 'price') }}
),

currencies as (
    select * from {{ ref('currencies') }}
),

renamed as (
    select
        source.id as price_id,
        source.product as product_id,
        source.type as price_type,
        source.billing_scheme,
        source.nickname,
        source.lookup_key,
        source.recurring_interval,
        source.recurring_interval_count,
        {{ normalize_currency('source.currency') }} as currency_code,
        source.unit_amount as unit_amount_minor,
        {{ minor_to_major('source.unit_amount', 'currencies.stripe_exponent') }} as unit_amount,
        source.created as created_at,
        source._revloop_observed_at as observed_at,
        source._revloop_extracted_at as extracted_at,
        source._dlt_load_id as load_id,
        coalesce(source.active, false) as is_active,
        coalesce(source.is_deleted, false) as is_deleted
    from source
    left join currencies on currencies.currency_code = {{ normalize_currency('source.currency') }}
)

select * from renamed
