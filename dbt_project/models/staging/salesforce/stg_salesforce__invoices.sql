with source as (
    select * from {{ source('salesforce', 'invoice_c') }}
),

renamed as (
    select
        ---------- ids
        {{ salesforce_id_18('id') }} as invoice_id,
        {{ salesforce_id_18('opportunity_c') }} as opportunity_id,
        {{ salesforce_id_18('account_c') }} as account_id,
        nullif(trim(erp_invoice_id_c), '')::bigint as erp_invoice_id,
        nullif(trim(erp_invoice_number_c), '') as erp_invoice_number,
        nullif(trim(revloop_key_c), '') as revloop_key,
        name as invoice_name,

        ---------- statuses
        status_c as source_status,
        {{ map_status('salesforce', 'invoice_status', 'status_c') }} as status,
        payment_status_c as source_payment_status,
        {{ map_status('salesforce', 'invoice_payment_status', 'payment_status_c') }} as payment_status,

        ---------- money (major units, exact)
        amount_c as amount,
        {{ normalize_currency('currency_iso_code') }} as currency_code,

        ---------- dates (local business dates, as written on the invoice)
        invoice_date_c as invoice_date,
        due_date_c as due_date,

        ---------- timestamps
        paid_at_c as paid_at,
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
