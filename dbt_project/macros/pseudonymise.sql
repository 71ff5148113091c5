{#- Keyed hash of a personal identifier: stable for joins and counts, useless without the key.
    The key comes from the environment (PII_HASH_KEY), never from git. The hash is adapter-dispatched
    (macros/portable): the same input gives the same hex digest on every engine. -#}
{% macro pseudonymise(column) -%}
    {{ sha256_hex("concat('" ~ env_var("PII_HASH_KEY") ~ "', '|', lower(trim(cast(" ~ column ~ " as varchar))))") }}
{%- endmacro %}
