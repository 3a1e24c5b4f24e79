{#- Every distinct non-null value of `column_name` has a row in `status_map_<system>` for `field`.
    The failing rows are the unmapped values themselves, so the failure names them. -#}
{% test status_is_mapped(model, column_name, system, field) %}
select distinct
    tested.{{ column_name }} as unmapped_value
from {{ model }} as tested
where tested.{{ column_name }} is not null
  and not exists (
      select 1
        from {{ ref('status_map_' ~ system) }} as status_map
       where status_map.field = '{{ field }}'
         and status_map.source_value = tested.{{ column_name }}
  )
{% endtest %}
