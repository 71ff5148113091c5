{#- Normal-distribution helpers for the A/B test marts, in plain SQL (DuckDB has no erf or normal CDF).

    erfc(x) uses the Chebyshev fit of Press et al., Numerical Recipes (2nd ed., section 6.2, `erfcc`):
    its *relative* error is below 1.2e-7 for every x. Relative (not absolute) accuracy matters here:
    p-values of a strong effect are tiny (1e-12 and below), and an absolute-error approximation such as
    Abramowitz-Stegun 7.1.26 (|error| <= 1.5e-7) would turn them into noise. tests/dbt checks the macros
    against scipy over a grid of z and on the experiment rows; `assert_erfc_matches_reference_values`
    checks known values on every build.

    The argument is expanded several times: pass a column or a simple expression. -#}

{% macro erfc(x) -%}
    (
        case when ({{ x }}) >= 0 then 1.0 else -1.0 end
        * {{ _erfc_abs('abs(' ~ x ~ ')') }}
        + case when ({{ x }}) >= 0 then 0.0 else 2.0 end
    )
{%- endmacro %}

{#- erfc(t) for t >= 0; erfc(-t) = 2 - erfc(t). In doubles whatever t is: Spark types a literal
    like 0.5 as a DECIMAL, and a decimal t would keep the whole fit in decimal arithmetic, which
    rounds its intermediate results to 6 places (a relative error of 1e-6 at erfc(1)). -#}
{% macro _erfc_abs(t) -%}
    {%- set t = 'cast(' ~ t ~ ' as ' ~ type_double() ~ ')' -%}
    {#- the exponent of the fit; exp_safe (macros/portable) because PostgreSQL fails on an underflow -#}
    {%- set exponent -%}
            -({{ t }}) * ({{ t }}) - 1.26551223
            + (1.0 / (1.0 + 0.5 * {{ t }})) * (1.00002368
            + (1.0 / (1.0 + 0.5 * {{ t }})) * (0.37409196
            + (1.0 / (1.0 + 0.5 * {{ t }})) * (0.09678418
            + (1.0 / (1.0 + 0.5 * {{ t }})) * (-0.18628806
            + (1.0 / (1.0 + 0.5 * {{ t }})) * (0.27886807
            + (1.0 / (1.0 + 0.5 * {{ t }})) * (-1.13520398
            + (1.0 / (1.0 + 0.5 * {{ t }})) * (1.48851587
            + (1.0 / (1.0 + 0.5 * {{ t }})) * (-0.82215223
            + (1.0 / (1.0 + 0.5 * {{ t }})) * 0.17087277))))))))
    {%- endset -%}
    (
        (1.0 / (1.0 + 0.5 * {{ t }}))
        * {{ exp_safe(exponent) }}
    )
{%- endmacro %}

{#- Standard normal CDF: P(Z <= x) = erfc(-x / sqrt 2) / 2. -#}
{% macro normal_cdf(x) -%}
    (0.5 * {{ erfc('-(' ~ x ~ ') / sqrt(2.0)') }})
{%- endmacro %}

{#- Two-sided p-value of a z statistic: P(|Z| >= |z|) = erfc(|z| / sqrt 2), capped at 1 (the fit
    gives 1 + 3e-8 at z = 0). -#}
{% macro two_sided_p_value(z) -%}
    least(1.0, {{ _erfc_abs('abs(' ~ z ~ ') / sqrt(2.0)') }})
{%- endmacro %}

{#- Upper tail of a chi-square statistic with one degree of freedom: P(X >= x) = erfc(sqrt(x / 2)). -#}
{% macro chi_square_1df_p_value(x) -%}
    least(1.0, {{ _erfc_abs('sqrt((' ~ x ~ ') / 2.0)') }})
{%- endmacro %}

{#- z quantile for a two-sided confidence level (0.95 -> 1.959963984540054). Only the levels we
    publish are listed: an unknown level is a compile error rather than a silently wrong interval. -#}
{% macro z_for_confidence(level) -%}
    {%- set quantiles = {0.9: 1.6448536269514722, 0.95: 1.959963984540054, 0.99: 2.5758293035489004} -%}
    {%- if level not in quantiles -%}
        {{ exceptions.raise_compiler_error("z_for_confidence: no quantile for level " ~ level) }}
    {%- endif -%}
    {{ quantiles[level] }}
{%- endmacro %}
