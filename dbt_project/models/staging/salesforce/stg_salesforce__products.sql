with source as (
    select * from {{ source('salesforce', 'product2') }}
),

renamed as (
    select
        ---------- ids
        {{ salesforce_id_18('id') }} as product_id,
        nullif(trim(erp_product_id_c), '')::bigint as erp_product_id,
        product_code,

        ---------- properties
        name as product_name,
        family as product_family,
        description,

        ---------- timestamps
        created_date as created_at,
        last_modified_date as updated_at,
        system_modstamp as system_modified_at,
        _revloop_extracted_at as extracted_at,
        _dlt_load_id as load_id,

        ---------- flags
        coalesce(is_active, false) as is_active,
        coalesce(is_deleted, false) as is_deleted
    from source
)

select * from renamed
