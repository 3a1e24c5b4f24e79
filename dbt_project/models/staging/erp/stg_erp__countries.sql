with source as (
    select * from {{ source('erp', 'res_country') }}
),

renamed as (
    select
        id as country_id,
        upper(nullif(trim(code), '')) as country_code,
        name as country_name,
        currency_id,
        {{ normalize_currency('currency_name') }} as currency_code,
        create_date as created_at,
        write_date as updated_at,
        deleted_at,
        _revloop_extracted_at as extracted_at,
        _dlt_load_id as load_id,
        coalesce(is_deleted, false) as is_deleted
    from source
)

select * from renamed
