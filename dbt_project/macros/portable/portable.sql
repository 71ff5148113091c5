{#- Adapter-dispatched SQL for what dbt's cross-database macros (dbt.dateadd, dbt.datediff,
    dbt.date_trunc, dbt.type_*) do not cover, so the same models build on DuckDB (embedded mode) and
    on PostgreSQL (a warehouse that scales beyond one process; tests/dbt/test_portable_postgres.py
    builds the project there). The duckdb__ versions render exactly the SQL the models used before
    they were made portable, so the embedded build is unchanged. To add an engine (Trino, Spark),
    add `<adapter>__` implementations here; the README's "Portable dbt project" says which. -#}

{#- A 64-bit float column type. dbt.type_float() is not it: on DuckDB it renders FLOAT, a 32-bit REAL. -#}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double')()) }}
{%- endmacro %}

{% macro default__type_double() -%}
    double precision
{%- endmacro %}

{% macro duckdb__type_double() -%}
    double
{%- endmacro %}

{#- round(x, digits) for a float or decimal x. PostgreSQL has round(numeric, int) only, so the value
    becomes numeric first (float8 -> numeric keeps 15 significant digits: exact at cents). -#}
{% macro round_to(x, digits) -%}
    {{ return(adapter.dispatch('round_to')(x, digits)) }}
{%- endmacro %}

{% macro default__round_to(x, digits) -%}
    round(cast({{ x }} as numeric), {{ digits }})
{%- endmacro %}

{% macro duckdb__round_to(x, digits) -%}
    round({{ x }}, {{ digits }})
{%- endmacro %}

{#- exp(x) that returns 0 instead of failing when the result underflows: PostgreSQL raises "value out
    of range: underflow" for exp(-800.0) on a float, where DuckDB returns 0. Clamping at -745 changes
    nothing above 5e-324, the smallest double. -#}
{% macro exp_safe(x) -%}
    {{ return(adapter.dispatch('exp_safe')(x)) }}
{%- endmacro %}

{% macro default__exp_safe(x) -%}
    exp(greatest({{ x }}, -745.0))
{%- endmacro %}

{% macro duckdb__exp_safe(x) -%}
    exp({{ x }})
{%- endmacro %}

{#- Hex SHA-256 of a text expression (pseudonymisation). No cross-database macro exists: dbt.hash
    is MD5. Engines without an implementation here fail at compile time rather than hash differently. -#}
{% macro sha256_hex(text_expression) -%}
    {{ return(adapter.dispatch('sha256_hex')(text_expression)) }}
{%- endmacro %}

{% macro default__sha256_hex(text_expression) -%}
    {{ exceptions.raise_compiler_error(
        "sha256_hex: no implementation for adapter '" ~ adapter.type() ~ "' (add " ~ adapter.type()
        ~ "__sha256_hex in macros/portable/portable.sql)"
    ) }}
{%- endmacro %}

{% macro duckdb__sha256_hex(text_expression) -%}
    sha256({{ text_expression }})
{%- endmacro %}

{% macro postgres__sha256_hex(text_expression) -%}
    encode(sha256(convert_to({{ text_expression }}, 'UTF8')), 'hex')
{%- endmacro %}

{#- A table expression with one timestamp per day from start_date to end_date (both included), for
    date spines whose bounds come from the data (dbt.date_spine needs bounds known at compile time).
    Use as `from bounds, {{ day_series('bounds.first_date', 'bounds.last_date') }} as spine (day)`. -#}
{% macro day_series(start_date, end_date) -%}
    {{ return(adapter.dispatch('day_series')(start_date, end_date)) }}
{%- endmacro %}

{% macro default__day_series(start_date, end_date) -%}
    generate_series(cast({{ start_date }} as timestamp), cast({{ end_date }} as timestamp), interval '1 day')
{%- endmacro %}

{% macro duckdb__day_series(start_date, end_date) -%}
    generate_series({{ start_date }}, {{ end_date }}, interval 1 day)
{%- endmacro %}

{#- A table expression with the integers start..stop (both included); stop may reference earlier
    tables of the FROM clause. Use as `cross join {{ integer_series(0, 'n') }} as offsets (n)`. -#}
{% macro integer_series(start, stop) -%}
    {{ return(adapter.dispatch('integer_series')(start, stop)) }}
{%- endmacro %}

{% macro default__integer_series(start, stop) -%}
    generate_series(cast({{ start }} as integer), cast({{ stop }} as integer))
{%- endmacro %}

{% macro duckdb__integer_series(start, stop) -%}
    generate_series({{ start }}, {{ stop }})
{%- endmacro %}

{#- ISO day of the week of a date, Monday = 1 .. Sunday = 7, as a bigint. -#}
{% macro iso_day_of_week(date_expression) -%}
    {{ return(adapter.dispatch('iso_day_of_week')(date_expression)) }}
{%- endmacro %}

{% macro default__iso_day_of_week(date_expression) -%}
    cast(extract(isodow from {{ date_expression }}) as bigint)
{%- endmacro %}

{% macro duckdb__iso_day_of_week(date_expression) -%}
    isodow({{ date_expression }})
{%- endmacro %}

{#- Spark (the `spark` target, Spark mode). -#}
{% macro spark__type_double() -%}
    double
{%- endmacro %}

{#- Spark rounds a double half-up through its decimal value, as DuckDB does for the cents here. -#}
{% macro spark__round_to(x, digits) -%}
    round({{ x }}, {{ digits }})
{%- endmacro %}

{#- Java's exp underflows to 0, as DuckDB's does. -#}
{% macro spark__exp_safe(x) -%}
    exp({{ x }})
{%- endmacro %}

{% macro spark__sha256_hex(text_expression) -%}
    sha2({{ text_expression }}, 256)
{%- endmacro %}

{% macro spark__day_series(start_date, end_date) -%}
    lateral explode(sequence(cast({{ start_date }} as timestamp), cast({{ end_date }} as timestamp), interval 1 day))
{%- endmacro %}

{% macro spark__integer_series(start, stop) -%}
    lateral explode(sequence(cast({{ start }} as bigint), cast({{ stop }} as bigint)))
{%- endmacro %}

{#- weekday(): Monday = 0 .. Sunday = 6. -#}
{% macro spark__iso_day_of_week(date_expression) -%}
    cast(weekday({{ date_expression }}) + 1 as bigint)
{%- endmacro %}

{#- A timestamp below every real one (a watermark before anything was audited). -#}
{% macro lowest_timestamp() -%}
    {{ return(adapter.dispatch('lowest_timestamp')()) }}
{%- endmacro %}

{% macro default__lowest_timestamp() -%}
    cast('-infinity' as timestamp)
{%- endmacro %}

{#- Spark has no infinite timestamps (and, with ANSI mode off as dbt-spark sets it, would cast the
    text to null, which compares as unknown: no row would be tested). -#}
{% macro spark__lowest_timestamp() -%}
    timestamp '0001-01-01 00:00:00'
{%- endmacro %}

{#- Several statements as one hook: joined with `;` where the connection runs a script in one call
    (DuckDB, PostgreSQL); run one by one on Spark, whose Thrift server takes one statement per call,
    leaving nothing for the hook (dbt skips a hook that renders empty). -#}
{% macro statements_in_one_hook(statements) -%}
    {{ return(adapter.dispatch('statements_in_one_hook')(statements)) }}
{%- endmacro %}

{% macro default__statements_in_one_hook(statements) -%}
    {{ return(statements | join(';\n') ~ (';' if statements else '')) }}
{%- endmacro %}

{% macro spark__statements_in_one_hook(statements) -%}
    {%- if execute -%}
        {%- for statement in statements -%}
            {%- do run_query(statement) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return('') }}
{%- endmacro %}

{#- A bucket number in [0, n) from a hash of `expression` (to split one large aggregate into n). -#}
{% macro hash_bucket(expression, n) -%}
    {{ return(adapter.dispatch('hash_bucket')(expression, n)) }}
{%- endmacro %}

{% macro default__hash_bucket(expression, n) -%}
    mod(abs(hashtext(cast({{ expression }} as text))), {{ n }})
{%- endmacro %}

{% macro duckdb__hash_bucket(expression, n) -%}
    hash({{ expression }}) % {{ n }}
{%- endmacro %}

{% macro spark__hash_bucket(expression, n) -%}
    pmod(hash({{ expression }}), {{ n }})
{%- endmacro %}
