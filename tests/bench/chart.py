"""The benchmark's chart: per scenario and language, the in-process driver against the thin client
plus the sidecar, as environment CPU per operation (the handler's share and the sidecar's share)
and as p50, each relative to the driver. Plain SVG written here: no plotting dependency."""

from html import escape
from pathlib import Path

LANGUAGES = (("node", "Node.js"), ("python", "Python"))
SCENARIO_LABELS = {"findOne": "findOne", "find": "find 1,000", "insertOne": "insertOne", "updateOne": "updateOne"}

DRIVER, HANDLER, SIDECAR, TEXT, GRID = "#9e9e9e", "#1f77b4", "#ff7f0e", "#222", "#ccc"
LABEL_W, PANEL_W, GAP, BAR_H, ROW_H, TOP = 150, 330, 50, 13, 40, 70


def _amount(us: float) -> str:
    return f"{us / 1000:.1f} ms" if us >= 1000 else f"{us:,.0f} µs"


def _rows(scenarios: dict) -> list[dict]:
    rows = []
    for key, label in SCENARIO_LABELS.items():
        found = scenarios.get(key, {})
        for language, name in LANGUAGES:
            driver, sidecar = found.get(f"{language}_driver"), found.get(f"{language}_tcp")
            if driver and sidecar and driver["environment"] and driver["p50"]:
                rows.append({"label": f"{label} · {name}", "driver": driver, "sidecar": sidecar})
    return rows


def _axis(x0: float, scale: float, top: float, bottom: float, limit: float) -> list[str]:
    parts = []
    step = 0.5 if limit <= 3 else 1.0
    tick = 0.0
    while tick <= limit + 1e-9:
        x = x0 + tick * scale
        parts.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="{GRID}"/>')
        parts.append(f'<text x="{x:.1f}" y="{bottom + 14}" text-anchor="middle" font-size="11">{tick:g}×</text>')
        tick += step
    one = x0 + scale
    parts.append(f'<line x1="{one:.1f}" y1="{top - 6}" x2="{one:.1f}" y2="{bottom}" stroke="{TEXT}" '
                 f'stroke-dasharray="4 3"/>')
    return parts


def render(scenarios: dict, subtitle: str) -> str:
    rows = _rows(scenarios)
    cpu_limit = max([1.25] + [r["sidecar"]["environment"] / r["driver"]["environment"] for r in rows]) * 1.12
    p50_limit = max([1.25] + [r["sidecar"]["p50"] / r["driver"]["p50"] for r in rows]) * 1.12
    cpu_x0, p50_x0 = LABEL_W, LABEL_W + PANEL_W + GAP
    cpu_scale, p50_scale = (PANEL_W - 90) / cpu_limit, (PANEL_W - 90) / p50_limit
    height = TOP + ROW_H * len(rows) + 60
    width = p50_x0 + PANEL_W + 10
    bottom = TOP + ROW_H * len(rows)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" fill="{TEXT}">',
           f'<rect width="{width}" height="{height}" fill="#fff"/>',
           '<text x="10" y="22" font-size="15" font-weight="bold">In-process driver (grey) against the thin client '
           '+ the sidecar, relative to the driver</text>',
           f'<text x="10" y="40" font-size="11">{escape(subtitle)}</text>',
           f'<text x="{cpu_x0}" y="{TOP - 12}" font-size="12" font-weight="bold">environment CPU per operation '
           f'(<tspan fill="{HANDLER}">handler</tspan> + <tspan fill="{SIDECAR}">sidecar</tspan>)</text>',
           f'<text x="{p50_x0}" y="{TOP - 12}" font-size="12" font-weight="bold">p50 latency</text>']
    out += _axis(cpu_x0, cpu_scale, TOP - 4, bottom, cpu_limit)
    out += _axis(p50_x0, p50_scale, TOP - 4, bottom, p50_limit)
    for i, row in enumerate(rows):
        y = TOP + i * ROW_H
        driver, sidecar = row["driver"], row["sidecar"]
        out.append(f'<text x="{LABEL_W - 8}" y="{y + BAR_H + 4}" text-anchor="end" font-size="12">'
                   f'{escape(row["label"])}</text>')
        # CPU: the driver's bar is 1; the sidecar path's bar is split into handler and sidecar.
        d_env = driver["environment"]
        handler_w = sidecar["handler"] / d_env * cpu_scale
        sidecar_w = (sidecar["sidecar"] or 0) / d_env * cpu_scale
        out.append(f'<rect x="{cpu_x0}" y="{y}" width="{cpu_scale:.1f}" height="{BAR_H}" fill="{DRIVER}"/>')
        out.append(f'<text x="{cpu_x0 + cpu_scale + 4:.1f}" y="{y + 10}" font-size="10">{_amount(d_env)}</text>')
        out.append(f'<rect x="{cpu_x0}" y="{y + BAR_H + 1}" width="{handler_w:.1f}" height="{BAR_H}" fill="{HANDLER}"/>')
        out.append(f'<rect x="{cpu_x0 + handler_w:.1f}" y="{y + BAR_H + 1}" width="{sidecar_w:.1f}" '
                   f'height="{BAR_H}" fill="{SIDECAR}"/>')
        out.append(f'<text x="{cpu_x0 + handler_w + sidecar_w + 4:.1f}" y="{y + BAR_H + 11}" font-size="10">'
                   f'{_amount(sidecar["environment"])} ({sidecar["environment"] / d_env:.2f}×)</text>')
        # p50.
        p50_w = sidecar["p50"] / driver["p50"] * p50_scale
        out.append(f'<rect x="{p50_x0}" y="{y}" width="{p50_scale:.1f}" height="{BAR_H}" fill="{DRIVER}"/>')
        out.append(f'<text x="{p50_x0 + p50_scale + 4:.1f}" y="{y + 10}" font-size="10">'
                   f'{_amount(driver["p50"])}</text>')
        out.append(f'<rect x="{p50_x0}" y="{y + BAR_H + 1}" width="{p50_w:.1f}" height="{BAR_H}" fill="{HANDLER}"/>')
        out.append(f'<text x="{p50_x0 + p50_w + 4:.1f}" y="{y + BAR_H + 11}" font-size="10">'
                   f'{_amount(sidecar["p50"])} ({sidecar["p50"] / driver["p50"]:.2f}×)</text>')
    out.append(f'<text x="10" y="{height - 12}" font-size="11">Shorter is better. Dashed line: the in-process '
               'driver. Reproduce: make bench</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write(path: Path, scenarios: dict, subtitle: str) -> bool:
    """Writes the chart if there is anything to draw; says whether it did."""
    if not _rows(scenarios):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(scenarios, subtitle))
    return True
