{#- What each incremental model has already seen, so a refresh reads only what changed since its own last
    build. `intermediate.refresh_windows` (the `refresh_state_schema` var) holds, per model and input, how
    far its last build read:

    * a loaded system (`salesforce`, `erp`, `payments`): the newest completed dlt load (`_dlt_loads`,
      status 0) when the build started. A refresh reads the raw rows whose `load_id` is newer. A load id
      grows with every load of a system, whatever the rows' own timestamps say, so a row rewritten with
      the same `_revloop_extracted_at`, or a load that committed while another system's build ran, is
      still read. Rows of a load that was still running are read again by the next build.
    * an upstream incremental model (a feed): that model's `built_at` when the build started. A refresh
      reads the feed's rows with a newer `refreshed_at`, and the keys it removed since
      (`refresh_removals`).
    * `built_at`: when this build started (the `refreshed_at` of every row it writes).

    The pre-hook `open_refresh_window()` records the new values in the model's own transaction, so a
    failed build leaves them as they were. A refresh compiles the previous values in as literals, which
    lets PostgreSQL plan the narrow index range it really reads. -#}

{% macro refresh_windows_relation() -%}
    {{ var('refresh_state_schema') }}.refresh_windows
{%- endmacro %}

{% macro refresh_removals_relation() -%}
    {{ var('refresh_state_schema') }}.refresh_removals
{%- endmacro %}


{#- on-run-start: the two bookkeeping tables (cheap when they exist). The schema is created only when
    missing: a warehouse role that owns the schema may not create schemas. -#}
{% macro create_refresh_bookkeeping() -%}
do $bookkeeping$
begin
    if not exists (select 1 from pg_namespace where nspname = '{{ var('refresh_state_schema') }}') then
        create schema {{ var('refresh_state_schema') }};
    end if;
    create table if not exists {{ refresh_windows_relation() }} (
        model text not null,
        input text not null,
        through_value text,
        primary key (model, input)
    );
    create table if not exists {{ refresh_removals_relation() }} (
        model text not null,
        key text not null,
        removed_at timestamptz not null
    );
    create index if not exists refresh_removals_model_removed_at
        on {{ refresh_removals_relation() }} (model, removed_at);
exception when duplicate_table or duplicate_object or duplicate_schema or unique_violation then
    null;  -- another build created them at the same moment
end
$bookkeeping$
{%- endmacro %}


{#- The dlt-loaded systems and their raw schemas, from the declared sources. -#}
{% macro loaded_system_schemas() -%}
    {%- set schemas = {} -%}
    {%- for system in var('loaded_systems') -%}
        {%- for source_node in graph.sources.values() if source_node.source_name == system -%}
            {%- do schemas.update({system: source_node.schema}) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(schemas) }}
{%- endmacro %}


{#- The incremental models this model reads: the feeds whose changes it follows. -#}
{% macro upstream_incremental_models(node=none) -%}
    {%- set node = node or model -%}
    {%- set feeds = [] -%}
    {%- for unique_id in node.depends_on.nodes if unique_id.startswith('model.') -%}
        {%- set upstream = graph.nodes.get(unique_id) -%}
        {%- if upstream and upstream.config.materialized == 'incremental' -%}
            {%- do feeds.append(upstream.alias or upstream.name) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(feeds | sort) }}
{%- endmacro %}


{#- pre-hook of every incremental model: record how far this build reads (see the top of this file). The
    advisory lock orders two builds of one model, so `built_at` only grows. A refresh turns JIT compilation
    off: its queries read a few rows, and compiling them took longer than running them. -#}
{% macro open_refresh_window() -%}
    {%- set schemas = loaded_system_schemas() -%}
    {%- set feeds = upstream_incremental_models() -%}
{% if is_incremental() %}set local jit = off;{% endif %}
select pg_advisory_xact_lock(hashtext('revloop refresh {{ this.identifier }}'));
insert into {{ refresh_windows_relation() }} as windows (model, input, through_value)
select '{{ this.identifier }}', inputs.input, inputs.through_value
from (values
    ('built_at', to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
    {%- for system, schema in schemas.items() %},
    ('{{ system }}', (select max(load_id) from {{ schema }}._dlt_loads where status = 0))
    {%- endfor %}
    {%- for feed in feeds %},
    ('{{ feed }}', (select through_value from {{ refresh_windows_relation() }}
                    where model = '{{ feed }}' and input = 'built_at'))
    {%- endfor %}
) as inputs (input, through_value)
on conflict (model, input) do update set through_value = excluded.through_value
{%- endmacro %}


{#- How far this model's previous build read, per input (compile time, once per model; empty on a first or
    full build). -#}
{% macro previous_window() -%}
    {%- if model is mapping and 'revloop_previous_window' in model -%}
        {{ return(model['revloop_previous_window']) }}
    {%- endif -%}
    {%- set found = {} -%}
    {%- if execute and is_incremental() -%}
        {%- set table = adapter.get_relation(database=target.database, schema=var('refresh_state_schema'),
                                             identifier='refresh_windows') -%}
        {%- if table is not none -%}
            {%- set result = run_query("select input, through_value from " ~ refresh_windows_relation()
                                       ~ " where model = '" ~ this.identifier ~ "'") -%}
            {%- for row in result.rows -%}
                {%- do found.update({row[0]: row[1]}) -%}
            {%- endfor -%}
        {%- endif -%}
        {%- do model.update({'revloop_previous_window': found}) -%}
    {%- endif -%}
    {{ return(found) }}
{%- endmacro %}


{#- A predicate: the row came with a load newer than this model's previous build read. -#}
{% macro loaded_since_last_build(system, column='load_id') -%}
    {%- set after = previous_window().get(system) or '' -%}
    {{ column }} collate "C" > '{{ after }}'
{%- endmacro %}


{#- A predicate: the feed's row was written after this model's previous build read the feed. -#}
{% macro refreshed_since_last_build(feed, column='refreshed_at') -%}
    {%- set after = previous_window().get(feed) or '-infinity' -%}
    {{ column }} > '{{ after }}'::timestamptz
{%- endmacro %}


{#- The keys (as text) the feed removed after this model's previous build read it. -#}
{% macro removed_since_last_build(feed) -%}
    {%- set after = previous_window().get(feed) or '-infinity' -%}
    select key from {{ refresh_removals_relation() }}
    where model = '{{ feed }}' and removed_at > '{{ after }}'::timestamptz
{%- endmacro %}


{#- A predicate: some feed of this model wrote or removed a row since its previous build read them; a model
    recomputed as a whole (identity resolution) has nothing to do otherwise. -#}
{% macro any_feed_changed() -%}
    {%- set feeds = upstream_incremental_models() -%}
    (false
    {%- for feed in feeds %}
        or exists (select 1 from {{ ref(feed) }} where {{ refreshed_since_last_build(feed) }})
        or exists ({{ removed_since_last_build(feed) }})
    {%- endfor %})
{%- endmacro %}


{#- The start of this build: the `refreshed_at` of every row it writes. -#}
{% macro build_time() -%}
    (select through_value::timestamptz from {{ refresh_windows_relation() }}
     where model = '{{ this.identifier }}' and input = 'built_at')
{%- endmacro %}
