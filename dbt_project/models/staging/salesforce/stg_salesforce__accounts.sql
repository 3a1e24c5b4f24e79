with source as (
    select * from {{ source('salesforce', 'account') }}
),

renamed as (
    select
        ---------- ids
        {{ salesforce_id_18('id') }} as account_id,
        nullif(trim(erp_partner_id_c), '')::bigint as erp_partner_id,
        nullif(trim(account_number), '') as account_number,

        ---------- properties
        name as account_name,
        {{ normalized_company_name('name') }} as normalized_name,
        {{ website_domain('website') }} as website_domain,
        website,
        type as account_type,
        industry,
        {{ normalize_currency('currency_iso_code') }} as currency_code,
        upper(nullif(trim(billing_country), '')) as billing_country_code,
        billing_city,
        billing_postal_code,

        ---------- pii (encrypted, and keyed hashes for matching)
        billing_street_enc,
        billing_street_hash,
        phone_enc,
        phone_hash,
        vat_number_c_enc as tax_id_enc,
        vat_number_c_hash as tax_id_hash,

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
