{#- One row per student: their latest record (by last_updated_at, ties broken by the highest
    record_id, as the preview's worklist picks it), with how many records they have and when
    the first and last were updated.

    Incremental: a build recomputes only the students touched since the last one, from all
    of their records (not just the changed ones), so a sync that updates an old record gives
    the same row a full rebuild would. Touched means a record of theirs was written since
    the latest _fivetran_synced this table has seen, or their latest record was (it may now
    belong to another student). delete+insert is the strategy DuckDB, Postgres and
    Snowflake all support. -#}
{{
    config(
        materialized='incremental',
        unique_key='student_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

with records as (

    select * from {{ ref('stg_hed__records') }}
    where student_id is not null

),

{% if hed_is_incremental() %}

changed_records as (

    -- >=: a row written at the very moment of the last build's newest row is taken again;
    -- recomputing a student twice is harmless, missing one is not.
    select record_id, student_id
    from records
    where _fivetran_synced >= (select max(last_synced_at) from {{ this }})

),

touched_students as (

    select student_id from changed_records
    union
    select previous.student_id
    from {{ this }} as previous
    inner join changed_records
        on previous.latest_record_id = changed_records.record_id

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
