"""Smoke runs of the fuzz, benchmark and tool scripts that no other test runs: each one
starts and does its cheap part (no fuzzing, no load, no benchmark) on small input."""
from __future__ import annotations

import csv
import json
import os
import pathlib
import re
import shutil
import struct
import subprocess
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.integration.harness import ROOT

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NO_MATPLOTLIB = "matplotlib is not installed: ./build.sh setup installs it (tests/requirements.txt)"


def run(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_make_seeds_writes_the_hand_made_seeds(tmp_path):
    out = run("-m", "fuzz.make_seeds", str(tmp_path))
    assert out.returncode == 0, out.stderr
    for target in ("token", "jwks", "config", "extract", "decide"):
        assert any((tmp_path / target).iterdir()), target
    assert (tmp_path / "token" / "valid_RS256").read_bytes().count(b".") == 2


def test_bench_scripts_import_without_running():
    """The benchmark scripts load (their imports and module-level setup) without
    starting a measurement, from the repository root, as when ./build.sh bench runs them."""
    out = run("-c", "import bench.run, bench.pinned, bench.memory, bench.growth, bench.summary")
    assert out.returncode == 0, out.stderr



def png_size(path: pathlib.Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    return struct.unpack(">II", data[16:24])


def test_mesh_plot_draws_a_panel_per_mesh_size(tmp_path):
    """tools/mesh_plot.py on a small run in examples/mesh_sim.rs's CSV columns: one PNG per
    scenario with one 2.6-inch panel per mesh size (at 90 dpi), and the summaries of every
    source folder joined under one header."""
    pytest.importorskip("matplotlib", reason=NO_MATPLOTLIB)
    src_a, src_b, out = tmp_path / "a", tmp_path / "b", tmp_path / "out"
    summary_header = "scenario,schedule,n,mean_qps,peak_qps"
    for src, scenario, title, sizes in ((src_a, "steady", "steady state", (100, 1000)),
                                        (src_b, "rollout", "rollout in 60 s", (100,))):
        src.mkdir()
        (src / "scenarios.csv").write_text(f"scenario,title\n{scenario},{title}\n")
        with open(src / "qps.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["scenario", "schedule", "n", "second", "requests", "ok", "throttled", "failed"])
            for n in sizes:
                for schedule in ("fixed", "spread"):
                    for second in range(120):
                        requests = n // 10 if schedule == "fixed" and second % 60 == 0 else 1
                        w.writerow([scenario, schedule, n, second, requests, requests, 0, 0])
        rows = [f"{scenario},{schedule},{n},1.0,{n // 10}" for n in sizes for schedule in ("fixed", "spread")]
        (src / "summary.csv").write_text("\n".join([summary_header, *rows]) + "\n")

    done = run("-m", "tools.mesh_plot", str(out), str(src_a), str(src_b))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(out / "steady.png"), str(out / "rollout.png")]
    for scenario, panels in (("steady", 2), ("rollout", 1)):
        width, height = png_size(out / f"{scenario}.png")
        assert width == 900, (scenario, width)
        assert abs(height - 234 * panels) <= 1, (scenario, height)
    summary = (out / "summary.csv").read_text().splitlines()
    assert summary[0] == summary_header
    assert [r.split(",")[:3] for r in summary[1:]] == [
        ["steady", "fixed", "100"], ["steady", "spread", "100"], ["steady", "fixed", "1000"],
        ["steady", "spread", "1000"], ["rollout", "fixed", "100"], ["rollout", "spread", "100"]]


class FakePrometheus:
    """/api/v1/query_range on 127.0.0.1: two points per query for one series, or, with
    `status`, an error answer; the queries asked are kept in `queries`."""

    def __init__(self, start: float, status: str = "success"):
        self.queries: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                owner.queries.append(query["query"][0])
                result = [{"metric": {"provider": "idp", "reason": "expired"},
                           "values": [[start, "1"], [start + 1, "3"]]}]
                body = json.dumps({"status": status, "data": {"resultType": "matrix", "result": result}}
                                  if url.path == "/api/v1/query_range" else {"status": "error"}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_dashboard_png_draws_the_panels_queries(tmp_path):
    """tools/dashboard_png.py renders the shipped Grafana dashboard's first row of panels
    (all of them take seconds more; test_prometheus.py runs every query on a real
    Prometheus) from a Prometheus: each panel target is asked once, with Grafana's interval
    variables filled in, and the result is a PNG; an error answer is raised, not drawn."""
    pytest.importorskip("matplotlib", reason=NO_MATPLOTLIB)
    from tools import dashboard_png

    dashboard = json.loads((ROOT / "deploy" / "observability" / "dashboard.json").read_text())
    dashboard["panels"] = [p for p in dashboard["panels"] if p["gridPos"]["y"] == 0]
    wanted = sorted(t["expr"].replace("$__rate_interval", "30s").replace("$__range", "1h")
                    for p in dashboard["panels"] for t in p["targets"])
    assert len(wanted) >= 3 and not any("$__" in q for q in wanted)
    start = 1_700_000_000.0
    prom = FakePrometheus(start)
    try:
        png = dashboard_png.render(prom.url, start, start + 60, tmp_path / "dash" / "d.png", "30s",
                                   dashboard=dashboard, subtitle="(smoke)")
    finally:
        prom.close()
    assert png == tmp_path / "dash" / "d.png"
    width, height = png_size(png)
    assert width > 600 and height > 200, (width, height)
    assert sorted(prom.queries) == wanted

    failing = FakePrometheus(start, status="error")
    try:
        with pytest.raises(RuntimeError, match="query_range"):
            dashboard_png.render(failing.url, start, start + 60, tmp_path / "e.png", "30s", dashboard=dashboard)
    finally:
        failing.close()
    assert not (tmp_path / "e.png").exists()


NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="node not found: tools/run_wasi.mjs runs under Node.js (apt-get install nodejs)")
def test_run_wasi_runs_the_verify_timing_example():
    """tools/run_wasi.mjs runs examples/verify_timing.rs built for wasm32-wasip1 (how
    docs/performance.md times the signature paths as wasm), passing its arguments: a few
    iterations print one line per algorithm; with an algorithm named, only that line; no
    module, the usage and status 2."""
    subprocess.run(["cargo", "build", "-q", "--locked", "--release", "--example", "verify_timing",
                    "--target", "wasm32-wasip1"], cwd=ROOT, check=True, timeout=3600)
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    if not target.is_absolute():
        target = ROOT / target
    wasm = target / "wasm32-wasip1" / "release" / "examples" / "verify_timing.wasm"
    assert wasm.exists(), wasm

    def node(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([NODE, "tools/run_wasi.mjs", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=120)

    done = node(str(wasm), "3")
    assert done.returncode == 0, done.stderr
    for alg in ("RS256", "PS256", "ES256", "EdDSA"):
        m = re.search(rf"^{alg} +ours +([0-9.]+) us +jwt-simple +([0-9.]+) us$", done.stdout, re.M)
        assert m, (alg, done.stdout)
        assert float(m[1]) > 0 and float(m[2]) > 0, m[0]

    one = node(str(wasm), "2", "EdDSA")
    assert one.returncode == 0, one.stderr
    assert re.fullmatch(r"EdDSA +ours +[0-9.]+ us\n", one.stdout), one.stdout

    usage = node()
    assert usage.returncode == 2
    assert "usage: node tools/run_wasi.mjs MODULE.wasm" in usage.stderr
