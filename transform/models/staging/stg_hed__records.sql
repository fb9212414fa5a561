{#- One row per live HED record, named per Fivetran's conventions: `is_`/`has_` booleans,
    `_at` timestamps. Soft-deleted rows are left out here, so no mart counts them. A view:
    it always shows what the connector last wrote. -#}
with source as (

    select * from {{ source('hed', 'hed_records') }}

)

select
    record_id,
    student_id,
    academic_standing,
    major_code,
    advisor_id,
    cast(enrollment_date as {{ dbt.type_timestamp() }}) as enrolled_at,
    cast(last_login_date as {{ dbt.type_timestamp() }}) as last_login_at,
    cast(last_updated as {{ dbt.type_timestamp() }}) as last_updated_at,
    current_gpa,
    avg_assignment_score,
    course_completion_rate,
    writing_quality_score,
    engagement_score,
    credit_hours_attempted,
    credit_hours_earned,
    total_course_views,
    assignment_submissions,
    discussion_posts,
    plagiarism_incidents,
    intervention_count,
    at_risk_flag as is_at_risk,
    financial_aid_amount,
    _hed_invalid_values as invalid_values,
    _hed_invalid_values is not null as has_invalid_values,
    _fivetran_synced
from source
where not coalesce(_fivetran_deleted, false)
