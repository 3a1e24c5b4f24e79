{#- Status enums: a source value becomes a canonical value through a seed (`status_map_<system>`), one row
    per (field, source_value). An unmapped value maps to null here and fails the `status_is_mapped` test,
    which names the value; it never silently passes as null. -#}
{% macro map_status(system, field, column) -%}
    (select status_map.canonical_value
       from {{ ref('status_map_' ~ system) }} as status_map
      where status_map.field = '{{ field }}'
        and status_map.source_value = {{ column }})
{%- endmacro %}
