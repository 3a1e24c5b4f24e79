with source as (
    select * from {{ source('erp', 'account_payment') }}
),

renamed as (
    select
        ---------- ids
        id as payment_id,
        name as payment_number,
        partner_id,
        company_id,
        currency_id,
        nullif(trim(payment_reference), '') as payment_reference,
        nullif(trim(memo), '') as memo,
        invoice_ids as invoice_ids_json,
        -- the one invoice a payment settles (our flows register one payment per invoice)
        nullif((invoice_ids::jsonb ->> 0), '')::bigint as invoice_id,

        ---------- statuses
        payment_type,
        partner_type,
        state as source_state,
        {{ map_status('erp', 'payment_state', 'state') }} as status,

        ---------- money (major units, exact)
        amount,
        {{ normalize_currency('currency_name') }} as currency_code,

        ---------- dates
        date as payment_date,

        ---------- timestamps
        create_date as created_at,
        write_date as updated_at,
        deleted_at,
        _revloop_extracted_at as extracted_at,
        _dlt_load_id as load_id,

        ---------- flags
        coalesce(is_reconciled, false) as is_reconciled,
        coalesce(is_deleted, false) as is_deleted
    from source
)

select * from renamed
