{#- Fails with every row for which `expression` is false (a row-level rule). -#}
{% test expression_is_true(model, expression) %}
SELECT *
FROM {{ model }}
WHERE NOT ({{ expression }})
{% endtest %}
