{#- A business date: the calendar day an instant falls on in a time zone (a payment taken at 23:30 UTC on
    the 1st is a payment of the 2nd in Singapore). -#}
{% macro local_date(timestamp_column, time_zone) -%}
    (({{ timestamp_column }}) at time zone coalesce({{ time_zone }}, '{{ var("default_time_zone") }}'))::date
{%- endmacro %}
