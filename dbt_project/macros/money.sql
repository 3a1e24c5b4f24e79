{#- Money normalization: every amount in the canonical layer is an exact `numeric` in major units, at the
    currency's scale. Conversions use the exponents of the `currencies` seed, never floats. -#}

{#- An integer amount in minor units (Stripe's `amount`) -> major units. `exponent` is the number of minor
    digits the source uses (`currencies.stripe_exponent` for the payments platform: 0 for JPY, KRW, VND...).
    Division by a power of ten is exact in `numeric`; the round only fixes the scale (1050 SGD -> 10.50). -#}
{% macro minor_to_major(amount, exponent) -%}
    {{ return(adapter.dispatch('minor_to_major', 'revloop')(amount, exponent)) }}
{%- endmacro %}

{% macro default__minor_to_major(amount, exponent) -%}
    round(cast({{ amount }} as numeric) / power(cast(10 as numeric), {{ exponent }}), {{ exponent }})
{%- endmacro %}

{% macro postgres__minor_to_major(amount, exponent) -%}
    round(({{ amount }})::numeric / power(10::numeric, {{ exponent }}), {{ exponent }})
{%- endmacro %}

{#- A major-unit amount (Salesforce, the ERP) shown at the currency's scale (149000.0000000000 JPY -> 149000).
    A value with more digits than the currency allows is kept as it is rather than rounded, so a
    sub-minor-unit difference between systems stays visible instead of disappearing here. -#}
{% macro at_currency_scale(amount, exponent) -%}
    (case
        when {{ amount }} is null then null
        when {{ exponent }} is null then {{ amount }}::numeric
        when ({{ amount }})::numeric = round(({{ amount }})::numeric, {{ exponent }})
            then round(({{ amount }})::numeric, {{ exponent }})
        else ({{ amount }})::numeric
    end)
{%- endmacro %}

{#- A currency code as ISO 4217 writes it (Stripe sends `sgd`). -#}
{% macro normalize_currency(code) -%}
    upper(nullif(trim({{ code }}), ''))
{%- endmacro %}
