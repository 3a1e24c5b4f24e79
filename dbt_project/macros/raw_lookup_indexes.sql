{#- Indexes on the raw tables that let a refresh read only what changed.

    Staging models are views, always as current as the raw tables (the flows read them directly), so the
    lookups a refresh makes land on the raw tables: the rows of the loads since the last build
    (`_dlt_load_id`), and rows by a normalized key or reference (an 18-character Salesforce Id, an ERP
    invoice id found in payments metadata). Each expression below is the one the staging view computes,
    so PostgreSQL matches the view's column to the index. The loads create only their merge-key indexes.

    on-run-start creates the missing ones when the warehouse role may (it owns the raw tables in dev and
    in tests); otherwise it names them in the log and a refresh still returns the same rows, by scanning.
    An index whose expression changed gets a new name (a hash of the expression); the old one is dropped.
    A table that gets an index, or that was never analyzed (autovacuum off, or not yet come by after a
    backfill), is analyzed: without statistics PostgreSQL expects a third of the table to match and reads
    all of it. -#}

{% macro raw_lookup_indexes() -%}
    {%- set loaded_tables = {
        'salesforce': ['account', 'contact', 'opportunity', 'opportunity_line_item', 'invoice_c', 'subscription_c'],
        'erp': ['res_partner', 'account_move', 'account_move_line', 'account_payment'],
        'payments': ['customer', 'invoice', 'payment_intent', 'charge', 'refund', 'balance_transaction'],
    } -%}
    {#- (system, table, what the index finds, indexed expression) -#}
    {%- set indexes = [] -%}
    {%- for system, tables in loaded_tables.items() -%}
        {%- for table in tables -%}
            {%- do indexes.append((system, table, 'load_id', '_dlt_load_id collate "C"')) -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- do indexes.append(('salesforce', 'opportunity', 'opportunity_id', salesforce_id_18('id'))) -%}
    {%- do indexes.append(('salesforce', 'opportunity_line_item', 'opportunity_id', salesforce_id_18('opportunity_id'))) -%}
    {%- do indexes.append(('salesforce', 'subscription_c', 'subscription_id', salesforce_id_18('id'))) -%}
    {%- do indexes.append(('salesforce', 'invoice_c', 'opportunity_id', salesforce_id_18('opportunity_c'))) -%}
    {%- do indexes.append(('salesforce', 'invoice_c', 'erp_invoice_id', "nullif(trim(erp_invoice_id_c), '')::bigint")) -%}
    {%- do indexes.append(('erp', 'account_payment', 'payment_reference', "nullif(trim(payment_reference), '')")) -%}
    {%- do indexes.append(('payments', 'refund', 'charge_id', 'charge')) -%}
    {%- do indexes.append(('payments', 'invoice', 'erp_invoice_id', json_text('metadata', 'erp_invoice_id') ~ '::bigint')) -%}
    {%- do indexes.append(('payments', 'invoice', 'salesforce_opportunity_id',
                           salesforce_id_18(json_text('metadata', 'salesforce_opportunity_id')))) -%}
    {{ return(indexes) }}
{%- endmacro %}


{% macro create_raw_lookup_indexes() -%}
    {#- an invocation that builds no model (tests only) looks nothing up -#}
    {%- set selected = namespace(models=false) -%}
    {%- for unique_id in selected_resources if unique_id.startswith('model.') -%}
        {%- set selected.models = true -%}
    {%- endfor -%}
    {%- if not execute or not selected.models -%}
        {{ return('') }}
    {%- endif -%}
    {%- set schemas = loaded_system_schemas() -%}
    {%- set wanted = [] -%}
    {%- for system, table, purpose, expression in raw_lookup_indexes() if system in schemas -%}
        {%- do wanted.append({
            'schema': schemas[system], 'table': table, 'expression': expression,
            'name': table[:24] ~ '__canon_' ~ purpose[:20] ~ '_' ~ local_md5(expression)[:8],
        }) -%}
    {%- endfor -%}
    {%- set found = run_query(
        "select n.nspname || '.' || c.relname, pg_has_role(c.relowner, 'USAGE'),"
        ~ " coalesce(string_agg(i.relname::text, ','), ''),"
        ~ " coalesce(s.last_analyze, s.last_autoanalyze) is null"
        ~ " from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        ~ " left join pg_stat_user_tables s on s.relid = c.oid"
        ~ " left join pg_index x on x.indrelid = c.oid left join pg_class i on i.oid = x.indexrelid"
        ~ " where c.relkind = 'r' and n.nspname in ('" ~ (schemas.values() | join("', '")) ~ "')"
        ~ " group by n.nspname, c.relname, c.relowner, s.last_analyze, s.last_autoanalyze") -%}
    {%- set tables = {} -%}
    {%- for row in found.rows -%}
        {%- do tables.update({row[0]: {'may_index': row[1], 'indexes': row[2].split(',') if row[2] else [],
                                       'never_analyzed': row[3]}}) -%}
    {%- endfor -%}
    {%- set to_analyze = [] -%}
    {%- set statements = [] -%}
    {%- set missing = [] -%}
    {%- for index in wanted if (index.schema ~ '.' ~ index.table) in tables -%}
        {%- set present = tables[index.schema ~ '.' ~ index.table] -%}
        {%- if index.name not in present.indexes -%}
            {%- if present.may_index -%}
                {%- do statements.append("create index if not exists " ~ index.name ~ " on " ~ index.schema ~ "."
                                         ~ index.table ~ " ((" ~ index.expression ~ "))") -%}
                {%- do to_analyze.append(index.schema ~ "." ~ index.table) -%}
            {%- else -%}
                {%- do missing.append(index.schema ~ "." ~ index.table ~ " (" ~ index.name ~ ")") -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {%- for index in wanted if (index.schema ~ '.' ~ index.table) in tables -%}
        {%- set present = tables[index.schema ~ '.' ~ index.table] -%}
        {%- if present.may_index and present.never_analyzed -%}
            {%- do to_analyze.append(index.schema ~ "." ~ index.table) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set wanted_names = wanted | map(attribute='name') | list -%}
    {%- for qualified, present in tables.items() if present.may_index -%}
        {%- for stale in present.indexes if '__canon_' in stale and stale not in wanted_names -%}
            {%- do statements.append("drop index if exists " ~ qualified.split('.')[0] ~ "." ~ stale) -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- if missing -%}
        {{ log("The canonical layer's refresh reads these raw tables without its lookup indexes (the warehouse "
               ~ "role does not own them; their owner can create them by running a build): "
               ~ (missing | join(', ')), info=True) }}
    {%- endif -%}
    {%- for table in to_analyze | unique -%}
        {%- do statements.append("analyze " ~ table) -%}
    {%- endfor -%}
    {%- for statement in statements %}
do $index$
begin
    perform set_config('lock_timeout', '10s', true);
    {{ statement }};
exception when lock_not_available or insufficient_privilege or duplicate_table or unique_violation then
    raise notice 'raw lookup index not changed: %', sqlerrm;
end
$index$;
    {%- endfor %}
{%- endmacro %}
