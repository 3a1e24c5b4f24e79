{#- Every distinct non-null value of `column_name` has a row in `status_map_<system>` for `field`.
    The failing rows are the unmapped values themselves, so the failure names them. -#}
{% test status_is_mapped(model, column_name, system, field) %}
with tested as (
    select {{ column_name }} as source_value from {{ model }}
)

select distinct
    tested.source_value as unmapped_value
from tested
where tested.source_value is not null
  and not exists (
      select 1
        from {{ ref('status_map_' ~ system) }} as status_map
       where status_map.field = '{{ field }}'
         and status_map.source_value = tested.source_value
  )
{% endtest %}
