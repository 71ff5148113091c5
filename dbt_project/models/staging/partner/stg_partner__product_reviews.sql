-- One row per product review, from the latest file that carried it. The reviewer's e-mail is
-- pseudonymised (keyed hash, joins to stg_shop__customers.email_hash); the free text, which may
-- name people, is dropped: only whether there was one is kept.
with

source as (
    select *
    from {{ partner_source('partner_product_reviews', {
        'review_id': 'varchar', 'sku': 'varchar', 'rating': 'bigint', 'review_date': 'date',
        'reviewer_email': 'varchar', 'review_text': 'varchar',
        '_file_sha256': 'varchar', '_file_name': 'varchar', '_file_row': 'bigint',
        '_ds': 'date', '_run_id': 'varchar', '_loaded_at': 'timestamp'
    }) }}
),

ranked as (
    select
        *,
        row_number() over (partition by review_id order by _ds desc, _file_row desc) as version_rank
    from source
),

latest as (
    select * from ranked
    where version_rank = 1
),

renamed as (
    select
        review_id,
        sku,
        rating,
        review_date,
        {{ pseudonymise('reviewer_email') }} as reviewer_email_hash,
        coalesce(length(trim(review_text)) > 0, false) as has_review_text,
        _ds as file_date,
        _file_sha256 as file_sha256,
        _loaded_at as loaded_at
    from latest
)

select * from renamed
