{#- A keyed hash of a user identifier: HMAC-SHA256(key, id), first 16 bytes as 32 hex chars,
    the same function the collector applies to actor_id (platform_assets/core/identity.py; tests/core/test_identity.py
    checks the two agree on the real ClickHouse).
    Joinable across models and sources, not reversible without the key. The key comes only
    from the environment (USER_HASH_KEY); an empty identifier stays empty (anonymous). -#}
{% macro keyed_hash(expr) -%}
    if(empty(toString({{ expr }})), '',
       lower(hex(substring(HMAC('sha256', toString({{ expr }}), {{ "'" ~ env_var('USER_HASH_KEY') ~ "'" }}), 1, 16))))
{%- endmacro %}
