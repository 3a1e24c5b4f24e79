with source as (
    select * from {{ source('payments', 'invoice') }}
),

currencies as (
    select * from {{ ref('currencies') }}
),

renamed as (
    select
        ---------- ids
        source.id as invoice_id,
        source.customer as customer_id,
        source.payment_intent as payment_intent_id,
        source.subscription as subscription_id,
        source.number as invoice_number,
        {{ salesforce_id_18(json_text('source.metadata', 'salesforce_opportunity_id')) }} as salesforce_opportunity_id,
        {{ json_text('source.metadata', 'erp_invoice_id') }}::bigint as erp_invoice_id,
        {{ json_text('source.metadata', 'erp_invoice_number') }} as erp_invoice_number,
        {{ json_text('source.metadata', 'revloop_key') }} as revloop_key,

        ---------- statuses
        source.status as source_status,
        {{ map_status('payments', 'invoice_status', 'source.status') }} as status,
        {{ map_status('payments', 'invoice_payment_status', 'source.status') }} as payment_status,
        source.collection_method,
        source.billing_reason,
        source.attempt_count,

        ---------- money (minor units as sent, and exact major units)
        {{ normalize_currency('source.currency') }} as currency_code,
        source.total as total_minor,
        source.amount_due as amount_due_minor,
        source.amount_paid as amount_paid_minor,
        source.amount_remaining as amount_remaining_minor,
        {{ minor_to_major('source.subtotal', 'currencies.stripe_exponent') }} as subtotal,
        {{ minor_to_major('source.total', 'currencies.stripe_exponent') }} as total,
        {{ minor_to_major('source.amount_due', 'currencies.stripe_exponent') }} as amount_due,
        {{ minor_to_major('source.amount_paid', 'currencies.stripe_exponent') }} as amount_paid,
        {{ minor_to_major('source.amount_remaining', 'currencies.stripe_exponent') }} as amount_remaining,

        ---------- pii (encrypted, and keyed hashes for matching)
        source.customer_email_enc,
        source.customer_email_hash,
        source.customer_name_enc,
        source.customer_name_hash,

        ---------- timestamps
        source.created as created_at,
        source.due_date as due_at,
        source.effective_at,
        source.status_transitions_finalized_at as finalized_at,
        source.status_transitions_paid_at as paid_at,
        source.status_transitions_voided_at as voided_at,
        source.status_transitions_marked_uncollectible_at as marked_uncollectible_at,
        source._revloop_observed_at as observed_at,
        source._revloop_extracted_at as extracted_at,
        source._dlt_load_id as load_id,

        ---------- flags
        coalesce(source.paid, false) as is_paid,
        coalesce(source.paid_out_of_band, false) as is_paid_out_of_band,
        coalesce(source.livemode, false) as is_livemode,
        coalesce(source.is_deleted, false) as is_deleted
    from source
    left join currencies on currencies.currency_code = {{ normalize_currency('source.currency') }}
)

select * from renamed
