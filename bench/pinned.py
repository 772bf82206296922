"""Envoy CPU per request, measured as steadily as this 2-core machine allows.

`bench/run.py` measures the reference setup (--concurrency 2, wrk -t2, all sharing both
cores), where run-to-run noise is several per cent. To judge a change of a microsecond,
this tool pins things apart instead: every Envoy under test runs one worker on CPU 1,
the upstream Envoy and wrk run on CPU 0. Configurations alternate within each round;
it prints the median and minimum CPU microseconds per request over the rounds.

    python -m bench.pinned WORKLOAD CONFIG...   e.g.  python -m bench.pinned W1 A C D F
    CONFIG: A | B | C | D | F | Dh (as in run.py), or a path to another build of the
            filter's .wasm, run as D (to compare builds side by side);
            `python -m bench.pinned W1 D Dh` resolves the decision histogram's cost
    PIN_SECONDS=4 PIN_ROUNDS=5

    python -m bench.pinned goals
            the CPU rows of the goals table: W1 with A C D F, W2 and W4 with A B D F, and
            D0 (the module PIN_BASELINE names, an older build: ./build.sh bench sets it)
            beside them; also writes bench/results/pinned.json (or
            BENCH_RESULTS/pinned.json), which bench/summary.py prefers to run.json for
            those rows. The last-but-one step of ./build.sh bench.

(From the repository root, as every script here: the repository root is the import root.)

Not a substitute for `./build.sh bench`: it answers "which is cheaper, by how much",
not "how fast under the reference load".
"""
from __future__ import annotations

import datetime
import json
import os
import pathlib
import statistics
import sys
import tempfile

from bench import run as bench

SECONDS = int(os.environ.get("PIN_SECONDS", "4"))
ROUNDS = int(os.environ.get("PIN_ROUNDS", "5"))


def pin(pid: int, cpu: int) -> None:
    for tid in os.listdir(f"/proc/{pid}/task"):
        os.sched_setaffinity(int(tid), {cpu})


GOALS = {"W1": ["A", "C", "D", "F"], "W2": ["A", "B", "D", "F"], "W4": ["A", "B", "D", "F"]}


def measure(workload: str, configs: list[str]) -> dict[str, list[float]]:
    """CPU us per request of each configuration on `workload`, one figure per round."""
    work = pathlib.Path(tempfile.mkdtemp(prefix="jwt-pinned-"))
    lua = work / "tokens.lua"
    lua.write_text(bench.wrk_script())
    tokens = bench.workload_file(workload)
    (work / "upstream").mkdir()
    upstream = bench.Envoy("A", work / "upstream", base_id=(os.getpid() % 10000) * 10 + 9, concurrency=1)
    upstream.config = "upstream"
    envoys: list[tuple[str, bench.Envoy]] = []
    cpu: dict[str, list[float]] = {}
    try:
        upstream.start()
        pin(upstream.proc.pid, 0)
        for i, c in enumerate(configs):
            if c not in bench.CONFIG_NAMES:
                bench.WASM = pathlib.Path(c).resolve()
            d = work / f"e{i}"
            d.mkdir()
            e = bench.Envoy(c if c in bench.CONFIG_NAMES else "D", d,
                            base_id=(os.getpid() % 10000) * 10 + i, upstream_port=upstream.port,
                            concurrency=1).start()
            pin(e.proc.pid, 1)
            envoys.append((c, e))
        for _ in range(ROUNDS):
            for c, e in envoys:
                r = bench.run_wrk(e, tokens, lua, threads=1, connections=16, seconds=SECONDS,
                                  prefix=("taskset", "-c", "0"))
                cpu.setdefault(c, []).append(r["cpu_us"])
        for c, xs in cpu.items():
            print(f"{workload} {c[-24:]:24} median {statistics.median(xs):6.2f}  min {min(xs):6.2f} "
                  f"us/req   rounds: " + " ".join(f"{x:.1f}" for x in xs), flush=True)
    finally:
        for _, e in envoys:
            e.stop()
        upstream.stop()
    return cpu


def goals() -> None:
    """The goals table's CPU rows, pinned, as JSON for bench/summary.py."""
    workloads = {}
    # PIN_BASELINE (set by ./build.sh bench): an older build of the filter, run as D0 beside D.
    baseline = os.environ.get("PIN_BASELINE")
    for w, configs in GOALS.items():
        cpu = measure(w, configs + ([baseline] if baseline else []))
        workloads[w] = {("D0" if c == baseline else c):
                        {"cpu_us": statistics.median(xs), "cpu_us_min": min(xs), "rounds": len(xs)}
                        for c, xs in cpu.items()}
    out = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "run_id": os.environ.get("BENCH_RUN_ID"),
        "machine": bench.machine().split(", --concurrency")[0],
        "method": f"one Envoy worker pinned to CPU 1, wrk -t1 -c16 and the upstream on CPU 0, "
                  f"{ROUNDS} rounds x {SECONDS} s, configurations alternating; median",
        "workloads": workloads,
        "baseline": {"module": pathlib.Path(baseline).name,
                     "bytes": pathlib.Path(baseline).stat().st_size} if baseline else None,
    }
    bench.RESULTS.mkdir(parents=True, exist_ok=True)
    (bench.RESULTS / "pinned.json").write_text(json.dumps(out, indent=1) + "\n")


def main() -> None:
    if len(sys.argv) == 2 and sys.argv[1] == "goals":
        if os.cpu_count() is None or os.cpu_count() < 2:
            raise SystemExit("needs two CPUs")
        goals()
        return
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    workload, configs = sys.argv[1], sys.argv[2:]
    if os.cpu_count() is None or os.cpu_count() < 2:
        raise SystemExit("needs two CPUs")
    measure(workload, configs)


if __name__ == "__main__":
    main()
