with source as (
    select * from {{ source('payments', 'refund') }}
),

currencies as (
    select * from {{ ref('currencies') }}
),

renamed as (
    select
        source.id as refund_id,
        source.charge as charge_id,
        source.payment_intent as payment_intent_id,
        source.balance_transaction as balance_transaction_id,
        source.status as source_status,
        {{ map_status('payments', 'refund_status', 'source.status') }} as status,
        source.reason,
        source.failure_reason,
        {{ normalize_currency('source.currency') }} as currency_code,
        source.amount as amount_minor,
        {{ minor_to_major('source.amount', 'currencies.stripe_exponent') }} as amount,
        source.created as created_at,
        source._revloop_observed_at as observed_at,
        source._revloop_extracted_at as extracted_at,
        source._dlt_load_id as load_id,
        coalesce(source.is_deleted, false) as is_deleted
    from source
    left join currencies on currencies.currency_code = {{ normalize_currency('source.currency') }}
)

select * from renamed
