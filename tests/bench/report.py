"""The benchmark's report: sections of figures, each with its unit and, where there is one, its
goal. Printed as the run goes, and written as JSON at the end.

A goal is informational: a figure over its goal is marked, never a failure of the run.
"""

import json
import math
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Goal:
    """`value <= limit` (or >=; < or > when `strict`)."""

    limit: float
    at_most: bool = True
    strict: bool = False

    def met(self, value: float | None) -> bool | None:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        if self.at_most:
            return value < self.limit if self.strict else value <= self.limit
        return value > self.limit if self.strict else value >= self.limit

    def describe(self, unit: str) -> str:
        sign = ("<" if self.strict else "≤") if self.at_most else (">" if self.strict else "≥")
        return f"{sign} {self.limit:g} {unit}".rstrip()


@dataclass
class Figure:
    name: str
    value: float | str | None
    unit: str = ""
    goal: str | None = None  # e.g. "≤ 40 µs"
    goal_met: bool | None = None
    note: str | None = None


@dataclass
class Section:
    key: str
    title: str
    figures: list[Figure] = field(default_factory=list)
    details: dict = field(default_factory=dict)  # raw summaries (all percentiles, counts)
    errors: list[str] = field(default_factory=list)
    seconds: float | None = None

    def add(self, name: str, value, unit: str = "", goal: Goal | str | None = None, note: str | None = None,
            goal_met: bool | None = None) -> Figure:
        """Records and prints a figure. `goal` is a Goal, or its text with `goal_met` given."""
        figure = Figure(name, value, unit, note=note)
        if isinstance(goal, Goal):
            figure.goal = goal.describe(unit)
            figure.goal_met = goal.met(value if isinstance(value, (int, float)) else None)
        elif goal is not None:
            figure.goal, figure.goal_met = goal, goal_met
        self.figures.append(figure)
        print(format_figure(figure), flush=True)
        return figure

    def error(self, what: str, exc: BaseException | str) -> None:
        """Something could not be measured: reported, and the run goes on."""
        text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        self.errors.append(f"{what}: {text}")
        print(f"  !! {what}: {text}", flush=True)
        if isinstance(exc, BaseException) and not isinstance(exc, (OSError, RuntimeError, TimeoutError)):
            traceback.print_exception(exc)


class Report:
    def __init__(self, meta: dict):
        self.meta = meta
        self.sections: list[Section] = []
        self._started = time.perf_counter()

    def section(self, key: str, title: str) -> Section:
        section = Section(key, title)
        self.sections.append(section)
        print(f"\n== {title}", flush=True)
        return section

    def failed_sections(self) -> list[str]:
        return [s.key for s in self.sections if s.errors]

    def to_json(self) -> dict:
        return {
            "meta": self.meta | {"total_seconds": round(time.perf_counter() - self._started, 1)},
            "sections": [asdict(s) for s in self.sections],
        }

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2, ensure_ascii=False, default=str) + "\n")

    def print_goals(self) -> None:
        """The figures that have a goal, together at the end, as a Markdown table."""
        rows = [f for s in self.sections for f in s.figures if f.goal]
        if not rows:
            return
        print("\n== Goals (informational: noisy figures, compare on a quiet machine)\n")
        print("| figure | value | goal | |\n|---|---|---|---|")
        for figure in rows:
            verdict = {True: "met", False: "**NOT met**", None: "?"}[figure.goal_met]
            print(f"| {figure.name} | {value_text(figure)} | {figure.goal} | {verdict} |")


def _number(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def value_text(figure: Figure) -> str:
    if isinstance(figure.value, (int, float)):
        return f"{_number(figure.value)} {figure.unit}".rstrip()
    return "n/a" if figure.value is None else str(figure.value)


def format_figure(figure: Figure) -> str:
    line = f"  {figure.name:<58} {value_text(figure):>14}"
    if figure.goal:
        verdict = {True: "met", False: "NOT met", None: "?"}[figure.goal_met]
        line += f"   goal {figure.goal}: {verdict}"
    if figure.note:
        line += f"   ({figure.note})"
    return line
