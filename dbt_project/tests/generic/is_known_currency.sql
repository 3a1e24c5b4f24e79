{#- Every currency code is in the `currencies` seed (without it, no exponent and no exact conversion). -#}
{% test is_known_currency(model, column_name) %}
select distinct {{ column_name }} as unknown_currency
from {{ model }}
where {{ column_name }} is not null
  and {{ column_name }} not in (select currency_code from {{ ref('currencies') }})
{% endtest %}
