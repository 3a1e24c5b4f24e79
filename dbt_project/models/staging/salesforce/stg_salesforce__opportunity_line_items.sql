with source as (
    select * from {{ source('salesforce', 'opportunity_line_item') }}
),

renamed as (
    select
        ---------- ids
        {{ salesforce_id_18('id') }} as opportunity_line_item_id,
        {{ salesforce_id_18('opportunity_id') }} as opportunity_id,
        {{ salesforce_id_18('product2_id') }} as product_id,

        ---------- properties
        name as line_name,
        description,

        ---------- money (major units, exact)
        quantity,
        unit_price,
        total_price,
        {{ normalize_currency('currency_iso_code') }} as currency_code,

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
