{#- Each environment has a warehouse of its own, so layer schemas keep their plain names
    (`staging`, `intermediate`, `marts`, `reference`) instead of dbt's `<target>_<custom>` prefixing. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
