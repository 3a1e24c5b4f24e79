with source as (
    select * from {{ source('erp', 'res_currency') }}
),

renamed as (
    select
        id as currency_id,
        {{ normalize_currency('name') }} as currency_code,
        full_name as currency_name,
        symbol,
        rounding,
        decimal_places,
        position as symbol_position,
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
