"""Renders the Grafana dashboard's panels (deploy/observability/dashboard.json) to one PNG
from a real Prometheus: every panel's queries are run with /api/v1/query_range and drawn
with matplotlib, in the dashboard's layout. No Grafana needed.

Used by tests/integration/test_prometheus.py when DASHBOARD_PNG=<path> is set (the run's
Prometheus, after its known traffic; matplotlib comes with ./build.sh setup):

    DASHBOARD_PNG=docs/dashboard.png .tools/venv/bin/python -m pytest -q \\
        tests/integration/test_prometheus.py -k real_prometheus
"""
from __future__ import annotations

import json
import pathlib
import re
import urllib.parse
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy" / "observability" / "dashboard.json"


def concrete(expr: str, rate_interval: str, range_: str = "1h") -> str:
    """A panel query with Grafana's interval variables replaced."""
    return expr.replace("$__rate_interval", rate_interval).replace("$__range", range_)


def query_range(prom_url: str, expr: str, start: float, end: float, step: float) -> list[dict]:
    q = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    with urllib.request.urlopen(f"{prom_url}/api/v1/query_range?{q}", timeout=10) as resp:
        body = json.load(resp)
    if body.get("status") != "success":
        raise RuntimeError(f"query_range {expr!r}: {body}")
    return body["data"]["result"]


def legend(fmt: str, labels: dict) -> str:
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt).strip() or "value"


def render(prom_url: str, start: float, end: float, out: pathlib.Path, rate_interval: str,
           dashboard: dict | None = None, step: float = 1.0, subtitle: str = "") -> pathlib.Path:
    # The Figure API draws without pyplot's global state or a display backend.
    from matplotlib.figure import Figure

    dash = dashboard or json.loads(DASHBOARD.read_text())
    panels = dash["panels"]
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    fig = Figure(figsize=(18, rows * 0.62), dpi=80)
    grid = fig.add_gridspec(rows, 24, hspace=1.2, wspace=1.5, top=0.96, bottom=0.03)
    for p in panels:
        g = p["gridPos"]
        ax = fig.add_subplot(grid[g["y"]:g["y"] + g["h"] - 1, g["x"]:g["x"] + g["w"]])
        unit = p.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
        ax.set_title(p["title"] + (f"  [{unit}]" if unit else ""), fontsize=10, loc="left")
        lines = []
        for t in p["targets"]:
            for s in query_range(prom_url, concrete(t["expr"], rate_interval), start, end, step):
                xs = [float(v[0]) - start for v in s["values"]]
                ys = [float(v[1]) for v in s["values"]]
                lines.append((xs, ys, legend(t.get("legendFormat", ""), s["metric"])))
        # Many series (e.g. one per reason): those at 0 all along are left out.
        hidden = 0
        if len(lines) > 4:
            kept = [l for l in lines if any(y != 0 for y in l[1])]
            hidden, lines = len(lines) - len(kept), kept
        for xs, ys, label in lines:
            ax.plot(xs, ys, linewidth=1.2, label=label)
        if lines:
            ax.legend(fontsize=7, loc="upper left", ncol=2, frameon=False)
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        if hidden:
            ax.text(0.99, 0.02, f"{hidden} series at 0 not drawn", fontsize=7, ha="right",
                    transform=ax.transAxes, color="gray")
        ax.tick_params(labelsize=7)
        ax.set_xlabel("seconds into the run", fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{dash['title']}: panels from a real Prometheus run {subtitle}".strip(),
                 fontsize=13, x=0.01, y=0.995, ha="left")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, bbox_inches="tight")
    return out
