with source as (
    select * from {{ source('salesforce', 'opportunity') }}
),

renamed as (
    select
        ---------- ids
        {{ salesforce_id_18('id') }} as opportunity_id,
        {{ salesforce_id_18('account_id') }} as account_id,

        ---------- properties
        name as opportunity_name,
        stage_name as source_stage,
        {{ map_status('salesforce', 'opportunity_stage', 'stage_name') }} as stage,
        type as opportunity_type,
        lead_source,
        probability as probability_percent,

        ---------- money (major units, exact)
        amount,
        {{ normalize_currency('currency_iso_code') }} as currency_code,

        ---------- dates (close_date is the account's local business date, as Salesforce means it)
        close_date,

        ---------- timestamps
        created_date as created_at,
        last_modified_date as updated_at,
        system_modstamp as system_modified_at,
        _revloop_extracted_at as extracted_at,
        _dlt_load_id as load_id,

        ---------- flags
        coalesce(is_closed, false) as is_closed,
        coalesce(is_won, false) as is_won,
        coalesce(is_deleted, false) as is_deleted
    from source
)

select * from renamed
