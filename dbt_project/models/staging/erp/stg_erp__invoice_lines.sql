with source as (
    select * from {{ source('erp', 'account_move_line') }}
),

renamed as (
    select
        ---------- ids
        id as invoice_line_id,
        move_id as invoice_id,
        product_id,
        sequence as line_sequence,

        ---------- properties
        name as line_label,
        product_name,
        tax_ids as tax_ids_json,

        ---------- money (major units, in the invoice's currency: see stg_erp__invoices)
        quantity,
        price_unit as unit_price,
        discount as discount_percent,
        price_subtotal,
        price_tax,
        price_total,

        ---------- timestamps
        create_date as created_at,
        write_date as updated_at,
        deleted_at,
        _revloop_extracted_at as extracted_at,
        _dlt_load_id as load_id,

        ---------- flags
        coalesce(is_deleted, false) as is_deleted
    from source
)

select * from renamed
