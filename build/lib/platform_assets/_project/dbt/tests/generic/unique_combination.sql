{#- Fails with every combination of `columns` that occurs more than once (a grain check). -#}
{% test unique_combination(model, columns, column_name=None) %}
SELECT {{ columns | join(', ') }}, count() AS n
FROM {{ model }}
GROUP BY {{ columns | join(', ') }}
HAVING n > 1
{% endtest %}
