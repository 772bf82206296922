#!/usr/bin/env python3
"""Plots the mesh simulation (examples/mesh_sim.rs): IdP requests per second over time,
one PNG per scenario, a panel per mesh size, the fixed schedule against the spread one.

    python -m tools.mesh_plot docs/mesh-scale target/mesh-sim [MORE_DIRS...]

Reads DIR/qps.csv and DIR/scenarios.csv of each DIR (runs of different scenarios, e.g.
with --scenario, may sit in different directories); writes OUT/<scenario>.png and
OUT/summary.csv (every DIR's summary.csv). Needs matplotlib.
"""
import csv
import collections
import os
import sys

# The Figure API draws without pyplot's global state or a display backend.
from matplotlib.figure import Figure

BUCKET_S = 10


def main(out, sources):
    titles = {}
    # (scenario, schedule, n) -> {bucket: requests}
    series = collections.defaultdict(lambda: collections.Counter())
    summary_header, summary_rows = None, []
    for src in sources:
        with open(os.path.join(src, "scenarios.csv")) as f:
            for row in csv.DictReader(f):
                titles[row["scenario"]] = row["title"]
        with open(os.path.join(src, "qps.csv")) as f:
            for row in csv.DictReader(f):
                key = (row["scenario"], row["schedule"], int(row["n"]))
                series[key][int(row["second"]) // BUCKET_S] += int(row["requests"])
        with open(os.path.join(src, "summary.csv")) as f:
            lines = f.read().splitlines()
            summary_header = lines[0]
            summary_rows += lines[1:]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "summary.csv"), "w") as f:
        f.write("\n".join([summary_header] + summary_rows) + "\n")
    for scenario, title in titles.items():
        sizes = sorted({n for (s, _, n) in series if s == scenario})
        if not sizes:
            continue
        fig = Figure(figsize=(10, 2.6 * len(sizes)))
        axes = fig.subplots(len(sizes), 1, sharex=True, squeeze=False)
        for ax, n in zip(axes[:, 0], sizes):
            for schedule, colour in (("fixed", "tab:red"), ("spread", "tab:blue")):
                counts = series.get((scenario, schedule, n))
                if not counts:
                    continue
                last = max(counts)
                xs = [b * BUCKET_S / 60 for b in range(last + 1)]
                ys = [counts.get(b, 0) / BUCKET_S for b in range(last + 1)]
                label = "before (fixed schedule)" if schedule == "fixed" else "spread schedule"
                ax.plot(xs, ys, color=colour, linewidth=0.8, label=label)
            ax.set_ylabel(f"N={n}\nIdP req/s")
            ax.grid(alpha=0.3)
            ax.legend(loc="upper right", fontsize=8)
        axes[-1, 0].set_xlabel(f"minutes (IdP requests per second, {BUCKET_S} s average)")
        fig.suptitle(title)
        fig.tight_layout()
        path = os.path.join(out, f"{scenario}.png")
        fig.savefig(path, dpi=90)
        print(path)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:])
