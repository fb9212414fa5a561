{#- Cohorts by enrollment term (Spring: January to May, Summer: June and July, Fall: August
    to December), from each student's latest record: size, how many are retained and at
    risk, and their averages. Retained: the latest record shows a login within
    hed_retention_window_days of the latest update in the data, an as-of date taken from
    the data so that every rebuild of the same data agrees. -#}
with students as (

    select * from {{ ref('hed__students') }}
    where enrolled_at is not null

),

as_of as (

    select max(last_updated_at) as as_of_at from {{ ref('hed__students') }}

),

termed as (

    select
        students.*,
        extract(year from enrolled_at) as enrollment_year,
        case
            when extract(month from enrolled_at) <= 5 then 'Spring'
            when extract(month from enrolled_at) <= 7 then 'Summer'
            else 'Fall'
        end as enrollment_season,
        case
            when last_login_at >= {{ dbt.dateadd(
                'day', -var('hed_retention_window_days'), 'as_of.as_of_at'
            ) }} then 1
            else 0
        end as is_retained_number
    from students
    cross join as_of

)

select
    {{ dbt.concat([
        'cast(cast(enrollment_year as integer) as ' ~ dbt.type_string() ~ ')',
        "' '",
        'enrollment_season',
    ]) }} as enrollment_term,
    cast(enrollment_year as integer) as enrollment_year,
    enrollment_season,
    min({{ dbt.date_trunc('month', 'enrolled_at') }}) as term_started_at,
    count(*) as student_count,
    sum(is_retained_number) as retained_student_count,
    avg(1.0 * is_retained_number) as retention_rate,
    sum(case when is_at_risk then 1 else 0 end) as at_risk_student_count,
    avg(current_gpa) as avg_gpa,
    avg(course_completion_rate) as avg_completion_rate,
    avg(credit_hours_earned) as avg_credit_hours_earned
from termed
group by enrollment_year, enrollment_season
