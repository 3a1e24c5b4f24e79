{#- A key of a JSON text column (`metadata` as the payments load keeps it); null when absent or empty. -#}
{% macro json_text(column, key) -%}
    nullif(({{ column }})::jsonb ->> '{{ key }}', '')
{%- endmacro %}

{#- The host of a website, without scheme, `www.` and path: `https://www.acme.co.jp/x` -> `acme.co.jp`. -#}
{% macro website_domain(column) -%}
    nullif(regexp_replace(lower(trim({{ column }})), '^([a-z]+://)?(www\.)?([^/:?#]+).*$', '\3'), '')
{%- endmacro %}

{#- A company name reduced for comparison: lower case, legal forms and punctuation removed. -#}
{% macro normalized_company_name(column) -%}
    nullif(trim(regexp_replace(regexp_replace(lower({{ column }}),
        '\m(pte|ltd|limited|pty|inc|co|corp|corporation|llc|plc|gmbh|sdn|bhd|pt|tbk|private|jsc|company)\M', ' ', 'g'),
        '[^[:alnum:]]+', ' ', 'g')), '')
{%- endmacro %}
