{#- Rows for which `expression` is not true (money identities, ordering of dates...). -#}
{% test expression_is_true(model, expression) %}
select *
from {{ model }}
where not coalesce(({{ expression }}), false)
{% endtest %}
