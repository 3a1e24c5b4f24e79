{#- The records of `system` (Account Ids, ERP partner ids, payments customer ids, as text) whose canonical
    customer may have changed since this model's previous build: the int_customer_xref rows written or
    removed since. -#}
{% macro identity_changes(system) -%}
    select source_id from {{ ref('int_customer_xref') }}
    where source_system = '{{ system }}' and {{ refreshed_since_last_build('int_customer_xref') }}
    union all
    select substr(removed.key, {{ (system | length) + 2 }})
    from ({{ removed_since_last_build('int_customer_xref') }}) as removed
    where removed.key like '{{ system }}:%'
{%- endmacro %}
