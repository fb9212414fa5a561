"""Synthetic student records, generated lazily.

A record is a pure function of (seed, index, version, last_updated), so the simulator can serve
a million records without ever holding them in memory: only the few records that changed keep a
small overlay (their version and new timestamp) in the change log.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from datetime import datetime, timedelta
from typing import Any

# The exact field set and order of the real API's records.
RECORD_FIELDS: tuple[str, ...] = (
    "record_id",
    "student_id",
    "enrollment_date",
    "academic_standing",
    "current_gpa",
    "credit_hours_attempted",
    "credit_hours_earned",
    "major_code",
    "advisor_id",
    "financial_aid_amount",
    "last_login_date",
    "total_course_views",
    "assignment_submissions",
    "discussion_posts",
    "avg_assignment_score",
    "course_completion_rate",
    "plagiarism_incidents",
    "writing_quality_score",
    "engagement_score",
    "at_risk_flag",
    "intervention_count",
    "last_updated",
)

# What kind of value each field holds in the API's standard form: "text" (JSON string),
# "timestamp" (naive `YYYY-MM-DD H:MM:SS` text), "double", "count" (integer), "money" (number
# with cents) or "boolean". Drift modes and the OpenAPI document follow this map.
FIELD_KINDS: dict[str, str] = {
    "record_id": "text",
    "student_id": "text",
    "enrollment_date": "timestamp",
    "academic_standing": "text",
    "current_gpa": "double",
    "credit_hours_attempted": "count",
    "credit_hours_earned": "count",
    "major_code": "text",
    "advisor_id": "text",
    "financial_aid_amount": "money",
    "last_login_date": "timestamp",
    "total_course_views": "count",
    "assignment_submissions": "count",
    "discussion_posts": "count",
    "avg_assignment_score": "double",
    "course_completion_rate": "double",
    "plagiarism_incidents": "count",
    "writing_quality_score": "double",
    "engagement_score": "double",
    "at_risk_flag": "boolean",
    "intervention_count": "count",
    "last_updated": "timestamp",
}
# Decimal places the API rounds each double to (course_completion_rate is a share, 0..1).
DOUBLE_PLACES: dict[str, int] = {
    "current_gpa": 2,
    "avg_assignment_score": 2,
    "course_completion_rate": 4,
    "writing_quality_score": 2,
    "engagement_score": 2,
}
# The API's timestamp text; strptime accepts the unpadded hour.
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"

# Initial last_updated values are spread over this window so timestamps look like real history.
WINDOW_START = datetime(2024, 1, 1)
# 180 days: long enough for a million records to get distinct seconds.
WINDOW_SECONDS = 180 * 24 * 3600
# About 0.8 records per student, so some students own several records.
STUDENTS_PER_RECORD = 0.8
# Small realistic pools, as in the real system.
MAJOR_CODES = ("CSCI", "BIOL", "PSYC", "ECON", "ENGL", "MATH", "NURS", "BUSI", "HIST", "CHEM")
ADVISORS_PER_MAJOR = 4
# First day of each term a student may have enrolled in (month, day).
TERM_STARTS = ((1, 15), (8, 26))
ENROLLMENT_YEARS = (2019, 2020, 2021, 2022, 2023)
# Odd multiplier for index mixing; keeps per-record seeds far apart.
_MIX = 0x9E3779B97F4A7C15
_MASK64 = (1 << 64) - 1
_DAY = 24 * 3600


def format_timestamp(moment: datetime) -> str:
    """Format like the real API: `YYYY-MM-DD H:MM:SS`, hour NOT zero-padded."""
    m = moment  # plain attribute formatting: several times faster than strftime
    return f"{m.year:04d}-{m.month:02d}-{m.day:02d} {m.hour}:{m.minute:02d}:{m.second:02d}"


def clamp(value: float, low: float, high: float) -> float:
    """Keep a noisy value inside its realistic range (always a float, even at the bounds)."""
    return float(max(low, min(high, value)))


def standing_for(gpa: float, rng: random.Random) -> str:
    """Map a GPA to an academic standing the way registrars usually do."""
    if gpa >= 3.5:
        return "Dean's List" if rng.random() < 0.7 else "Good Standing"
    if gpa >= 2.0:
        return "Good Standing"
    if gpa >= 1.7:
        return "Academic Warning"
    return "Academic Probation"


def is_at_risk(gpa: float, engagement: float, plagiarism: int) -> bool:
    """At risk when grades or engagement are low; ties the flag to the other fields."""
    return gpa < 2.0 or engagement < 35.0 or (gpa < 2.5 and engagement < 55.0) or plagiarism >= 2


class RecordFactory:
    """Builds record `index` at `version` for one seed; cheap enough to call per request."""

    def __init__(self, seed: int, initial_records: int) -> None:
        self.seed = seed
        self.initial_records = initial_records
        self.student_pool = max(1, int(initial_records * STUDENTS_PER_RECORD))
        # Seconds between consecutive initial records; >= 1 keeps initial timestamps distinct.
        self.spacing = max(1, WINDOW_SECONDS // max(1, initial_records))
        digest = hashlib.sha256(f"hed-simulator:{seed}".encode()).digest()
        self._seed_bits = int.from_bytes(digest[:8], "big")

    def rng_for(self, kind: int, index: int, version: int = 0) -> random.Random:
        """A private random stream per (kind, index, version): records never share state."""
        mixed = (self._seed_bits ^ ((index * _MIX + version) & _MASK64)) & _MASK64
        return random.Random((mixed << 2) | kind)

    def record_id(self, index: int) -> str:
        """The record_id of `index`; it never changes across versions."""
        return str(uuid.UUID(int=self.rng_for(0, index).getrandbits(128), version=4))

    def initial_time(self, index: int) -> datetime:
        """Initial last_updated of `index`; grows strictly with index, so log order = index."""
        jitter = (((index * _MIX) ^ self._seed_bits) & _MASK64) >> 20  # cheap hash, no RNG
        jitter %= self.spacing
        return WINDOW_START + timedelta(seconds=index * self.spacing + jitter)

    def end_of_initial_window(self) -> datetime:
        """A moment later than every initial record; the change clock starts here."""
        return WINDOW_START + timedelta(seconds=self.initial_records * self.spacing)

    def build(self, index: int, version: int = 0, updated_at: datetime | None = None) -> dict:
        """Return record `index` after `version` updates, last updated at `updated_at`."""
        rng = self.rng_for(0, index)  # first draw is the record_id, as in record_id()
        record_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        student_index = rng.randrange(self.student_pool)
        reference = self.initial_time(index)
        record = self._base_fields(rng, record_id, student_index, reference)
        # Disengaged students log in less often, so their last login is older.
        login_gap = rng.randint(0, (14 if record["engagement_score"] < 50 else 3) * _DAY)
        for step in range(1, version + 1):
            login_gap = apply_update(record, self.rng_for(1, index, step))
        moment = updated_at if updated_at is not None else reference
        record["last_login_date"] = format_timestamp(moment - timedelta(seconds=login_gap))
        record["last_updated"] = format_timestamp(moment)
        return record

    def _base_fields(
        self, rng: random.Random, record_id: str, student_index: int, reference: datetime
    ) -> dict[str, Any]:
        """Draw the version-0 values; student-level traits come from the student's own stream."""
        student = self.rng_for(2, student_index)
        major = student.randrange(len(MAJOR_CODES))
        advisor = major * ADVISORS_PER_MAJOR + student.randrange(ADVISORS_PER_MAJOR) + 1
        month, day = student.choice(TERM_STARTS)
        enrolled = datetime(student.choice(ENROLLMENT_YEARS), month, day)
        ability = student.gauss(0.0, 1.0)
        engagement_trait = 0.5 * ability + rng.gauss(0.0, 0.8)

        gpa = round(clamp(2.95 + 0.6 * ability + rng.gauss(0.0, 0.3), 0.0, 4.0), 2)
        terms = max(1, min(10, (reference - enrolled).days // 182))
        attempted = max(3, terms * rng.randint(12, 16) + rng.randint(-3, 3))
        failed = int(attempted * max(0.0, 2.6 - gpa) * rng.uniform(0.0, 0.2))
        engagement = round(clamp(62 + 15 * engagement_trait + rng.gauss(0, 5), 0, 100), 2)
        plagiarism = 0 if rng.random() < 0.94 else rng.choice((1, 1, 1, 2))
        aid = 0.0 if rng.random() < 0.3 else round(rng.uniform(500, 25000), 2)
        at_risk = is_at_risk(gpa, engagement, plagiarism)
        return {
            "record_id": record_id,
            "student_id": f"STU{student_index + 1:07d}",
            "enrollment_date": format_timestamp(enrolled),
            "academic_standing": standing_for(gpa, rng),
            "current_gpa": gpa,
            "credit_hours_attempted": attempted,
            "credit_hours_earned": attempted - min(failed, attempted),
            "major_code": MAJOR_CODES[major],
            "advisor_id": f"ADV{advisor:04d}",
            "financial_aid_amount": aid,
            "last_login_date": "",
            "total_course_views": max(0, int(rng.gauss(320 + 140 * engagement_trait, 60))),
            "assignment_submissions": max(0, int(rng.gauss(30 + 8 * engagement_trait, 6))),
            "discussion_posts": max(0, int(rng.gauss(12 + 6 * engagement_trait, 4))),
            "avg_assignment_score": round(clamp(52 + 11 * gpa + rng.gauss(0, 6), 0, 100), 2),
            "course_completion_rate": round(clamp(0.55 + 0.1 * gpa + rng.gauss(0, 0.05), 0, 1), 4),
            "plagiarism_incidents": plagiarism,
            "writing_quality_score": round(clamp(60 + 8 * ability + rng.gauss(0, 8), 0, 100), 2),
            "engagement_score": engagement,
            "at_risk_flag": at_risk,
            "intervention_count": rng.randint(1, 4) if at_risk else int(rng.random() < 0.1),
            "last_updated": "",
        }


def apply_update(record: dict[str, Any], rng: random.Random) -> int:
    """Change a record the way a new term week would; return the new login gap in seconds.

    Activity counters only grow, grades drift a little, and standing / at-risk / interventions
    are recomputed so the record stays internally consistent.
    """
    gpa = round(clamp(record["current_gpa"] + rng.uniform(-0.35, 0.35), 0.0, 4.0), 2)
    engagement = round(clamp(record["engagement_score"] + rng.uniform(-12, 12), 0, 100), 2)
    record["current_gpa"] = gpa
    record["engagement_score"] = engagement
    record["academic_standing"] = standing_for(gpa, rng)
    record["total_course_views"] += rng.randint(5, 120)
    record["assignment_submissions"] += rng.randint(0, 4)
    record["discussion_posts"] += rng.randint(0, 3)
    score = record["avg_assignment_score"] + rng.uniform(-5, 5)
    record["avg_assignment_score"] = round(clamp(score, 0, 100), 2)
    rate = record["course_completion_rate"] + rng.uniform(-0.03, 0.05)
    record["course_completion_rate"] = round(clamp(rate, 0, 1), 4)
    at_risk = is_at_risk(gpa, engagement, record["plagiarism_incidents"])
    if at_risk:
        record["intervention_count"] += rng.randint(0, 2)
    record["at_risk_flag"] = at_risk
    return rng.randint(0, 2 * _DAY)
