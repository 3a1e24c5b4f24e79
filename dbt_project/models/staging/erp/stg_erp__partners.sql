with source as (
    select * from {{ source('erp', 'res_partner') }}
),

renamed as (
    select
        ---------- ids
        id as partner_id,
        parent_id as parent_partner_id,
        country_id,
        nullif(trim(ref), '') as reference,
        {{ salesforce_id_18("case when trim(ref) ~ '^001[0-9A-Za-z]{12}([0-9A-Za-z]{3})?$' then ref end") }}
            as salesforce_account_id,

        ---------- properties (a person's name is PII and only encrypted; a company's name is plain)
        name as partner_name,
        {{ normalized_company_name('name') }} as normalized_name,
        website,
        {{ website_domain('website') }} as website_domain,
        city,
        zip as postal_code,
        country_name,
        lang as language,
        customer_rank,
        supplier_rank,

        ---------- pii (encrypted, and keyed hashes for matching)
        name_enc,
        name_hash,
        email_enc,
        email_hash,
        phone_enc,
        phone_hash,
        vat_enc as tax_id_enc,
        vat_hash as tax_id_hash,
        street_enc,
        street_hash,

        ---------- timestamps
        create_date as created_at,
        write_date as updated_at,
        deleted_at,
        _revloop_extracted_at as extracted_at,
        _dlt_load_id as load_id,

        ---------- flags
        coalesce(is_company, false) as is_company,
        coalesce(active, true) as is_active,
        coalesce(is_deleted, false) as is_deleted
    from source
)

select * from renamed
