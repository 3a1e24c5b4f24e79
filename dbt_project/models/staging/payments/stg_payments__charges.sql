with source as (
    select * from {{ source('payments', 'charge') }}
),

currencies as (
    select * from {{ ref('currencies') }}
),

renamed as (
    select
        ---------- ids
        source.id as charge_id,
        source.customer as customer_id,
        source.invoice as invoice_id,
        source.payment_intent as payment_intent_id,
        source.balance_transaction as balance_transaction_id,
        {{ salesforce_id_18(json_text('source.metadata', 'salesforce_opportunity_id')) }} as salesforce_opportunity_id,
        {{ json_text('source.metadata', 'erp_invoice_id') }}::bigint as erp_invoice_id,
        {{ json_text('source.metadata', 'erp_payment_id') }}::bigint as erp_payment_id,
        {{ json_text('source.metadata', 'revloop_key') }} as revloop_key,

        ---------- statuses
        source.status as source_status,
        {{ map_status('payments', 'charge_status', 'source.status') }} as status,
        source.failure_code,
        source.failure_message,
        source.outcome_type,
        source.outcome_network_status,
        source.outcome_risk_level,

        ---------- payment method (no PII: brand, funding, country and last four digits only)
        source.payment_method_details_type as payment_method_type,
        source.payment_method_details_card_brand as card_brand,
        source.payment_method_details_card_funding as card_funding,
        source.payment_method_details_card_country as card_country_code,
        source.payment_method_details_card_last4 as card_last4,

        ---------- money
        {{ normalize_currency('source.currency') }} as currency_code,
        source.amount as amount_minor,
        source.amount_captured as amount_captured_minor,
        source.amount_refunded as amount_refunded_minor,
        {{ minor_to_major('source.amount', 'currencies.stripe_exponent') }} as amount,
        {{ minor_to_major('source.amount_captured', 'currencies.stripe_exponent') }} as amount_captured,
        {{ minor_to_major('source.amount_refunded', 'currencies.stripe_exponent') }} as amount_refunded,

        ---------- pii (encrypted, and keyed hashes for matching)
        source.receipt_email_enc,
        source.receipt_email_hash,
        source.billing_details_email_hash,
        source.billing_details_name_hash,

        ---------- timestamps
        source.created as created_at,
        source._revloop_observed_at as observed_at,
        source._revloop_extracted_at as extracted_at,
        source._dlt_load_id as load_id,

        ---------- flags
        coalesce(source.captured, false) as is_captured,
        coalesce(source.paid, false) as is_paid,
        coalesce(source.refunded, false) as is_refunded,
        coalesce(source.disputed, false) as is_disputed,
        coalesce(source.livemode, false) as is_livemode,
        coalesce(source.is_deleted, false) as is_deleted
    from source
    left join currencies on currencies.currency_code = {{ normalize_currency('source.currency') }}
)

select * from renamed
