with source as (
    select * from {{ source('quarantine', 'records') }}
),

renamed as (
    select
        id as quarantine_record_id,
        source as source_system,
        object as source_object,
        record_id as source_record_id,
        field as source_field,
        reason,
        value_enc,
        payload_enc,
        payload_sha256,
        occurrences,
        first_seen_at,
        last_seen_at,
        resolved_at,
        resolved_at is not null as is_resolved
    from source
)

select * from renamed
