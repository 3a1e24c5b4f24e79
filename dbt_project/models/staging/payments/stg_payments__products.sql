with source as (
    select * from {{ source('payments', 'product') }}
),

renamed as (
    select
        id as product_id,
        {{ salesforce_id_18(json_text('metadata', 'salesforce_product_id')) }} as salesforce_product_id,
        {{ json_text('metadata', 'erp_product_id') }}::bigint as erp_product_id,
        {{ json_text('metadata', 'code') }} as product_code,
        name as product_name,
        description,
        type as product_type,
        default_price as default_price_id,
        metadata as metadata_json,
        created as created_at,
        updated as updated_at,
        _revloop_observed_at as observed_at,
        _revloop_extracted_at as extracted_at,
        _dlt_load_id as load_id,
        coalesce(active, false) as is_active,
        coalesce(is_deleted, false) as is_deleted
    from source
)

select * from renamed
