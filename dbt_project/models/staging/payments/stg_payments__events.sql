with source as (
    select * from {{ source('payments', 'event') }}
),

renamed as (
    select
        id as event_id,
        type as event_type,
        object_id,
        object_type,
        object_status,
        previous_attribute_names as previous_attribute_names_json,
        api_version,
        request_id,
        request_idempotency_key,
        pending_webhooks,
        created as created_at,
        _revloop_extracted_at as extracted_at,
        _dlt_load_id as load_id,
        coalesce(livemode, false) as is_livemode,
        coalesce(is_deleted, false) as is_deleted
    from source
)

select * from renamed
