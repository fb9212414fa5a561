"""The six StudentSuccess charts, as Altair specifications (no Streamlit, no DuckDB).

Each takes the small, pre-aggregated frame its warehouse query returns, so a chart embeds a
few dozen rows whatever the table's size (the scatter is sampled). Titles are drawn by the
page above each chart, where a person and a screen reader both find them; a dashed rule
marks the lab app's target wherever one applies.
"""

import altair as alt
import pandas as pd

from student_success import warehouse

HEIGHT = 260
# Colours: the at-risk split uses red for at risk, teal for not, grey for no flag.
PRIMARY = "#2c7fb8"
TARGET = "#6b6b6b"
STATUS_COLOURS = {"At risk": "#d7301f", "Not at risk": "#1b9e77", "Unknown": "#9e9e9e"}
BOX_WIDTH = 36
DONUT_HOLE = 55
# Half grade points: readable at a card's width.
GPA_TICKS = [step / 2 for step in range(9)]
# Wide enough for "Academic Probation" under its box.
STANDING_LABEL_LIMIT = 200


def target_rule(channel: str, value: float, label: str) -> alt.Chart:
    """A dashed line at a target, with its value in the tooltip."""
    frame = pd.DataFrame({"target": [value], "label": [label]})
    encoding = {channel: alt.X("target:Q") if channel == "x" else alt.Y("target:Q")}
    return (
        alt.Chart(frame)
        .mark_rule(color=TARGET, strokeDash=[5, 4], strokeWidth=1.5)
        .encode(**encoding, tooltip=[alt.Tooltip("label:N", title="Target")])
    )


def gpa_histogram(frame: pd.DataFrame) -> alt.LayerChart:
    bars = (
        alt.Chart(frame)
        .mark_bar(color=PRIMARY, binSpacing=1)
        .encode(
            x=alt.X(
                "gpa_from:Q",
                bin="binned",
                title="Current GPA",
                scale=alt.Scale(domain=[0, warehouse.GPA_SCALE_MAX]),
                axis=alt.Axis(values=GPA_TICKS, format=".1f"),
            ),
            x2="gpa_to:Q",
            y=alt.Y("records:Q", title="Records"),
            tooltip=[
                alt.Tooltip("gpa_from:Q", title="GPA from", format=".2f"),
                alt.Tooltip("gpa_to:Q", title="GPA to", format=".2f"),
                alt.Tooltip("records:Q", title="Records"),
            ],
        )
    )
    target = target_rule("x", warehouse.GPA_TARGET, f"GPA {warehouse.GPA_TARGET:.1f}")
    return (bars + target).properties(height=HEIGHT)


def engagement_by_standing(frame: pd.DataFrame) -> alt.LayerChart:
    """A box plot drawn from the five-number summary (whiskers reach the min and max)."""
    order = warehouse.standing_order(list(frame["standing"]))
    x = alt.X(
        "standing:N",
        title="Academic standing",
        sort=order,
        axis=alt.Axis(labelAngle=0, labelLimit=STANDING_LABEL_LIMIT),
    )
    tooltip = [
        alt.Tooltip("standing:N", title="Standing"),
        alt.Tooltip("records:Q", title="Records"),
        alt.Tooltip("low:Q", title="Min", format=".1f"),
        alt.Tooltip("q1:Q", title="25%", format=".1f"),
        alt.Tooltip("median:Q", title="Median", format=".1f"),
        alt.Tooltip("q3:Q", title="75%", format=".1f"),
        alt.Tooltip("high:Q", title="Max", format=".1f"),
    ]
    base = alt.Chart(frame).encode(x=x, tooltip=tooltip)
    y_scale = alt.Scale(domain=[0, 100])
    whiskers = base.mark_rule(color=PRIMARY).encode(
        y=alt.Y("low:Q", title="Engagement score", scale=y_scale), y2="high:Q"
    )
    boxes = base.mark_bar(color=PRIMARY, opacity=0.75, size=BOX_WIDTH).encode(y="q1:Q", y2="q3:Q")
    medians = base.mark_tick(color="white", size=BOX_WIDTH, thickness=2).encode(y="median:Q")
    target = target_rule("y", warehouse.ENGAGEMENT_TARGET, f"{warehouse.ENGAGEMENT_TARGET:.0f}")
    return (whiskers + boxes + medians + target).properties(height=HEIGHT)


def completion_by_month(frame: pd.DataFrame) -> alt.LayerChart:
    line = (
        alt.Chart(frame)
        .mark_line(color=PRIMARY, point=alt.OverlayMarkDef(color=PRIMARY, size=50))
        .encode(
            x=alt.X(
                "enrollment_month:T",
                title="Enrollment month",
                axis=alt.Axis(format="%b %Y", labelAngle=0),
            ),
            y=alt.Y(
                "completion_rate:Q",
                title="Average completion rate",
                axis=alt.Axis(format=".0%"),
                scale=alt.Scale(zero=False),
            ),
            tooltip=[
                alt.Tooltip("enrollment_month:T", title="Enrolled", format="%B %Y"),
                alt.Tooltip("completion_rate:Q", title="Completion", format=".1%"),
                alt.Tooltip("records:Q", title="Records"),
            ],
        )
    )
    target = target_rule("y", warehouse.COMPLETION_TARGET, f"{warehouse.COMPLETION_TARGET:.0%}")
    return (line + target).properties(height=HEIGHT)


def at_risk_split(frame: pd.DataFrame) -> alt.Chart:
    """A donut; the legend names each part with its share."""
    labelled = frame.assign(
        part=[
            f"{status} ({share:.1%})"
            for status, share in zip(frame.status, frame.share, strict=True)
        ]
    )
    domain = list(labelled["part"])
    colours = [STATUS_COLOURS.get(status, TARGET) for status in labelled["status"]]
    return (
        alt.Chart(labelled)
        .mark_arc(innerRadius=DONUT_HOLE, stroke="white")
        .encode(
            theta=alt.Theta("records:Q"),
            color=alt.Color(
                "part:N",
                title=None,
                scale=alt.Scale(domain=domain, range=colours),
                legend=alt.Legend(orient="right", labelFontSize=13),
            ),
            tooltip=[
                alt.Tooltip("status:N", title="Status"),
                alt.Tooltip("records:Q", title="Records"),
                alt.Tooltip("share:Q", title="Share", format=".1%"),
            ],
        )
        .properties(height=HEIGHT)
    )


def aid_vs_gpa(frame: pd.DataFrame) -> alt.Chart:
    return (
        alt.Chart(frame)
        .mark_circle(size=45, opacity=0.75)
        .encode(
            x=alt.X(
                "current_gpa:Q",
                title="Current GPA",
                scale=alt.Scale(domain=[0, warehouse.GPA_SCALE_MAX]),
            ),
            y=alt.Y(
                "financial_aid_amount:Q", title="Financial aid", axis=alt.Axis(format="$,.0f")
            ),
            color=alt.Color(
                "engagement_score:Q",
                title="Engagement",
                scale=alt.Scale(scheme="viridis", domain=[0, 100]),
            ),
            tooltip=[
                alt.Tooltip("current_gpa:Q", title="GPA", format=".2f"),
                alt.Tooltip("financial_aid_amount:Q", title="Aid", format="$,.2f"),
                alt.Tooltip("engagement_score:Q", title="Engagement", format=".1f"),
            ],
        )
        .properties(height=HEIGHT)
    )


def gpa_by_major(frame: pd.DataFrame) -> alt.LayerChart:
    bars = (
        alt.Chart(frame)
        .mark_bar(color=PRIMARY)
        .encode(
            x=alt.X(
                "avg_gpa:Q",
                title="Average GPA",
                scale=alt.Scale(domain=[0, warehouse.GPA_SCALE_MAX]),
            ),
            y=alt.Y("major_code:N", title="Major", sort="-x", axis=alt.Axis(labelOverlap=False)),
            tooltip=[
                alt.Tooltip("major_code:N", title="Major"),
                alt.Tooltip("avg_gpa:Q", title="Average GPA", format=".2f"),
                alt.Tooltip("records:Q", title="Records"),
            ],
        )
    )
    target = target_rule("x", warehouse.GPA_TARGET, f"GPA {warehouse.GPA_TARGET:.1f}")
    return (bars + target).properties(height=HEIGHT)
