{#- Fails with every row whose `column_name` is outside [min_value, max_value]. -#}
{% test between(model, column_name, min_value, max_value) %}
SELECT *
FROM {{ model }}
WHERE NOT ({{ column_name }} BETWEEN {{ min_value }} AND {{ max_value }})
{% endtest %}
