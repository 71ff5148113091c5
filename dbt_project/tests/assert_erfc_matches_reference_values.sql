-- Fails when the erfc / p-value macros drift from reference values of the complementary error
-- function (computed with scipy.special.erfc) by more than their documented relative error
-- (1.2e-7), e.g. after someone edits a coefficient. Every A/B p-value depends on them.
with

reference as (
    select known.*
    from (
        values
        (0.0, 1.0),
        (0.1, 0.8875370839817152),
        (0.5, 0.4795001221869535),
        (1.0, 0.15729920705028516),
        (1.5, 0.03389485352468927),
        (2.0, 0.004677734981047266),
        (3.0, 2.2090496998585445e-05),
        (4.0, 1.541725790028002e-08),
        (6.0, 2.1519736712498913e-17),
        (10.0, 2.0884875837625446e-45),
        (-0.5, 1.5204998778130465),
        (-2.0, 1.9953222650189528)
    ) as known (x, erfc_x)
),

computed as (
    select
        x,
        erfc_x,
        -- P(|Z| >= |z|) for z = x * sqrt(2) is erfc(|x|) = 2 - erfc(x) for negative x, capped at 1
        least(1.0, case when x >= 0 then erfc_x else 2 - erfc_x end) as p_value,
        {{ erfc('x') }} as macro_erfc_x,
        {{ two_sided_p_value('x * sqrt(2.0)') }} as macro_p_value,
        {{ normal_cdf('x * sqrt(2.0)') }} as macro_normal_cdf
    from reference
),

failures as (
    select *
    from computed
    where
        abs(macro_erfc_x / erfc_x - 1) > 1.2e-7
        or abs(macro_p_value / p_value - 1) > 1.2e-7
        -- the CDF is close to 1 in the upper tail: an absolute bound is the meaningful one there
        or abs(macro_normal_cdf - (1 - erfc_x / 2)) > 1.2e-7
)

select * from failures
