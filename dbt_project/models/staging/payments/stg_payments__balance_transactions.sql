with source as (
    select * from {{ source('payments', 'balance_transaction') }}
),

currencies as (
    select * from {{ ref('currencies') }}
),

renamed as (
    select
        source.id as balance_transaction_id,
        source.source as source_object_id,
        source.type as transaction_type,
        source.reporting_category,
        source.status as source_status,
        source.description,
        {{ normalize_currency('source.currency') }} as currency_code,
        source.amount as amount_minor,
        source.fee as fee_minor,
        source.net as net_minor,
        {{ minor_to_major('source.amount', 'currencies.stripe_exponent') }} as amount,
        {{ minor_to_major('source.fee', 'currencies.stripe_exponent') }} as fee,
        {{ minor_to_major('source.net', 'currencies.stripe_exponent') }} as net,
        -- Stripe's exchange rate is a float in the API; kept as text-exact numeric for reference only,
        -- never used to convert money in this project.
        source.exchange_rate::text::numeric as exchange_rate,
        source.created as created_at,
        source.available_on as available_at,
        source._revloop_observed_at as observed_at,
        source._revloop_extracted_at as extracted_at,
        source._dlt_load_id as load_id,
        coalesce(source.is_deleted, false) as is_deleted
    from source
    left join currencies on currencies.currency_code = {{ normalize_currency('source.currency') }}
)

select * from renamed
