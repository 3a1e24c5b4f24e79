with source as (
    select * from {{ source('salesforce', 'subscription_c') }}
),

renamed as (
    select
        ---------- ids
        {{ salesforce_id_18('id') }} as subscription_id,
        {{ salesforce_id_18('account_c') }} as account_id,
        {{ salesforce_id_18('renewal_opportunity_c') }} as renewal_opportunity_id,
        nullif(trim(revloop_key_c), '') as revloop_key,
        name as subscription_name,

        ---------- statuses
        status_c as source_status,
        {{ map_status('salesforce', 'subscription_status', 'status_c') }} as status,

        ---------- money (major units, exact)
        amount_c as amount,
        {{ normalize_currency('currency_iso_code') }} as currency_code,

        ---------- dates
        start_date_c as start_date,
        end_date_c as end_date,

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
