{#- Salesforce Ids: the 15-character form is case-sensitive; the 18-character form appends a checksum of the
    case of each 5-character chunk (bit i set when character i is A-Z), encoded in A-Z0-5. References made
    by people (reports, spreadsheets, other systems) often carry the 15-character form, so every Id is
    normalized to 18 characters before it is joined. An 18-character Id is kept; anything else is null. -#}
{% macro salesforce_id_18(column) -%}
    {%- set alphabet = "'ABCDEFGHIJKLMNOPQRSTUVWXYZ012345'" -%}
    (case
        when length(nullif(trim({{ column }}), '')) = 18 then trim({{ column }})
        when length(nullif(trim({{ column }}), '')) = 15 then trim({{ column }})
        {%- for chunk in range(3) %}
            || substr({{ alphabet }}, 1
            {%- for position in range(5) %}
                + (case when substr(trim({{ column }}), {{ chunk * 5 + position + 1 }}, 1) between 'A' and 'Z'
                        collate "C" then {{ 2 ** position }} else 0 end)
            {%- endfor %}, 1)
        {%- endfor %}
    end)
{%- endmacro %}
