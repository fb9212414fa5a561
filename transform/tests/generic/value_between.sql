{#- Rows whose value lies outside [min_value, max_value]; NULLs pass (not_null says those).
    A small generic test of our own, so the project needs no dbt package (no `dbt deps`,
    which would need the network). -#}
{% test value_between(model, column_name, min_value, max_value) %}
select {{ column_name }} as out_of_range_value
from {{ model }}
where {{ column_name }} < {{ min_value }} or {{ column_name }} > {{ max_value }}
{% endtest %}
