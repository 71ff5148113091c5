{#- Keyed hash of a personal identifier: stable for joins and counts, useless without the key.
    The key comes from the environment (PII_HASH_KEY), never from git. -#}
{% macro pseudonymise(column) -%}
    sha256(concat('{{ env_var("PII_HASH_KEY") }}', '|', lower(trim(cast({{ column }} as varchar)))))
{%- endmacro %}
