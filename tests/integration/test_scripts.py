"""Smoke runs of the fuzz and benchmark scripts that no other test runs: each one starts
and does its cheap part (no fuzzing, no load, no benchmark)."""
from __future__ import annotations

import subprocess
import sys

from tests.integration.harness import ROOT


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

