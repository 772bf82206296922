"""Metrics: after a scripted mix of requests, every series the filter defines has the
exact expected value, with its labels, in Envoy's admin /stats/prometheus (the harness's
bootstrap carries the shipped stats_tags). Envoy runs 2 workers (one wasm VM each); the
counters are shared stats, so the values are the sums."""
import json
import pathlib
import re
import time

import yaml

from tests.integration.configs import OTHER_AUDIENCE, OTHER_ISSUER, provider
from tests.integration.harness import ROOT as REPO, STATS_TAGS_FILE, Envoy
from tests.integration.observability import (HOST_CRYPTO_ALGS, OUTCOMES, REASONS, all_series, prometheus,
                           series, stat_name, values)
from tests.support.tokens import jwks_subset, jwks_text, make_token, tamper_payload, unsigned_token

ROOT = pathlib.Path(__file__).resolve().parents[2]

METRICS = {
    "providers": {
        # The token cache is off: which of the 2 workers sees a repeated token
        # varies, so hit/miss counts would too (the cache has its own tests).
        "a": provider(jwt_cache_config={"disabled": True}),
        "b-idp": provider(issuer=OTHER_ISSUER, audiences=[OTHER_AUDIENCE],
                          local_jwks={"inline_string": jwks_subset("rsa-b")},
                          from_headers=[{"name": "x-b-token"}],
                          jwt_cache_config={"disabled": True}),
    },
    "rules": [
        {"match": {"prefix": "/public"}},
        {"match": {"prefix": "/scoped"}, "requires": {"provider_name": "a"}, "required_scopes": ["read"],
         "name": "scoped"},
        {"match": {"prefix": "/report"}, "requires": {"provider_name": "a"}, "mode": "report",
         "name": "shadow"},
        {"match": {"prefix": "/any"}, "requires": {"requires_any": {"requirements": [
            {"provider_name": "a"}, {"provider_name": "b-idp"}]}}},
        {"match": {"prefix": "/"}, "requires": {"provider_name": "a"}},
    ],
    "bypass_cors_preflight": True,
}


def scripted_mix(proxy) -> dict[str, float]:
    """Sends the mix; returns the expected non-zero values by series key."""
    def get(path, status, **kw):
        reply = proxy.get(path, **kw)
        assert reply.status == status, (path, reply)

    get("/public", 200)
    for _ in range(3):
        get("/api", 200, token=make_token())
    get("/api", 401)                                                     # missing (a)
    get("/api", 401, token=make_token(claims={"exp": 1000}))             # expired
    get("/api", 401, token=tamper_payload(make_token(), sub="x"))        # bad_signature
    get("/api", 401, token=make_token(kid="nope"))                       # unknown_kid
    get("/api", 401, token=make_token(claims={"iss": "https://evil.test"}))  # issuer
    get("/api", 401, token=make_token(claims={"aud": "nobody"}))         # audience
    get("/api", 401, token="a.b")                                        # malformed
    get("/api", 401, token=unsigned_token())                             # alg_not_allowed
    get("/scoped", 200, token=make_token(claims={"scope": "read"}))
    get("/scoped", 403, token=make_token())                              # insufficient_scope
    get("/report", 200)                                                  # would deny: missing
    get("/report", 200, token=make_token(claims={"exp": 1000}))          # would deny: expired
    get("/report", 200, token=make_token())
    b_token = make_token(kid="rsa-b", key="rsa2048b.pem", claims={"iss": OTHER_ISSUER, "aud": OTHER_AUDIENCE})
    get("/any", 200, headers={"x-b-token": b_token})
    get("/any", 401)                                                     # missing (no provider)
    for _ in range(2):
        reply = proxy.request("OPTIONS", "/api", headers={
            "Origin": "https://app.test", "Access-Control-Request-Method": "GET"})
        assert reply.status != 401, reply
    n_keys = len(json.loads(jwks_text())["keys"])
    dec = "jwt_filter_decisions_total"

    def deny(reason, n=1):
        return {series(dec, decision="deny", reason=reason, mode="enforce"): n}

    def prov(p, d, n):
        return {series("jwt_filter_provider_decisions_total", provider=p, decision=d): n}

    def rule(r, d, n):
        return {series("jwt_filter_rule_decisions_total", rule=r, decision=d): n}

    def gauge(name, p, n):
        return {series(f"jwt_filter_{name}", provider=p, key_source="local"): n}

    def took(outcome, n):
        return {series("jwt_filter_decision_duration_microseconds_count", outcome=outcome): n}

    return {
        # 3 /api + /scoped + /any allowed (enforce), 1 /report allowed (report)
        series(dec, decision="allow", reason="none", mode="enforce"): 5,
        series(dec, decision="allow", reason="none", mode="report"): 1,
        **deny("missing", 2), **deny("expired"), **deny("bad_signature"), **deny("unknown_kid"),
        **deny("issuer"), **deny("audience"), **deny("malformed"), **deny("alg_not_allowed"),
        **deny("insufficient_scope"),
        series(dec, decision="would_deny", reason="missing", mode="report"): 1,
        series(dec, decision="would_deny", reason="expired", mode="report"): 1,
        "jwt_filter_cors_preflight_bypassed_total": 2,
        **prov("a", "allow", 5), **prov("a", "deny", 9), **prov("b-idp", "allow", 1),
        **rule("scoped", "allow", 1), **rule("scoped", "deny", 1),
        **rule("shadow", "allow", 1), **rule("shadow", "would_deny", 2),
        **gauge("jwks_keys", "a", n_keys), **gauge("jwks_keys", "b-idp", 1),
        # Every decision is timed once: 6 allowed after a signature check (the cache
        # is off), 10 denied + 2 would-deny.
        **took("verified", 6), **took("denied", 12),
        # Envoy 1.40 verifies these with BoringSSL (host_crypto defaults to on).
        **{series("jwt_filter_host_crypto", alg=a): 1 for a in HOST_CRYPTO_ALGS},
    }


PROVIDERS = [("a", "local"), ("b-idp", "local")]
NAMED_RULES = [("scoped", "enforce"), ("shadow", "report")]


def wait_for_histograms(proxy, want: int, timeout: float = 10.0) -> None:
    """Histograms reach /stats/prometheus at Envoy's stats flush: waits until `want`
    decisions are counted."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = values(proxy)
        n = sum(v for k, v in got.items() if "_duration_microseconds_count" in k)
        if n >= want:
            return
        time.sleep(0.2)


def test_every_metric_has_the_exact_expected_value(envoy):
    proxy = envoy(METRICS)
    expected = scripted_mix(proxy)
    wait_for_histograms(proxy, 18)
    got = prometheus(proxy)
    got = {k: t for k, t in got.items()
           if k.startswith("jwt_filter_") and not re.match(r"^\w+_(bucket|sum)\b", k)}
    defined = all_series("jwt_filter", PROVIDERS, NAMED_RULES)
    # Exactly the series we define, each with its type...
    assert {k: t for k, (t, _) in got.items()} == defined
    # ...and every value as expected (all others 0; key ages are 0 for local keys).
    want = {name: float(expected.get(name, 0)) for name in defined}
    assert {k: v for k, (_, v) in got.items()} == want


def test_histogram_buckets_hold_every_decision(envoy):
    proxy = envoy(METRICS)
    scripted_mix(proxy)
    wait_for_histograms(proxy, 18)
    got = prometheus(proxy)
    h = "jwt_filter_decision_duration_microseconds"
    for outcome, n in (("verified", 6), ("denied", 12), ("cache_hit", 0)):
        buckets = sorted(((float(re.search(r'le="([^"]+)"', k).group(1)), v)
                          for k, (_, v) in got.items()
                          if k.startswith(h + "_bucket{") and f'outcome="{outcome}"' in k))
        assert buckets, outcome
        counts = [v for _, v in buckets]
        assert counts == sorted(counts) and counts[-1] == n, (outcome, buckets)
        total = got[series(h + "_sum", outcome=outcome)][1]
        # Microseconds: a decision takes more than 0 and (on any machine) under a second.
        assert (total > 0) == (n > 0) and total <= n * 1_000_000, (outcome, total)


def test_decision_histogram_false_drops_only_the_histogram(envoy):
    on, off = envoy(METRICS), envoy({**METRICS, "decision_histogram": False})
    expected = scripted_mix(on)
    assert scripted_mix(off) == expected
    wait_for_histograms(on, 18)
    # Both Envoys flush stats every second: two flushes later the off one has shown
    # whatever it would.
    time.sleep(2.5)
    h = "jwt_filter_decision_duration_microseconds"
    with_h = prometheus(on)
    assert any(k.startswith(h + "_bucket{") for k in with_h)
    assert with_h[series(h + "_count", outcome="denied")][1] == 12
    got = prometheus(off)
    assert not [k for k in got if k.startswith(h)], "histogram series with decision_histogram false"
    got = {k: v for k, (_, v) in got.items() if k.startswith("jwt_filter_")}
    # Every other series is there with the same value as with the histogram on.
    defined = {k for k in all_series("jwt_filter", PROVIDERS, NAMED_RULES) if not k.startswith(h)}
    assert set(got) == defined
    assert got == {k: float(expected.get(k, 0)) for k in defined}


def documented_metrics() -> dict[str, set[str]]:
    """Prometheus name -> label names, from docs/observability.md's metric table
    (rows `| `jwt_filter_...` | label, label | type | meaning |`)."""
    text = (REPO / "docs" / "observability.md").read_text()
    out = {}
    rows = re.findall(r"^\| `(jwt_filter_[a-z0-9_]+)` \| ([^|]*) \| (?:counter|gauge|histogram) \|",
                      text, re.M)
    for name, labels in rows:
        out[name] = {l.strip(" `") for l in labels.split(",") if l.strip(" `-")}
    return out


def test_documented_metrics_are_the_defined_ones():
    documented = documented_metrics()
    assert documented, "no metric names found in the docs"
    want: dict[str, set[str]] = {}
    for key in all_series("jwt_filter", [("p", "local"), ("q", "remote")], [("r", "enforce")]):
        name = key.split("{")[0].removesuffix("_count")
        labels = set(re.findall(r'(\w+)="', key))
        want.setdefault(name, set()).update(labels)
    assert documented == want


def shipped_bootstraps() -> list[pathlib.Path]:
    return sorted(p for d in ("envoy", "examples") for p in (REPO / d).rglob("*.yaml")
                  if re.search(r"^static_resources:", p.read_text(), re.M))


def test_shipped_bootstraps_carry_the_stats_tags():
    """Every example bootstrap gives the filter's metrics their labels."""
    want = yaml.safe_load(STATS_TAGS_FILE.read_text())["stats_config"]["stats_tags"]
    labels = {t["tag_name"] for t in want}
    # The file covers every label key the filter writes (src/metrics.rs LABELS).
    src = (REPO / "src" / "metrics.rs").read_text()
    block = re.search(r"pub const LABELS: \[&str; \d+\] = \[(.*?)\];", src, re.S).group(1)
    assert labels == set(re.findall(r'"(\w+)"', block))
    boots = shipped_bootstraps()
    assert len(boots) >= 3, boots
    for path in boots:
        tags = yaml.safe_load(path.read_text()).get("stats_config", {}).get("stats_tags", [])
        missing = [t for t in want if t not in tags]
        assert not missing, f"{path.relative_to(REPO)} lacks stats_tags {missing}"


def test_without_stats_tags_names_are_flat_but_complete(echo_port):
    """Without the stats_tags every series is still there, the labels flattened into
    the name (Envoy replaces each character outside [a-zA-Z0-9_] by `_`)."""
    proxy = Envoy(echo_port, METRICS)
    boot = yaml.safe_load(proxy.config_path.read_text())
    del boot["stats_config"]
    proxy.config_path.write_text(yaml.safe_dump(boot, sort_keys=False))
    try:
        proxy.start()
        proxy.get("/api", token=make_token(claims={"exp": 1000}))
        got = values(proxy)
        flat = "jwt_filter_decision___deny___reason___expired___mode___enforce___decisions_total"
        assert got[flat] == 1
        # 2 allow + a deny and a would-deny per reason, 2 providers x 2, 2 named rules x 2
        assert len([k for k in got if "decisions_total" in k]) == 2 + 2 * len(REASONS) + 4 + 4
        assert not any("{" in k for k in got)
    finally:
        proxy.stop()


def test_stat_prefix(envoy):
    proxy = envoy(dict(METRICS, stat_prefix="edge.jwt"))
    proxy.get("/api")
    got = values(proxy, "edge_jwt_")
    assert got[series("edge_jwt_decisions_total", decision="deny", reason="missing", mode="enforce")] == 1
    assert not values(proxy, "jwt_filter_")
    raw = stat_name("edge.jwt", "decisions_total", ("decision", "deny"), ("reason", "missing"),
                    ("mode", "enforce"))
    assert proxy.stats("edge")[raw] == 1


def test_label_values_are_bounded(envoy):
    """Whatever a request carries (path, token claims, kid), label values only come from
    the configuration and fixed sets."""
    proxy = envoy(METRICS)
    proxy.get("/api/SECRETPATH?x=1", token=make_token(kid="EVILKID", claims={"sub": "EVILSUB"}))
    proxy.get("/api", token=make_token(claims={"sub": "EVILSUB2", "exp": 1000}))
    text = "\n".join(prometheus(proxy))
    for bad in ("SECRETPATH", "EVILKID", "EVILSUB"):
        assert bad not in text
    allowed = set(REASONS) | set(OUTCOMES) | set(HOST_CRYPTO_ALGS) | {
        "allow", "deny", "would_deny", "none", "enforce", "report", "a", "b-idp", "scoped",
        "shadow", "local", "remote", "hit", "miss", "success", "failure"}
    for key in prometheus(proxy):
        if key.startswith("jwt_filter_"):
            for label, value in re.findall(r'(\w+)="([^"]*)"', key):
                assert label == "le" or value in allowed, key


def test_demo_bootstrap_shows_labelled_series(echo_port):
    """envoy/envoy.yaml as shipped (ports moved to free ones, the echo cluster to the
    test's backend): /stats/prometheus has labelled series."""
    proxy = Envoy(echo_port, None, with_filter=False)
    boot = yaml.safe_load((REPO / "envoy" / "envoy.yaml").read_text())
    boot["admin"]["address"]["socket_address"]["port_value"] = 0
    boot["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"] = 0
    for c in boot["static_resources"]["clusters"]:
        for e in c["load_assignment"]["endpoints"]:
            for lb in e["lb_endpoints"]:
                lb["endpoint"]["address"]["socket_address"].update(address="127.0.0.1", port_value=echo_port)
    proxy.config_path.write_text(yaml.safe_dump(boot, sort_keys=False))
    try:
        proxy.start()
        assert proxy.get("/hello").status == 401
        got = values(proxy)
        assert got[series("jwt_filter_decisions_total", decision="deny", reason="missing", mode="enforce")] == 1
        assert got[series("jwt_filter_provider_decisions_total", provider="demo", decision="deny")] == 1
        assert got[series("jwt_filter_jwks_keys", provider="demo", key_source="local")] == 1
    finally:
        proxy.stop()
