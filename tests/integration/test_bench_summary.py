"""The benchmark's goals summary (bench/summary.py) on made-up inputs, and the padded
tokens of the growth step (bench/growth.py) through the real filter."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def summarize(results: pathlib.Path) -> tuple[str, dict[str, str]]:
    """Runs bench/summary.py on `results` as ./build.sh bench does (`python -m bench.summary`
    from the repository root); (its output, goal rows by their first cell)."""
    out = subprocess.run([sys.executable, "-m", "bench.summary"], cwd=ROOT,
                         env={**os.environ, "BENCH_RESULTS": str(results)},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert (results / "summary.md").read_text().strip() == out.stdout.strip()
    rows = {}
    for line in out.stdout.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 8:
            rows[cells[0]] = line
    return out.stdout, rows


def write(results: pathlib.Path, name: str, doc: dict) -> None:
    (results / name).write_text(json.dumps({"date": "2026-12-01 10:00 UTC", "run_id": "r1", **doc}))


def test_no_inputs_says_so_for_every_goal(tmp_path):
    text, rows = summarize(tmp_path)
    goals = [r for k, r in rows.items() if k != "what"]
    assert len(goals) == 8
    assert all("no data" in r for r in goals)
    assert "run.json: missing" in text
    assert "No growth figures: memory-growth.json is missing" in text


def test_unreadable_input_is_named(tmp_path):
    (tmp_path / "memory-cold.json").write_text("{not json")
    text, rows = summarize(tmp_path)
    assert "memory-cold.json: unreadable" in text
    assert "no data: unreadable" in rows["cold start: Envoy start -> first 200"]


def test_goals_met_and_not_met(tmp_path):
    cpu = lambda **kw: {c: {"cpu_us": v} for c, v in kw.items()}
    write(tmp_path, "run.json", {"module_bytes": 599_999, "workloads": {
        "W1": cpu(A=29.0, C=30.0, F=31.8, D=32.3),   # D over F +0.5: met
        "W2": cpu(A=29.0, B=49.2, F=49.8, D=52.5),   # +2.7: not met
        # W4 left out: no data
    }})
    mib = 1024
    write(tmp_path, "memory-rss.json", {"module_bytes": 599_999, "floor_bytes": 32_000, "rows": {
        "N": {"c2_kib": 66 * mib}, "F": {"c2_kib": 86 * mib}, "D": {"c2_kib": 94 * mib},  # +28 over N
        "N-large": {"c2_kib": 68 * mib}, "D-large": {"c2_kib": 108 * mib}}})             # +40 over N
    write(tmp_path, "memory-cold.json", {"configs": {
        "N": {"start_ms": 200, "push_ms": 16}, "F": {"start_ms": 400, "push_ms": 20},
        "D": {"start_ms": 1400, "push_ms": 40}}})
    text, rows = summarize(tmp_path)
    assert "All inputs come from one `./build.sh bench` run (r1)" in text
    w1 = rows["CPU per request, W1 (one token reused)"]
    assert "+0.5 us" in w1 and w1.endswith("| met |")
    w2 = rows["CPU per request, W2 (new RS256 tokens)"]
    assert "+2.7 us" in w2 and "**not met**" in w2
    assert "no data: run.json has no W4" in rows["CPU per request, W4 (bad signatures)"]
    assert "+28.0 MiB over N" in rows["Envoy RSS (c2), default config"]
    assert rows["Envoy RSS (c2), default config"].endswith("| met |")
    large = next(r for k, r in rows.items() if k.startswith("Envoy RSS (c2), large"))
    assert "+40.0 MiB over N" in large and "**not met**" in large
    assert rows["module size"].endswith("| met |")
    start = rows["cold start: Envoy start -> first 200"]
    assert "3.5x" in start and "**not met**" in start
    push = rows["config push -> new config serving"]
    assert "2.0x" in push and push.endswith("| met |")
    assert "No growth figures" in text


def test_pinned_cpu_is_preferred_to_the_shared_core_run(tmp_path):
    cpu = lambda **kw: {c: {"cpu_us": v} for c, v in kw.items()}
    write(tmp_path, "run.json", {"workloads": {"W1": cpu(A=29.0, C=30.0, F=31.8, D=35.0)}})
    text, rows = summarize(tmp_path)
    assert "+3.2 us" in rows["CPU per request, W1 (one token reused)"]
    assert "pinned.json was missing" in text
    write(tmp_path, "pinned.json", {"method": "made-up pinning", "workloads": {
        "W1": cpu(A=20.0, C=21.0, F=22.0, D=22.8)}})
    text, rows = summarize(tmp_path)
    w1 = rows["CPU per request, W1 (one token reused)"]
    assert "+0.8 us" in w1 and w1.endswith("| met |")
    assert "pinned (made-up pinning)" in text
    assert "no data: pinned.json has no W2" in rows["CPU per request, W2 (new RS256 tokens)"]


def test_old_module_beside_the_new(tmp_path):
    cpu = lambda **kw: {c: {"cpu_us": v} for c, v in kw.items()}
    write(tmp_path, "pinned.json", {"method": "made-up pinning", "workloads": {
        "W1": cpu(A=20.0, C=21.0, F=22.0, D=22.8, D0=22.0)}})
    _, rows = summarize(tmp_path)
    assert not any("against D0" in k for k in rows), "no baseline given: no D0 rows"
    write(tmp_path, "pinned.json", {"method": "made-up pinning", "workloads": {
        "W1": cpu(A=20.0, C=21.0, F=22.0, D=22.8, D0=22.0),    # 1.04x: met
        "W2": cpu(A=30.0, B=40.0, F=41.0, D=50.0, D0=45.0)},   # 1.11x: not met
        "baseline": {"module": "baseline-bb077e26.wasm", "bytes": 1_074_091}})
    _, rows = summarize(tmp_path)
    w1 = rows["CPU per request, W1, against D0 (baseline-bb077e26.wasm)"]
    assert "1.04x D0" in w1 and w1.endswith("| met |")
    w2 = rows["CPU per request, W2, against D0 (baseline-bb077e26.wasm)"]
    assert "1.11x D0" in w2 and "**not met**" in w2
    assert "no data: pinned.json has no W4 for D and D0" in rows["CPU per request, W4, against D0 (baseline-bb077e26.wasm)"]


def test_growth_reading(tmp_path):
    """Growth is read round by round: faster or less only when every round agrees."""
    def point(dim, value, n, d, f=None, rn=None, rd=None):
        rounds = {"N": n, "D": d, **({"F": f} if f else {})}
        p = {"dim": dim, "value": value, "label": f"{value} {dim}", "workload": "w",
             "cpu_us": {k: sorted(v)[len(v) // 2] for k, v in rounds.items()},
             "cpu_rounds": rounds, "non2xx": {k: 0 for k in rounds}}
        if rn is not None:
            p["rss_kib"] = {"N": rn, "D": rd}
        return p
    write(tmp_path, "memory-growth.json", {"cpu_method": "made up", "points": [
        # D grows by 20 in every round, N by 10: faster in every round
        point("rules", 1, [30, 31, 29], [33, 34, 32], rn=66 * 1024, rd=140 * 1024),
        point("rules", 1000, [40, 41, 39], [53, 54, 52], rn=67 * 1024, rd=140 * 1024),
        # D - N per round +5, -3, +1: within noise; D - F per round +6, +6, +6: faster
        point("headers", 10, [30, 30, 30], [33, 33, 33], f=[31, 31, 31]),
        point("headers", 100, [40, 48, 44], [48, 48, 48], f=[35, 35, 35]),
        # D +6, N +10 in every round: less
        point("tokens", 0.5, [50, 50], [54, 54]), point("tokens", 8, [60, 60], [60, 60]),
    ]})
    text, _ = summarize(tmp_path)
    lines = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    rules = lines["rules: 1 rules -> 1000 rules"]
    assert "**D grows faster than N** (every round, +10.0 to +10.0 us)" in rules
    assert "+1.0 MiB" in rules
    headers = lines["headers: 10 headers -> 100 headers"]
    assert "as N, within noise (rounds -3.0 to +5.0 us)" in headers
    assert "**D grows faster than F** (every round, +11.0 to +11.0 us)" in headers
    assert "+4.0 us" in headers  # F's growth
    tokens = lines["tokens: 0.5 tokens -> 8 tokens"]
    assert "D grows less than N (every round" in tokens
    assert tokens.count("| - |") >= 2  # no F on this row: no F growth, no comparison
    assert lines["100 headers"].split("|")[6].strip() == "35.0 us"  # F's CPU per request


@pytest.mark.parametrize("size", [4096, 8192])
def test_padded_tokens_are_served(shared_envoy, size):
    """The growth step's large tokens have the size they claim and pass the filter, so
    their CPU figure is the cost of a served request."""
    from bench import growth
    from bench import memory

    exp = int(time.time()) + 3600
    tokens = growth._mint_padded((size, 0, 2, exp))
    assert all(size - 8 <= len(t) <= size for t in tokens)
    proxy = shared_envoy(memory.jwt_config(), concurrency=1)
    for t in tokens:
        assert proxy.get("/api", headers={"Authorization": f"Bearer {t}"}).status == 200
