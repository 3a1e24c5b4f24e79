{#- Data tests of incremental models check the rows the model's latest build wrote.

    Tests opt in with `where: "__written_by_latest_build__"` (set for every mart in dbt_project.yml). In a
    `dbt build`, such a test reads only the rows whose `refreshed_at` is the model's latest build time: all
    of them after a full build or a first build, the changed ones after a refresh (the rows a refresh left
    alone were tested when they were written). Every other command (`dbt test`) tests the whole table.
    The build time comes from `var('written_since')` when the caller hands it over (`DbtProject.refresh`
    does, read once for all its tests), else each test looks it up while it compiles. -#}

{% macro default__get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where == '__written_by_latest_build__' -%}
        {%- if flags.WHICH == 'build' and execute -%}
            {#- the build time as a literal, so PostgreSQL estimates the few rows a refresh wrote from the index -#}
            {%- set known = var('written_since', {}) -%}
            {%- if relation.identifier in known -%}
                {%- set built_at = known[relation.identifier] -%}
            {%- else -%}
                {%- set latest = run_query("select through_value from " ~ refresh_windows_relation()
                                           ~ " where model = '" ~ relation.identifier ~ "' and input = 'built_at'") -%}
                {%- set built_at = latest.rows[0][0] if latest.rows else '-infinity' -%}
            {%- endif -%}
            {%- do return("(select * from " ~ relation ~ " where refreshed_at >= '" ~ built_at
                          ~ "'::timestamptz) dbt_subquery") -%}
        {%- else -%}
            {%- do return(relation) -%}
        {%- endif -%}
    {%- elif where -%}
        {%- set filtered -%}
(select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
