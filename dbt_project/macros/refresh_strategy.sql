{#- How an incremental model writes a refresh (`incremental_strategy='refresh'`).

    The model computes its rows for the keys whose inputs changed; `changed_rows_only()` keeps those that
    differ from what the table holds (a row re-loaded unchanged writes nothing) and adds, for every such
    key that no longer has a row (a soft delete, a deal no longer won), a removal: the key with every
    other column null, `refreshed_at` included. The strategy then replaces the batch's keys and records
    the removed keys in `refresh_removals`, where the models that read this one find them. -#}

{% macro changed_rows_only(rows, unique_key, changed_keys=none) -%}
    {%- if not is_incremental() -%}
select * from {{ rows }}
    {%- else -%}
        {%- set relation_columns = adapter.get_columns_in_relation(this) -%}
        {%- set columns = relation_columns | map(attribute='name') | list -%}
        {%- set compared = columns | reject('equalto', 'refreshed_at') | list -%}
select {% for column in columns %}{{ rows }}.{{ column }}{{ ', ' if not loop.last }}{% endfor %}
from {{ rows }}
where not exists (
    select 1 from {{ this }} as built
    where built.{{ unique_key }} = {{ rows }}.{{ unique_key }}
      and ({% for column in compared %}built.{{ column }}{{ ', ' if not loop.last }}{% endfor %})
          is not distinct from
          ({% for column in compared %}{{ rows }}.{{ column }}{{ ', ' if not loop.last }}{% endfor %})
)
union all
select {% for column in relation_columns -%}
    {{ 'built.' ~ column.name if column.name == unique_key else 'null::' ~ column.data_type }}{{ ', ' if not loop.last }}
{%- endfor %}
from {{ this }} as built
where {% if changed_keys is not none %}built.{{ unique_key }} in ({{ changed_keys }}) and {% endif -%}
    not exists (select 1 from {{ rows }} where {{ rows }}.{{ unique_key }} = built.{{ unique_key }})
    {%- endif -%}
{%- endmacro %}


{% macro get_incremental_refresh_sql(arg_dict) -%}
    {%- set target_relation = arg_dict['target_relation'] -%}
    {%- set batch = arg_dict['temp_relation'] -%}
    {%- set unique_key = arg_dict['unique_key'] -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    {%- set model_name = target_relation.identifier -%}
-- removals every reader has already seen are forgotten
delete from {{ refresh_removals_relation() }}
where model = '{{ model_name }}'
  and removed_at <= coalesce(
      (select min(through_value)::timestamptz from {{ refresh_windows_relation() }} where input = '{{ model_name }}'),
      'infinity');

insert into {{ refresh_removals_relation() }} (model, key, removed_at)
select '{{ model_name }}', {{ unique_key }}::text, {{ build_time() }}
from {{ batch }}
where refreshed_at is null;

delete from {{ target_relation }}
where {{ unique_key }} in (select {{ unique_key }} from {{ batch }});

insert into {{ target_relation }} ({{ columns }})
select {{ columns }} from {{ batch }}
where refreshed_at is not null
{%- endmacro %}


{#- A refresh keeps the table and its comments: they are written when the table is created (a first or full
    build), not again at every refresh (one statement per column). -#}
{% macro default__persist_docs(relation, model, for_relation, for_columns) -%}
    {%- if model.config.materialized != 'incremental' or not is_incremental() -%}
        {{ return(dbt.default__persist_docs(relation, model, for_relation, for_columns)) }}
    {%- endif -%}
{%- endmacro %}
