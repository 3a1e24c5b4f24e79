with source as (
    select * from {{ source('salesforce', 'contact') }}
),

renamed as (
    select
        ---------- ids
        {{ salesforce_id_18('id') }} as contact_id,
        {{ salesforce_id_18('account_id') }} as account_id,

        ---------- properties
        title,
        {{ normalize_currency('currency_iso_code') }} as currency_code,

        ---------- pii (encrypted, and keyed hashes for matching)
        name_enc,
        name_hash,
        first_name_enc,
        first_name_hash,
        last_name_enc,
        last_name_hash,
        email_enc,
        email_hash,
        phone_enc,
        phone_hash,

        ---------- timestamps
        created_date as created_at,
        last_modified_date as updated_at,
        system_modstamp as system_modified_at,
        _revloop_extracted_at as extracted_at,
        _dlt_load_id as load_id,

        ---------- flags
        coalesce(is_deleted, false) as is_deleted
    from source
)

select * from renamed
