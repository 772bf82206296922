"""Short form of the load-with-faults run (tests/load/load_faults.py; the long form is
`./build.sh load [SECONDS]`): ~20 s of valid / expired / forged / revoked-key / missing
tokens against Envoy --concurrency 2 while the remote JWKS rotates keys, answers 500,
hangs, serves garbage and an empty set, and comes back. Zero wrong verdicts, zero 5xx,
no VM restart, bounded RSS growth."""
from __future__ import annotations

import json
import os

from tests.load import load_faults

DURATION = float(os.environ.get("LOAD_FAULTS_SECONDS", "20"))


def test_load_with_jwks_faults_short():
    report = load_faults.run(duration=DURATION, clients=3, quiet=True)
    summary = {k: report.get(k) for k in ("requests", "requests_per_s", "wrong_verdicts", "http_5xx",
                                          "connection_errors", "envoy_rss_kib", "key_rotations",
                                          "keys_revoked", "jwks_answers_by_mode", "failures")}
    print(json.dumps(summary))
    assert report["ok"], json.dumps(report, indent=1)[:4000]
    assert report["requests"] > 200, summary
    classes = report["by_class"]
    for cls in ("valid", "expired", "forged", "missing"):
        assert cls in classes, classes
    # The run went through rotations and every fault mode.
    assert report["key_rotations"] >= 1, summary
    faults = {"500", "hang", "garbage", "empty"} & set(report["jwks_answers_by_mode"])
    assert len(faults) >= 3, summary
