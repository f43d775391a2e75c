"""Line plots as plain SVG, written by hand: no plotting library to install for two figures.

    plot = Plot("title", x_label="s", y_label="MiB", log_x=False, log_y=False)
    plot.series("RSS", [(0, 7.1), (1, 7.2)], color="#1f77b4")
    plot.level("goal", 9.0)           # a labelled horizontal line
    Path("out.svg").write_text(plot.svg())
"""

import math
from dataclasses import dataclass, field
from html import escape

WIDTH, HEIGHT = 800, 420
LEFT, RIGHT, TOP, BOTTOM = 78, 190, 40, 52


@dataclass
class _Series:
    label: str
    points: list[tuple[float, float]]
    color: str
    dashed: bool
    axis: str  # "left" or "right"


@dataclass
class _Level:
    label: str
    y: float
    color: str


@dataclass
class Plot:
    title: str
    x_label: str
    y_label: str
    log_x: bool = False
    log_y: bool = False
    y2_label: str | None = None  # a second y axis on the right, for series with axis="right"
    _series: list[_Series] = field(default_factory=list)
    _levels: list[_Level] = field(default_factory=list)
    _x_marks: list[float] = field(default_factory=list)

    def series(self, label: str, points: list[tuple[float, float]], color: str, dashed: bool = False,
               axis: str = "left") -> None:
        self._series.append(_Series(label, points, color, dashed, axis))

    def level(self, label: str, y: float, color: str = "#999999") -> None:
        self._levels.append(_Level(label, y, color))

    def mark_x(self, x: float) -> None:
        """A vertical guide line at x."""
        self._x_marks.append(x)

    # --- scales -----------------------------------------------------------------------------

    @staticmethod
    def _range(values: list[float], log: bool) -> tuple[float, float]:
        if log:
            low = 10 ** math.floor(math.log10(min(v for v in values if v > 0)))
            high = 10 ** math.ceil(math.log10(max(values)))
            return low, high
        low, high = min(0.0, min(values)), max(values)
        if high == low:
            high = low + 1
        step = _nice_step((high - low) / 5)
        return math.floor(low / step) * step, math.ceil(high / step) * step

    @staticmethod
    def _ticks(low: float, high: float, log: bool) -> list[float]:
        if log:
            return [10.0 ** e for e in range(round(math.log10(low)), round(math.log10(high)) + 1)]
        step = _nice_step((high - low) / 5)
        count = round((high - low) / step)
        return [low + i * step for i in range(count + 1)]

    def svg(self) -> str:
        xs = [x for s in self._series for x, _ in s.points] + self._x_marks
        left_ys = [y for s in self._series if s.axis == "left" for _, y in s.points] + [lv.y for lv in self._levels]
        right_ys = [y for s in self._series if s.axis == "right" for _, y in s.points]
        x_range = self._range(xs, self.log_x)
        y_range = self._range(left_ys, self.log_y)
        y2_range = self._range(right_ys, False) if right_ys else None
        plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

        def scale(value: float, bounds: tuple[float, float], log: bool, length: float) -> float:
            low, high = bounds
            if log:
                return (math.log10(value) - math.log10(low)) / (math.log10(high) - math.log10(low)) * length
            return (value - low) / (high - low) * length

        def px(x: float) -> float:
            return LEFT + scale(x, x_range, self.log_x, plot_w)

        def py(y: float, axis: str = "left") -> float:
            if axis == "right":
                return TOP + plot_h - scale(y, y2_range, False, plot_h)
            return TOP + plot_h - scale(y, y_range, self.log_y, plot_h)

        out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
               f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="Helvetica, Arial, sans-serif" font-size="12">',
               f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
               f'<text x="{WIDTH / 2:.0f}" y="22" text-anchor="middle" font-size="15">{escape(self.title)}</text>']
        for tick in self._ticks(*x_range, self.log_x):
            x = px(tick)
            out.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + plot_h}" stroke="#eeeeee"/>')
            out.append(f'<text x="{x:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">{_label(tick)}</text>')
        for tick in self._ticks(*y_range, self.log_y):
            y = py(tick)
            out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" stroke="#eeeeee"/>')
            out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_label(tick)}</text>')
        if y2_range:
            for tick in self._ticks(*y2_range, False):
                y = py(tick, "right")
                out.append(f'<text x="{LEFT + plot_w + 6}" y="{y + 4:.1f}">{_label(tick)}</text>')
        for x in self._x_marks:
            out.append(f'<line x1="{px(x):.1f}" y1="{TOP}" x2="{px(x):.1f}" y2="{TOP + plot_h}" '
                       f'stroke="#bbbbbb" stroke-dasharray="2 3"/>')
        out.append(f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#333333"/>')
        # Labels alternate between the right and the left end, so that close levels stay legible.
        for i, level in enumerate(sorted(self._levels, key=lambda lv: lv.y)):
            y = py(level.y)
            out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" stroke="{level.color}" '
                       f'stroke-dasharray="6 4"/>')
            x, anchor = (LEFT + plot_w - 4, "end") if i % 2 == 0 else (LEFT + 4, "start")
            out.append(f'<text x="{x}" y="{y - 4:.1f}" text-anchor="{anchor}" fill="{level.color}">'
                       f'{escape(level.label)}</text>')
        for legend_row, s in enumerate(self._series):
            points = " ".join(f"{px(x):.1f},{py(y, s.axis):.1f}" for x, y in s.points)
            dash = ' stroke-dasharray="8 4"' if s.dashed else ""
            out.append(f'<polyline points="{points}" fill="none" stroke="{s.color}" stroke-width="2"{dash}/>')
            ly = TOP + 12 + legend_row * 18
            lx = LEFT + plot_w + (44 if y2_range else 12)
            out.append(f'<line x1="{lx}" y1="{ly}" x2="{lx + 22}" y2="{ly}" stroke="{s.color}" stroke-width="2"{dash}/>')
            out.append(f'<text x="{lx + 28}" y="{ly + 4}">{escape(s.label)}</text>')
        out.append(f'<text x="{LEFT + plot_w / 2:.0f}" y="{HEIGHT - 12}" text-anchor="middle">{escape(self.x_label)}</text>')
        out.append(f'<text transform="translate(18 {TOP + plot_h / 2:.0f}) rotate(-90)" text-anchor="middle">'
                   f'{escape(self.y_label)}</text>')
        if y2_range and self.y2_label:
            out.append(f'<text transform="translate({LEFT + plot_w + 40} {TOP + plot_h / 2:.0f}) rotate(90)" '
                       f'text-anchor="middle">{escape(self.y2_label)}</text>')
        out.append("</svg>")
        return "\n".join(out) + "\n"


def _nice_step(raw: float) -> float:
    """1, 2 or 5 times a power of ten, at least `raw`."""
    if raw <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if factor * power >= raw:
            return factor * power
    return 10 * power


def _label(value: float) -> str:
    if value >= 1000 and value == int(value):
        return f"{int(value):,}"
    if value == int(value):
        return str(int(value))
    return f"{value:g}"
