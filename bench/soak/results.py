"""Figures of each phase, the table they print as, and the JSON they are written to.

Gating figures (any non-zero fails the run, and CI): lost, stale, wrong, leaks, plus every
behaviour check a phase makes (its `problems`). Informational: cases, requests, faults,
retries, survived, elapsed.
"""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.soak.checker import Verdict

COLUMNS = (
    "phase",
    "cases",
    "requests",
    "faults",
    "retries",
    "survived",
    "lost",
    "stale",
    "wrong",
    "leaks",
    "result",
    "elapsed",
)
COUNTED = ("cases", "requests", "faults", "retries", "lost", "stale", "wrong", "leaks")
GATING = ("lost", "stale", "wrong", "leaks")
NOT_APPLICABLE = "-"


@dataclass
class Phase:
    """Figures and verdict of one phase; it passes with no gating figure and no problem."""

    name: str
    cases: int = 0
    requests: int = 0
    faults: int = 0
    retries: int = 0
    survived: str = NOT_APPLICABLE  # "k/N" where a first sync may fail and that is allowed
    lost: int = 0
    stale: int = 0
    wrong: int = 0
    leaks: int = 0
    elapsed: float = 0.0
    details: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    figures: dict = field(default_factory=dict)

    def check(self, ok: bool, problem: str) -> bool:
        if not ok:
            self.problems.append(problem)
        return ok

    def add(self, verdict: Verdict) -> None:
        """Count a warehouse check into the phase's gating figures."""
        self.lost += verdict.lost
        self.stale += verdict.stale
        self.wrong += verdict.wrong

    @property
    def passed(self) -> bool:
        return not any(getattr(self, name) for name in GATING) and not self.problems

    @property
    def result(self) -> str:
        return "PASS" if self.passed else "FAIL"


def table(phases: list) -> str:
    """The `a | b | c` table: one row per phase and a TOTAL row."""
    rows = [COLUMNS]
    for phase in phases:
        counted = (getattr(phase, name) for name in COUNTED)
        rows.append(table_row(phase.name, counted, phase.survived, phase.result, phase.elapsed))
    totals = (sum(getattr(p, name) for p in phases) for name in COUNTED)
    passed = all(p.passed for p in phases)
    elapsed = sum(p.elapsed for p in phases)
    rows.append(table_row("TOTAL", totals, NOT_APPLICABLE, pass_word(passed), elapsed))
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [" | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def table_row(name: str, counted, survived: str, result: str, elapsed: float) -> tuple:
    cases, requests, faults, retries, lost, stale, wrong, leaks = (str(v) for v in counted)
    return (
        name,
        cases,
        requests,
        faults,
        retries,
        survived,
        lost,
        stale,
        wrong,
        leaks,
        result,
        f"{elapsed:.1f}",
    )


def pass_word(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def report(header: str, phases: list) -> str:
    lines = [header, "", table(phases), ""]
    for phase in phases:
        lines += [f"[{phase.name}] {detail}" for detail in phase.details]
        lines += [f"[{phase.name}] PROBLEM: {problem}" for problem in phase.problems]
    return "\n".join(lines)


def write_json(path: Path, run: dict, phases: list) -> None:
    payload = {
        **run,
        "passed": all(p.passed for p in phases),
        "gating": [*GATING, "problems"],
        "phases": [{**asdict(p), "passed": p.passed} for p in phases],
    }
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
