{#- Keyed hash of a personal identifier: stable for joins and counts, useless without the key.
    The key comes from the environment (PII_HASH_KEY), never from git, and never into the SQL:
    pii_hash_key() reads it from the connection at run time (a DuckDB variable set by
    plugins/pii_key.py, a PostgreSQL setting passed in PGOPTIONS), so compiled SQL, dbt's
    artifacts and logs and the warehouse's view definitions hold only its name. The hash is
    adapter-dispatched (macros/portable): the same input gives the same hex digest on every engine. -#}
{% macro pseudonymise(column) -%}
    {{ sha256_hex("concat(" ~ pii_hash_key() ~ ", '|', lower(trim(cast(" ~ column ~ " as " ~ dbt.type_string() ~ "))))") }}
{%- endmacro %}

{% macro pii_hash_key() -%}
    {{ return(adapter.dispatch('pii_hash_key')()) }}
{%- endmacro %}

{% macro default__pii_hash_key() -%}
    {{ exceptions.raise_compiler_error(
        "pii_hash_key: no implementation for adapter '" ~ adapter.type() ~ "' (add "
        ~ adapter.type() ~ "__pii_hash_key in macros/pseudonymise.sql)"
    ) }}
{%- endmacro %}

{#- A connection without the key fails loudly instead of hashing with an empty one. -#}
{% macro duckdb__pii_hash_key() -%}
    coalesce(getvariable('pii_hash_key'), error('PII_HASH_KEY is not set on this connection (dbt sets it through plugins/pii_key.py)'))
{%- endmacro %}

{#- `current_setting` without missing_ok raises when the setting is absent. -#}
{% macro postgres__pii_hash_key() -%}
    current_setting('shop.pii_hash_key')
{%- endmacro %}

{#- The key is a session parameter of the connection (the profile's server_side_parameters), which
    Spark substitutes for ${shop.pii_hash_key} when it parses the statement. Unset, the text stays
    as written and the build fails instead of hashing with it. -#}
{% macro spark__pii_hash_key() -%}
    case
        when '${shop.pii_hash_key}' in ('', concat('$', '{shop.pii_hash_key}'))
            then raise_error('PII_HASH_KEY is not set on this connection (the spark target passes it as shop.pii_hash_key)')
        else '${shop.pii_hash_key}'
    end
{%- endmacro %}
