"""The StudentSuccess preview page. `./student_success.sh` serves it; see its --help.

What advisors see in the Streamlit in Snowflake app (the Metrics and Data Explorer tabs of
the hands-on lab), drawn from the local debug sync's warehouse instead of Snowflake, plus an
at-risk worklist and a data-quality panel. Reads the DuckDB file named by STUDENT_SUCCESS_DB
(default: files/warehouse.db). Every query lives in `warehouse`; this file only draws.
"""

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

# Streamlit runs this file as a script with only its own folder on sys.path; the repository
# root goes first so that `student_success` and `devkit` import as packages.
REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import pandas as pd  # noqa: E402 - needs the sys.path entry above
import streamlit as st  # noqa: E402

from student_success import charts, warehouse  # noqa: E402

DATABASE_VARIABLE = "STUDENT_SUCCESS_DB"
EXPLORER_PAGE_KEY = "explorer_page"
TAB_NAMES = ("Metrics", "At-risk worklist", "Data quality", "Data explorer")
NOT_TRACKED = "not tracked"
# A grid draws on a canvas, which cannot be taller than the browser allows: longer worklists
# scroll inside a grid of this height instead of growing the page.
FULL_HEIGHT_ROWS = 100
SCROLLING_GRID_PX = 700
WORKLIST_COLUMN_CONFIG = {
    "student_id": st.column_config.TextColumn("Student"),
    "major_code": st.column_config.TextColumn("Major"),
    "advisor_id": st.column_config.TextColumn("Advisor"),
    "academic_standing": st.column_config.TextColumn("Standing"),
    "current_gpa": st.column_config.NumberColumn("GPA", format="%.2f"),
    "engagement_score": st.column_config.ProgressColumn(
        "Engagement", min_value=0, max_value=100, format="%.1f"
    ),
    "intervention_count": st.column_config.NumberColumn("Interventions"),
    "last_login_date": st.column_config.DatetimeColumn("Last login", format="YYYY-MM-DD"),
    "last_updated": st.column_config.DatetimeColumn("Last updated", format="YYYY-MM-DD HH:mm"),
}


@dataclass(frozen=True)
class Tile:
    """A KPI tile: which figure, how it reads, and its target."""

    label: str
    field: str  # of warehouse.Kpis
    value_format: str
    target: float
    gap_format: str  # with {gap} and {target}
    gap_scale: int = 1  # 100 for shares: their gap reads in percentage points
    lower_is_better: bool = False


KPI_TILES = (
    Tile(
        "Average GPA",
        "avg_gpa",
        "{:.2f}",
        warehouse.GPA_TARGET,
        "{gap:+.2f} vs {target:.1f} target",
    ),
    Tile(
        "Average completion rate",
        "avg_completion",
        "{:.1%}",
        warehouse.COMPLETION_TARGET,
        "{gap:+.1f} pts vs {target:.0%} target",
        gap_scale=100,
    ),
    Tile(
        "Average engagement score",
        "avg_engagement",
        "{:.1f}",
        warehouse.ENGAGEMENT_TARGET,
        "{gap:+.1f} vs {target:.0f} target",
    ),
    Tile(
        "At-risk share",
        "at_risk_share",
        "{:.1%}",
        warehouse.AT_RISK_BASELINE,
        "{gap:+.1f} pts vs {target:.0%} baseline",
        gap_scale=100,
        lower_is_better=True,
    ),
)


def warehouse_path() -> Path:
    return Path(os.environ.get(DATABASE_VARIABLE) or warehouse.DEFAULT_WAREHOUSE)


def format_moment(moment: datetime | None) -> str:
    """A timestamp to the second; an aware one converted to UTC."""
    if moment is None:
        return "none"
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return f"{moment:%Y-%m-%d %H:%M:%S}"


def format_sync_time(moment: datetime | None) -> str:
    return "unknown" if moment is None else f"{format_moment(moment)} UTC"


def show_unavailable(problem: warehouse.UnavailableError) -> None:
    """One clear message per state, never a traceback."""
    if problem.state == "locked":
        st.warning(problem.message, icon=":material/lock:")
        st.button("Check again")
    elif problem.state in ("missing", "no table", "empty"):
        st.info(problem.message, icon=":material/info:")
    else:
        st.error(problem.message, icon=":material/error:")


def show_header(path: Path, dashboard: warehouse.Dashboard) -> None:
    figures = dashboard.quality
    st.caption(
        f"Local preview of {warehouse.shown_path(path)} ({warehouse.RECORDS_NAME}, read-only): "
        f"{figures.rows:,} records of {figures.students:,} students, last synced "
        f"{format_sync_time(figures.last_synced)}. The Snowflake app's AI Insights tab "
        "(Cortex) has no local equivalent."
    )
    if dashboard.marts_note:
        st.info(dashboard.marts_note, icon=":material/info:")
    else:
        st.caption(
            "KPI tiles and the at-risk worklist: from the dbt models "
            f"{warehouse.MARTS_SCHEMA}.{warehouse.KPI_MART} and "
            f"{warehouse.MARTS_SCHEMA}.{warehouse.WORKLIST_MART} ({warehouse.BUILD_COMMAND})."
        )


def show_kpis(kpis: warehouse.Kpis) -> None:
    for column, tile in zip(st.columns(len(KPI_TILES)), KPI_TILES, strict=True):
        with column:
            show_kpi(tile, getattr(kpis, tile.field))


def show_kpi(tile: Tile, value: float | None) -> None:
    """A tile with its value and the gap to its target (green on the good side)."""
    if value is None:
        st.metric(tile.label, "n/a", border=True, help="No record has a value for this column.")
        return
    gap = (value - tile.target) * tile.gap_scale
    st.metric(
        tile.label,
        tile.value_format.format(value),
        tile.gap_format.format(gap=gap, target=tile.target),
        delta_color="inverse" if tile.lower_is_better else "normal",
        border=True,
    )


def show_chart(title: str, frame: pd.DataFrame, draw: Callable, note: str | None = None) -> None:
    """A bordered card: the title, the chart (or why there is none) and an optional note."""
    with st.container(border=True):
        st.markdown(f"##### {title}")
        if frame.empty:
            st.caption("No values to draw.")
            return
        st.altair_chart(draw(frame), alt=title)
        if note:
            st.caption(note)


def scatter_note(dashboard: warehouse.Dashboard) -> str | None:
    shown, total = len(dashboard.aid_vs_gpa), dashboard.aid_vs_gpa_total
    return None if shown == total else f"A random sample of {shown:,} of {total:,} records."


def show_metrics(dashboard: warehouse.Dashboard) -> None:
    show_kpis(dashboard.kpis)
    left, right = st.columns(2)
    with left:
        show_chart("GPA distribution", dashboard.gpa_histogram, charts.gpa_histogram)
        show_chart(
            "Average completion rate by enrollment month",
            dashboard.completion_by_month,
            charts.completion_by_month,
        )
        show_chart(
            "Financial aid vs GPA, by engagement",
            dashboard.aid_vs_gpa,
            charts.aid_vs_gpa,
            scatter_note(dashboard),
        )
    with right:
        show_chart(
            "Engagement score by academic standing",
            dashboard.engagement_by_standing,
            charts.engagement_by_standing,
        )
        show_chart("At risk vs not at risk", dashboard.at_risk_split, charts.at_risk_split)
        show_chart("Average GPA by major", dashboard.gpa_by_major, charts.gpa_by_major)
    st.subheader("Summary statistics")
    st.dataframe(
        dashboard.summary,
        height="content",
        column_config={
            name: st.column_config.NumberColumn(format="%.2f")
            for name in dashboard.summary.columns
            if name != "count"
        },
    )


def show_worklist(dashboard: warehouse.Dashboard) -> None:
    st.subheader("At-risk worklist")
    st.caption(
        "Students whose latest record (by last_updated) is flagged at risk, lowest GPA first."
    )
    advisor_column, major_column = st.columns(2)
    advisors = advisor_column.multiselect(
        "Advisor", dashboard.advisors, key="worklist_advisors", placeholder="All advisors"
    )
    majors = major_column.multiselect(
        "Major", dashboard.majors, key="worklist_majors", placeholder="All majors"
    )
    rows = warehouse.filter_worklist(dashboard.worklist, advisors, majors)
    st.caption(f"{len(rows):,} of {len(dashboard.worklist):,} at-risk students shown.")
    if rows.empty:
        st.info("No at-risk students for this selection.")
        return
    height = "content" if len(rows) <= FULL_HEIGHT_ROWS else SCROLLING_GRID_PX
    st.dataframe(rows, hide_index=True, column_config=WORKLIST_COLUMN_CONFIG, height=height)


def quality_by_column(dashboard: warehouse.Dashboard) -> pd.DataFrame:
    """Type, nulls and (when tracked) invalid values of every data column."""
    figures = dashboard.quality
    frame = pd.DataFrame(
        {
            "Column": list(figures.nulls),
            "Type": [dashboard.column_types.get(name, "") for name in figures.nulls],
            "Nulls": list(figures.nulls.values()),
        }
    )
    if figures.invalid is not None:
        frame["Invalid values"] = [figures.invalid.get(name, 0) for name in figures.nulls]
    return frame


def show_quality(dashboard: warehouse.Dashboard) -> None:
    figures = dashboard.quality
    st.subheader("Data quality")
    rows, students, invalid, rejected = st.columns(4)
    rows.metric("Rows", f"{figures.rows:,}", border=True)
    students.metric(
        "Distinct students",
        NOT_TRACKED if figures.students is None else f"{figures.students:,}",
        border=True,
    )
    invalid.metric(
        "Invalid values",
        NOT_TRACKED if figures.invalid is None else f"{figures.invalid_total:,}",
        border=True,
        help="Values the connector could not convert: kept raw in _hed_invalid_values.",
    )
    rejected.metric(
        "Rejected records",
        NOT_TRACKED if figures.rejected is None else f"{figures.rejected_total:,}",
        border=True,
        help=f"Items without a usable record_id, kept in {warehouse.REJECTED_NAME}.",
    )
    low, high = figures.last_updated
    st.markdown(
        f"**last_updated range:** {format_moment(low)} to {format_moment(high)}  \n"
        f"**Last sync:** {format_sync_time(figures.last_synced)} (latest _fivetran_synced)"
    )
    show_quality_details(dashboard)


def show_quality_details(dashboard: warehouse.Dashboard) -> None:
    figures = dashboard.quality
    by_column, by_reason = st.columns([3, 2])
    with by_column:
        st.markdown("**Nulls and invalid values by column**")
        if figures.invalid is None:
            st.caption(
                "Invalid values: not tracked (this warehouse has no _hed_invalid_values "
                "column; an older connector wrote it)."
            )
        else:
            st.caption("A value that did not convert is NULL, so it counts under both.")
        st.table(quality_by_column(dashboard).set_index("Column"))
    with by_reason:
        st.markdown("**Rejected records by reason**")
        if figures.rejected is None:
            st.caption(
                f"Not tracked: this warehouse has no {warehouse.REJECTED_NAME} table (an older "
                "connector wrote it)."
            )
        elif not figures.rejected:
            st.caption("None: every item the API served had a usable record_id.")
        else:
            reasons = pd.DataFrame(
                {"Reason": list(figures.rejected), "Records": list(figures.rejected.values())}
            )
            st.table(reasons.set_index("Reason"))


def show_explorer(dashboard: warehouse.Dashboard) -> None:
    st.subheader("Data explorer")
    first = (dashboard.explorer_page - 1) * warehouse.EXPLORER_PAGE_ROWS + 1
    last = first + len(dashboard.explorer_rows) - 1
    st.caption(
        f"Records {first:,} to {last:,} of {dashboard.quality.rows:,}, latest last_updated first."
    )
    st.dataframe(dashboard.explorer_rows, hide_index=True, height="content")
    if st.session_state.get(EXPLORER_PAGE_KEY, 1) != dashboard.explorer_page:
        st.session_state[EXPLORER_PAGE_KEY] = dashboard.explorer_page  # the table shrank
    st.pagination(dashboard.explorer_pages, key=EXPLORER_PAGE_KEY)


def main() -> None:
    st.set_page_config(
        page_title="StudentSuccess preview", page_icon=":material/school:", layout="wide"
    )
    st.title("StudentSuccess")
    path = warehouse_path()
    try:
        dashboard = warehouse.read_dashboard(path, st.session_state.get(EXPLORER_PAGE_KEY, 1))
    except warehouse.UnavailableError as problem:
        show_unavailable(problem)
        return
    show_header(path, dashboard)
    metrics, worklist, quality, explorer = st.tabs(TAB_NAMES)
    with metrics:
        show_metrics(dashboard)
    with worklist:
        show_worklist(dashboard)
    with quality:
        show_quality(dashboard)
    with explorer:
        show_explorer(dashboard)


main()
