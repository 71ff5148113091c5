{#- Models land in plain schemas (staging, intermediate, marts) rather than dbt's default
    "<target schema>_<custom schema>", so dashboards and gates name them the same on every target. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
