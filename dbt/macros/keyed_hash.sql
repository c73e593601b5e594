{#- A keyed hash of a user identifier: 32 hex chars of SHA-256 over key || '|' || id.
    Joinable across models, not reversible without the key. The key comes only from the
    environment (USER_HASH_KEY); an empty identifier stays empty (anonymous). -#}
{% macro keyed_hash(expr) -%}
    if(empty(toString({{ expr }})), '',
       lower(hex(substring(SHA256(concat({{ "'" ~ env_var('USER_HASH_KEY') ~ "'" }}, '|', toString({{ expr }}))), 1, 16))))
{%- endmacro %}
