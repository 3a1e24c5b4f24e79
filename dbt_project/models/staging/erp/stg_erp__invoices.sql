with source as (
    select * from {{ source('erp', 'account_move') }}
),

renamed as (
    select
        ---------- ids
        id as invoice_id,
        name as invoice_number,
        partner_id,
        company_id,
        currency_id,
        reversed_entry_id,
        nullif(trim(ref), '') as revloop_key,
        {{ salesforce_id_18("case when trim(invoice_origin) ~ '^006[0-9A-Za-z]{12}([0-9A-Za-z]{3})?$' then invoice_origin end") }}
            as salesforce_opportunity_id,
        nullif(trim(invoice_origin), '') as invoice_origin,
        nullif(trim(payment_reference), '') as payment_reference,

        ---------- statuses
        move_type,
        state as source_state,
        {{ map_status('erp', 'move_state', 'state') }} as status,
        payment_state as source_payment_state,
        {{ map_status('erp', 'move_payment_state', 'payment_state') }} as payment_status,

        ---------- money (major units, exact numeric as the ERP holds them)
        {{ normalize_currency('currency_name') }} as currency_code,
        amount_untaxed,
        amount_tax,
        amount_total,
        amount_residual,

        ---------- dates (accounting dates: local business dates)
        date as accounting_date,
        invoice_date,
        invoice_date_due as due_date,

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
