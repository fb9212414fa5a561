{#- The StudentSuccess app's four KPI tiles, one row: each figure beside its target, over
    every record (not every student), as the app has always computed them. An average
    leaves out records without a value (a value that did not convert is NULL). -#}
{%- set gpa_target = 3.0 -%}
{%- set completion_target = 0.85 -%}
{%- set engagement_target = 70.0 -%}
{%- set at_risk_baseline = 0.30 -%}

with records as (

    select * from {{ ref('stg_hed__records') }}

)

select
    count(*) as record_count,
    count(distinct student_id) as student_count,
    avg(current_gpa) as avg_gpa,
    {{ gpa_target }} as gpa_target,
    avg(course_completion_rate) as avg_completion_rate,
    {{ completion_target }} as completion_rate_target,
    avg(engagement_score) as avg_engagement_score,
    {{ engagement_target }} as engagement_score_target,
    avg(case when is_at_risk then 1.0 when not is_at_risk then 0.0 end) as at_risk_share,
    {{ at_risk_baseline }} as at_risk_share_baseline,
    max(_fivetran_synced) as last_synced_at
from records
