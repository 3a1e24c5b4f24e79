with source as (
    select * from {{ source('payments', 'customer') }}
),

renamed as (
    select
        ---------- ids
        id as customer_id,
        {{ salesforce_id_18(json_text('metadata', 'salesforce_account_id')) }} as salesforce_account_id,
        {{ json_text('metadata', 'erp_partner_id') }}::bigint as erp_partner_id,
        invoice_prefix,

        ---------- properties
        description,
        {{ normalize_currency('currency') }} as currency_code,
        upper(nullif(trim(address_country), '')) as address_country_code,
        address_city,
        address_postal_code,
        tax_exempt,
        metadata as metadata_json,

        ---------- pii (encrypted, and keyed hashes for matching)
        name_enc,
        name_hash,
        email_enc,
        email_hash,
        phone_enc,
        phone_hash,
        address_line1_enc,
        address_line1_hash,

        ---------- money
        balance as balance_minor,

        ---------- timestamps
        created as created_at,
        _revloop_observed_at as observed_at,
        _revloop_extracted_at as extracted_at,
        _dlt_load_id as load_id,

        ---------- flags
        coalesce(delinquent, false) as is_delinquent,
        coalesce(livemode, false) as is_livemode,
        coalesce(is_deleted, false) as is_deleted
    from source
)

select * from renamed
