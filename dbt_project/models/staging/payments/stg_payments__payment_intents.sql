with source as (
    select * from {{ source('payments', 'payment_intent') }}
),

currencies as (
    select * from {{ ref('currencies') }}
),

renamed as (
    select
        ---------- ids
        source.id as payment_intent_id,
        source.customer as customer_id,
        source.invoice as invoice_id,
        source.latest_charge as latest_charge_id,
        {{ salesforce_id_18(json_text('source.metadata', 'salesforce_opportunity_id')) }} as salesforce_opportunity_id,
        {{ json_text('source.metadata', 'erp_invoice_id') }}::bigint as erp_invoice_id,
        {{ json_text('source.metadata', 'revloop_key') }} as revloop_key,

        ---------- statuses
        source.status as source_status,
        {{ map_status('payments', 'payment_intent_status', 'source.status') }} as status,
        source.cancellation_reason,
        source.last_payment_error_code,
        source.last_payment_error_decline_code,

        ---------- money
        {{ normalize_currency('source.currency') }} as currency_code,
        source.amount as amount_minor,
        source.amount_received as amount_received_minor,
        {{ minor_to_major('source.amount', 'currencies.stripe_exponent') }} as amount,
        {{ minor_to_major('source.amount_received', 'currencies.stripe_exponent') }} as amount_received,

        ---------- pii (encrypted, and keyed hashes for matching)
        source.receipt_email_enc,
        source.receipt_email_hash,

        ---------- timestamps
        source.created as created_at,
        source.canceled_at,
        source._revloop_observed_at as observed_at,
        source._revloop_extracted_at as extracted_at,
        source._dlt_load_id as load_id,

        ---------- flags
        coalesce(source.livemode, false) as is_livemode,
        coalesce(source.is_deleted, false) as is_deleted
    from source
    left join currencies on currencies.currency_code = {{ normalize_currency('source.currency') }}
)

select * from renamed
