#!/usr/bin/env python3
"""The performance goals at a glance, from the JSON that bench/run.py and bench/memory.py
write into bench/results/. The last step of `./build.sh bench`; runnable alone:

    python -m bench.summary     (BENCH_RESULTS=DIR reads and writes DIR instead)

Inputs (any may be missing or stale: the output says which, and when each was made):

    pinned.json         bench/pinned.py goals: Envoy CPU per request on W1, W2, W4 for A, B or C,
                        D, F, one worker pinned apart from wrk (the CPU rows; preferred)
    run.json            bench/run.py: the same from the --concurrency 2 run (the CPU rows
                        when pinned.json is missing), module size
    memory-rss.json     bench/memory.py rss: Envoy RSS c2/2 for N, F, D (default and large config)
    memory-cold.json    bench/memory.py cold: Envoy start -> first 200, config push -> serving
    memory-growth.json  bench/memory.py growth: CPU per request and RSS as the work grows

Output: the goals table (native jwt_authn, F, D, D over F, the goal, met or not) and the
growth table, to stdout and bench/results/summary.md. Standard library only, so it runs
on whatever the other scripts left behind.
"""
from __future__ import annotations

import datetime
import json
import os
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
RESULTS = pathlib.Path(os.environ.get("BENCH_RESULTS", HERE / "results")).resolve()

# The goals (docs/performance.md, "Goals").
CPU_OVER_F_US = 1.0  # CPU per request on W1, W2, W4: D at most F + 1.0 us
RSS_OVER_N_MIB = 35.0  # whole-Envoy RSS at --concurrency 2: D at most native jwt_authn + 35 MiB
SIZE_BYTES = 600_000  # module size: at most 600 KB (kilo = 1000)
COLD_X_F = 3.0  # cold start and config push: D within 3x of F
BASELINE_X = 1.05  # CPU per request on W1, W2, W4: D at most 5% over D0, the older module
# Growth: D's growth (largest point minus smallest) reads as faster (or slower) than
# another configuration's only when it is so in every round by more than this.
GROWTH_TOLERANCE_US = float(os.environ.get("GROWTH_TOLERANCE_US", "0.5"))

SOURCES = {
    "pinned.json": "bench/pinned.py goals (./build.sh bench)",
    "run.json": "bench/run.py (./build.sh bench)",
    "memory-rss.json": "bench/memory.py rss (./build.sh bench-memory rss)",
    "memory-cold.json": "bench/memory.py cold (./build.sh bench-memory cold)",
    "memory-growth.json": "bench/memory.py growth (./build.sh bench-memory growth)",
}


def load(name: str) -> tuple[dict | None, str]:
    """(data, note): data is None when the file is missing or unreadable, and the note
    says so; otherwise the note gives the date it was made."""
    path = RESULTS / name
    if not path.exists():
        return None, f"missing: {SOURCES[name]} has not written it"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        return None, f"unreadable ({e})"
    if not isinstance(data, dict):
        return None, "unreadable (not a JSON object)"
    return data, f"made {data.get('date', 'at an unknown date')}"


def num(x) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def get(d, *path):
    """d[path[0]][path[1]]..., or None where any step is missing."""
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def us(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f} us"


def mib(kib: float | None) -> str:
    return "-" if kib is None else f"{kib / 1024:.1f} MiB"


def ms(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f} ms"


def kb(b: float | None) -> str:
    return "-" if b is None else f"{b / 1000:,.0f} KB"


def verdict(ok: bool | None, missing: str) -> str:
    if ok is None:
        return f"no data: {missing}"
    return "met" if ok else "**not met**"


# --------------------------------------------------------------------------- goals table
CPU_ROWS = [("W1", "one token reused", "C"), ("W2", "new RS256 tokens", "B"),
            ("W4", "bad signatures", "B")]


def goals_table(run: dict | None, run_note: str, rss: dict | None, rss_note: str,
                cold: dict | None, cold_note: str, pinned: dict | None = None) -> list[str]:
    lines = ["| what | A: no filter | N: native jwt_authn | F: floor | D: this filter | "
             "D over F (N) | goal | |",
             "|---|---:|---:|---:|---:|---:|---|---|"]
    cpu_src, cpu_name = (pinned, "pinned.json") if pinned is not None else (run, "run.json")
    for w, what, native in CPU_ROWS:
        cell = lambda c: num(get(cpu_src, "workloads", w, c, "cpu_us"))
        a, n, f, d = cell("A"), cell(native), cell("F"), cell("D")
        over = d - f if d is not None and f is not None else None
        why = run_note if cpu_src is None else f"{cpu_name} has no {w} for D and F"
        lines.append(f"| CPU per request, {w} ({what}) | {us(a)} | {us(n)} ({native}) | {us(f)} | {us(d)} | "
                     f"{'-' if over is None else f'{over:+.1f} us'} | D <= F + {CPU_OVER_F_US} us | "
                     f"{verdict(None if over is None else over <= CPU_OVER_F_US, why)} |")
    if pinned is not None and get(pinned, "baseline") is not None:
        base = get(pinned, "baseline", "module")
        for w, what, _ in CPU_ROWS:
            d, d0 = num(get(pinned, "workloads", w, "D", "cpu_us")), num(get(pinned, "workloads", w, "D0", "cpu_us"))
            x = d / d0 if d is not None and d0 else None
            lines.append(f"| CPU per request, {w}, against D0 ({base}) | | | {us(d0)} (D0) | {us(d)} | "
                         f"{'-' if x is None else f'{x:.2f}x D0'} | D <= {BASELINE_X:.2f}x D0 | "
                         f"{verdict(None if x is None else x <= BASELINE_X, f'pinned.json has no {w} for D and D0')} |")
    for label, nk, dk in (("default config", "N", "D"),
                          ("large config (50 providers, 500 rules, 100-key JWKS)", "N-large", "D-large")):
        c2 = lambda k: num(get(rss, "rows", k, "c2_kib"))
        n, f, d = c2(nk), c2("F"), c2(dk)
        over = d - n if d is not None and n is not None else None
        why = rss_note if rss is None else f"memory-rss.json has no {dk} and {nk}"
        lines.append(f"| Envoy RSS (c2), {label} | | {mib(n)} | {mib(f)} | {mib(d)} | "
                     f"{'-' if over is None else f'{over / 1024:+.1f} MiB over N'} | D <= N + {RSS_OVER_N_MIB:.0f} MiB | "
                     f"{verdict(None if over is None else over / 1024 <= RSS_OVER_N_MIB, why)} |")
    size = num(get(rss, "module_bytes")) or num(get(run, "module_bytes"))
    floor = num(get(rss, "floor_bytes"))
    why = "neither memory-rss.json nor run.json gives it"
    lines.append(f"| module size | | | {kb(floor)} | {kb(size)} ({'-' if size is None else f'{size:,.0f} bytes'}) | "
                 f"| D <= {SIZE_BYTES // 1000} KB | "
                 f"{verdict(None if size is None else size <= SIZE_BYTES, why)} |")
    for key, label in (("start_ms", "cold start: Envoy start -> first 200"),
                       ("push_ms", "config push -> new config serving")):
        cell = lambda c: num(get(cold, "configs", c, key))
        n, f, d = cell("N"), cell("F"), cell("D")
        x = d / f if d is not None and f else None
        why = cold_note if cold is None else "memory-cold.json has no D and F"
        lines.append(f"| {label} | | {ms(n)} | {ms(f)} | {ms(d)} | {'-' if x is None else f'{x:.1f}x'} | "
                     f"D <= {COLD_X_F}x F | {verdict(None if x is None else x <= COLD_X_F, why)} |")
    return lines


# --------------------------------------------------------------------------- growth table
def round_growth(lo: dict, hi: dict, k: str) -> list[float]:
    """Per-round CPU growth of configuration k from point lo to point hi (rounds pair up:
    every round measures every point of a configuration one after the other)."""
    a, b = get(lo, "cpu_rounds", k), get(hi, "cpu_rounds", k)
    if not isinstance(a, list) or not isinstance(b, list):
        return []
    return [y - x for x, y in zip(a, b) if num(x) is not None and num(y) is not None]


def compare_growth(d: list[float], other: list[float], name: str) -> str:
    """How D's per-round growth compares with another configuration's: faster or slower
    only when every round says so by more than GROWTH_TOLERANCE_US, else within noise
    (with the rounds' range, so the reader sees how wide the noise was)."""
    diffs = [x - y for x, y in zip(d, other)]
    if len(diffs) < 2:
        return "no data"
    lo, hi = min(diffs), max(diffs)
    if lo > GROWTH_TOLERANCE_US:
        return f"**D grows faster than {name}** (every round, {lo:+.1f} to {hi:+.1f} us)"
    if hi < -GROWTH_TOLERANCE_US:
        return f"D grows less than {name} (every round, {lo:+.1f} to {hi:+.1f} us)"
    return f"as {name}, within noise (rounds {lo:+.1f} to {hi:+.1f} us)"


def growth_table(points: list[dict]) -> list[str]:
    """The growth points (bench/growth.py and bench/memory.py) as two tables: every point,
    then for each dimension the growth from its smallest to its largest point."""
    lines = ["| grows | workload | N: jwt_authn CPU/req | D: this filter CPU/req | D - N | "
             "F: floor CPU/req | N: RSS c2 | D: RSS c2 |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    bad = []
    for p in points:
        n, d = num(get(p, "cpu_us", "N")), num(get(p, "cpu_us", "D"))
        diff = f"{d - n:+.1f} us" if n is not None and d is not None else "-"
        cells = []
        for k in ("N", "D", "F"):
            v = num(get(p, "cpu_us", k))
            non2xx = num(get(p, "non2xx", k)) or 0
            cells.append("-" if v is None else us(v) + (" (!)" if non2xx else ""))
            if non2xx:
                bad.append(f"{p.get('label')}, {k}: {non2xx:.0f} responses were not 200")
        lines.append(f"| {p.get('label', '?')} | {p.get('workload', '')} | {cells[0]} | {cells[1]} | {diff} | "
                     f"{cells[2]} | {mib(num(get(p, 'rss_kib', 'N')))} | {mib(num(get(p, 'rss_kib', 'D')))} |")
    if bad:
        lines += ["", "(!) not every request was answered 200, so that figure is not the cost of "
                  "a served request: " + "; ".join(bad) + "."]
    lines += ["", "| as it grows (smallest -> largest) | N: CPU growth | D: CPU growth | D's - N's | "
              "D against N | F: CPU growth | D against F | N: RSS growth | D: RSS growth |",
              "|---|---:|---:|---:|---|---:|---|---:|---:|"]
    dims: dict[str, list[dict]] = {}
    for p in points:
        dims.setdefault(str(p.get("dim", "?")), []).append(p)
    for dim, ps in dims.items():
        ps = sorted(ps, key=lambda p: num(p.get("value")) or 0)
        lo, hi = ps[0], ps[-1]

        def grow(field: str, k: str) -> float | None:
            a, b = num(get(lo, field, k)), num(get(hi, field, k))
            return b - a if a is not None and b is not None else None
        ng, dg, fg = grow("cpu_us", "N"), grow("cpu_us", "D"), grow("cpu_us", "F")
        delta = "-" if ng is None or dg is None else f"{dg - ng:+.1f} us"
        rounds = {k: round_growth(lo, hi, k) for k in ("N", "D", "F")}
        vs_n = compare_growth(rounds["D"], rounds["N"], "N") if len(ps) >= 2 else "no data"
        vs_f = compare_growth(rounds["D"], rounds["F"], "F") if rounds["F"] else "-"
        sign = lambda x: "-" if x is None else f"{x:+.1f} us"
        rsign = lambda x: "-" if x is None else f"{x / 1024:+.1f} MiB"
        lines.append(f"| {dim}: {lo.get('label', '?')} -> {hi.get('label', '?')} | {sign(ng)} | {sign(dg)} | "
                     f"{delta} | {vs_n} | {sign(fg)} | {vs_f} | "
                     f"{rsign(grow('rss_kib', 'N'))} | {rsign(grow('rss_kib', 'D'))} |")
    return lines


def growth_method(growth: dict) -> str:
    m = growth.get("cpu_method")
    if not m:
        return "CPU per request was not measured in this run (GROWTH_CPU=0)."
    return (f"CPU per request: {m}. RSS: Envoy VmRSS with --concurrency 2 after warm-up "
            "(bench/memory.py), where measured. ")


# --------------------------------------------------------------------------- main
def summary() -> str:
    pinned, pinned_note = load("pinned.json")
    run, run_note = load("run.json")
    rss, rss_note = load("memory-rss.json")
    cold, cold_note = load("memory-cold.json")
    growth, growth_note = load("memory-growth.json")
    out = [f"# Performance goals, summary {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
           "", f"Inputs ({RESULTS}):", ""]
    for name, note in (("pinned.json", pinned_note), ("run.json", run_note), ("memory-rss.json", rss_note),
                       ("memory-cold.json", cold_note), ("memory-growth.json", growth_note)):
        out.append(f"- {name}: {note}")
    machine = get(run, "machine") or get(rss, "machine") or get(cold, "machine") or get(growth, "machine")
    if machine:
        out += ["", f"Machine: {machine}."]
    present = [x for x in (pinned, run, rss, cold, growth) if x is not None]
    ids = {get(x, "run_id") for x in present}
    if len(ids) == 1 and None not in ids:
        out += ["", f"All inputs come from one `./build.sh bench` run ({ids.pop()})."]
    elif present:
        out += ["", "The inputs do not all come from one `./build.sh bench` run: compare their dates."]
    out += ["", "## Goals", "",
            *goals_table(run, run_note, rss, rss_note, cold, cold_note, pinned), "",
            "CPU per request: the Envoy under test's CPU time over the wrk run divided by its "
            "requests, median over rounds; "
            + (f"pinned ({get(pinned, 'method')}). " if pinned is not None else
               "from bench/run.py (--concurrency 2, wrk and the upstream sharing the two cores; "
               "pinned.json was missing, so these are noisier than the goal asks). ")
            + "Native is C "
            "(jwt_authn with its token cache) on W1 and B (without) on W2 and W4. RSS per worker "
            "is Envoy's VmRSS with --concurrency 2 after warm-up, divided by 2; F has no "
            "configuration, so the large-config row compares D's large config with the same F. "
            "Cold start: medians of bench/memory.py's cold runs, D over F as a ratio.", ""]
    out += ["## Cost as the work grows", ""]
    if growth is None:
        out += [f"No growth figures: memory-growth.json is {growth_note}.", ""]
    else:
        points = growth.get("points")
        points = [p for p in points if isinstance(p, dict)] if isinstance(points, list) else []
        out += [growth_method(growth), "", *growth_table(points), "",
                "A dimension reads \"D grows faster\" (or less) than N, or than the floor F, only "
                "when D's growth from the smallest to the largest point exceeds the other's in "
                f"every round by more than {GROWTH_TOLERANCE_US} us (GROWTH_TOLERANCE_US); "
                "otherwise it reads \"within noise\" with the rounds' range. F is measured "
                "where it does D's work (the header rows).", ""]
    return "\n".join(out)


def main() -> None:
    text = summary()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "summary.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
