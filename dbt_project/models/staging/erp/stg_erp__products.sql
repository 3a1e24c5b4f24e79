with source as (
    select * from {{ source('erp', 'product_product') }}
),

renamed as (
    select
        id as product_id,
        nullif(trim(default_code), '') as product_code,
        name as product_name,
        type as product_type,
        list_price,
        create_date as created_at,
        write_date as updated_at,
        deleted_at,
        _revloop_extracted_at as extracted_at,
        _dlt_load_id as load_id,
        coalesce(active, true) as is_active,
        coalesce(is_deleted, false) as is_deleted
    from source
)

select * from renamed
