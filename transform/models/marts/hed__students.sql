{#- One row per student: their latest record (by last_updated_at, ties broken by the highest
    record_id, as the preview's worklist picks it), with how many records they have and when
    the first and last were updated.

    Incremental: a build recomputes, from all of their records, every student whose
    signature (record count, newest _fivetran_synced) differs from the row this table holds,
    or who has no row yet. A sync that updates, adds, moves (to another student) or
    soft-deletes a record changes the signature of every student it touches, so the build
    gives the rows a full rebuild would; the post-hook removes students left with no record.
    The signatures are one aggregate over the records; only touched students are ranked
    again. delete+insert is the strategy DuckDB, Postgres and Snowflake all support. -#}
{{
    config(
        materialized='incremental',
        unique_key='student_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        post_hook=[
            "delete from {{ this }} where student_id not in ("
            ~ "select student_id from {{ ref('stg_hed__records') }} "
            ~ "where student_id is not null)"
        ],
    )
}}

with records as (

    select * from {{ ref('stg_hed__records') }}
    where student_id is not null

),

{% if hed_is_incremental() %}

signatures as (

    select student_id, count(*) as record_count, max(_fivetran_synced) as last_synced_at
    from records
    group by student_id

),

touched_students as (

    select signatures.student_id
    from signatures
    left join {{ this }} as previous
        on signatures.student_id = previous.student_id
    where previous.student_id is null
        or previous.record_count <> signatures.record_count
        or previous.last_synced_at is distinct from signatures.last_synced_at

),

scoped as (

    select records.*
    from records
    inner join touched_students
        on records.student_id = touched_students.student_id

),

{% else %}

scoped as (

    select * from records

),

{% endif %}

ranked as (

    select
        scoped.*,
        row_number() over (
            partition by student_id
            order by last_updated_at desc nulls last, record_id desc
        ) as recency_rank
    from scoped

),

history as (

    select
        student_id,
        count(*) as record_count,
        min(last_updated_at) as first_seen_at,
        max(last_updated_at) as last_seen_at,
        max(_fivetran_synced) as last_synced_at
    from scoped
    group by student_id

)

select
    ranked.student_id,
    ranked.record_id as latest_record_id,
    ranked.academic_standing,
    ranked.major_code,
    ranked.advisor_id,
    ranked.enrolled_at,
    ranked.last_login_at,
    ranked.last_updated_at,
    ranked.current_gpa,
    ranked.avg_assignment_score,
    ranked.course_completion_rate,
    ranked.writing_quality_score,
    ranked.engagement_score,
    ranked.credit_hours_attempted,
    ranked.credit_hours_earned,
    ranked.total_course_views,
    ranked.assignment_submissions,
    ranked.discussion_posts,
    ranked.plagiarism_incidents,
    ranked.intervention_count,
    ranked.is_at_risk,
    ranked.financial_aid_amount,
    ranked.has_invalid_values,
    history.record_count,
    history.first_seen_at,
    history.last_seen_at,
    history.last_synced_at
from ranked
inner join history
    on ranked.student_id = history.student_id
where ranked.recency_rank = 1
