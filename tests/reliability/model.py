"""The connection storm past one machine: connections at an Atlas cluster's primary for 1,000 and
10,000 concurrent execution environments, the driver in-process against the sidecar.

Fed by the per-environment figures the fleet measured (`python -m reliability.fleet` writes
them), or given by hand:

    python -m reliability.model --fleet .tools/reliability/fleet.json --svg docs/fleet-model.svg
    python -m reliability.model --sidecar 2 5 --driver 2 11

The model (assumptions, in the README's Reliability section):
- connections = environments x connections per environment: environments share nothing;
- an environment holds at the primary what it held on the test server (its monitoring connection
  and its pool: reads and writes go to the primary by default): busy, what it held right after
  the load; idle, what it still held after a rest longer than the sidecar's maxIdleTimeMS;
- the most an environment can hold at each data path's defaults (monitor + maxPoolSize) bounds
  any workload: 1 + 4 for the sidecar, 1 + 100 for the Node.js driver;
- Atlas limits connections per node, by tier, and keeps 10 of them for its own services.
"""

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from .svgplot import Plot

#: Atlas's maximum connections per node by dedicated cluster tier (general class), from "Atlas
#: Service Limits", https://www.mongodb.com/docs/atlas/reference/atlas-limits/ ("Connection Limits
#: and Cluster Tier").
ATLAS_LIMITS = {
    "M10": 1500,
    "M20": 3000,
    "M30": 3000,
    "M40": 6000,
    "M50": 16000,
    "M60": 32000,
    "M80": 96000,
    "M140": 96000,
    "M200": 128000,
    "M300": 128000,
}
#: "Atlas reserves 10 connections per node" (the same page).
ATLAS_RESERVED = 10
ENVIRONMENTS = (1000, 10000)
#: The tiers drawn on the plot (the others share a limit with one of these).
PLOTTED_TIERS = ("M10", "M30", "M40", "M50", "M60", "M80", "M200")


#: The most connections one environment can hold at a data path's defaults: one monitoring
#: connection plus maxPoolSize (the sidecar's 4; the Node.js driver's 100).
CAPS = {"sidecar": 1 + 4, "driver": 1 + 100}


@dataclass
class PerEnvironment:
    """Connections one environment holds at the primary."""

    idle: float  # after a load and a rest
    busy: float  # right after the load (the peak sampled during it adds connections closing meanwhile)


def from_fleet(figures: dict) -> dict[str, PerEnvironment]:
    """The per-environment figures a fleet run measured (its JSON, parsed), from the server's side."""
    n = figures["workload"]["environments"]
    return {name: PerEnvironment(idle=fleet["server"]["after_rest"] / n, busy=fleet["server"]["after_load"] / n)
            for name, fleet in figures["fleets"].items()}


def smallest_tier(connections: float) -> str:
    """The smallest Atlas tier whose per-node limit, less the reserved connections, holds them."""
    for tier, limit in ATLAS_LIMITS.items():
        if connections <= limit - ATLAS_RESERVED:
            return tier
    return "none (above every tier's limit)"


def table(per_env: dict[str, PerEnvironment]) -> list[dict]:
    rows = []
    for environments in ENVIRONMENTS:
        for path, figures in per_env.items():
            states = [("idle after load", figures.idle), ("busy", figures.busy)]
            if path in CAPS:
                states.append(("most at defaults", CAPS[path]))
            for state, per in states:
                connections = environments * per
                rows.append({"environments": environments, "data_path": path, "state": state,
                             "per_environment": per, "connections": round(connections),
                             "smallest_tier": smallest_tier(connections)})
    return rows


def render(rows: list[dict]) -> str:
    header = ("environments", "data path", "state", "per env", "at the primary", "smallest Atlas tier that holds it")
    lines = [header] + [(f"{r['environments']:,}", r["data_path"], r["state"], f"{r['per_environment']:.2f}",
                         f"{r['connections']:,}", r["smallest_tier"]) for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)) for line in lines)


def plot(per_env: dict[str, PerEnvironment]) -> str:
    colors = {"sidecar": "#1f77b4", "driver": "#d62728"}
    chart = Plot("Connections at the primary vs concurrent Lambda environments", x_label="concurrent environments",
                 y_label="connections at the primary", log_x=True, log_y=True)
    xs = [10, 100, 1000, 10000]
    for path, figures in per_env.items():
        color = colors.get(path, "#555555")
        chart.series(f"{path} busy {figures.busy:.1f}/env", [(x, x * figures.busy) for x in xs], color)
        chart.series(f"{path} idle {figures.idle:.1f}/env", [(x, x * figures.idle) for x in xs], color,
                     dashed=True)
    chart.series(f"driver most {CAPS['driver']}/env", [(x, x * CAPS["driver"]) for x in xs], "#f4a3a3", dashed=True)
    for tier in PLOTTED_TIERS:
        same = [t for t in ATLAS_LIMITS if ATLAS_LIMITS[t] == ATLAS_LIMITS[tier]]
        chart.level(f"{'/'.join(same)} {ATLAS_LIMITS[tier]:,}", ATLAS_LIMITS[tier])
    for x in ENVIRONMENTS:
        chart.mark_x(x)
    return chart.svg()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability.model", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--fleet", type=Path, help="the JSON a fleet run wrote")
    source.add_argument("--sidecar", type=float, nargs=2, metavar=("IDLE", "BUSY"),
                        help="per-environment connections with the sidecar (then --driver too)")
    parser.add_argument("--driver", type=float, nargs=2, metavar=("IDLE", "BUSY"))
    parser.add_argument("--svg", type=Path, help="write the plot here")
    args = parser.parse_args(argv)
    if args.fleet:
        per_env = from_fleet(json.loads(args.fleet.read_text()))
    else:
        if not args.driver:
            parser.error("--sidecar needs --driver")
        per_env = {"sidecar": PerEnvironment(*args.sidecar), "driver": PerEnvironment(*args.driver)}
    print(render(table(per_env)))
    if args.svg:
        args.svg.parent.mkdir(parents=True, exist_ok=True)
        args.svg.write_text(plot(per_env))
        print(f"\nplot: {args.svg}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
