{#- The advisors' worklist: students whose latest record is flagged at risk, with
    priority_rank 1 for the lowest GPA (then the lowest engagement, then student_id), the
    order the StudentSuccess preview lists them in. A table rebuilt from hed__students:
    small, and a rank cannot be kept right incrementally. -#}
select
    student_id,
    major_code,
    advisor_id,
    academic_standing,
    current_gpa,
    engagement_score,
    intervention_count,
    last_login_at,
    last_updated_at,
    row_number() over (
        order by current_gpa asc nulls last, engagement_score asc nulls last, student_id
    ) as priority_rank
from {{ ref('hed__students') }}
where is_at_risk
