"""Metrics: after a scripted mix of requests, every metric the README lists has
the exact expected value in Envoy's admin /stats/prometheus. Envoy runs 2 workers (one
wasm VM each); the counters are shared stats, so the values are the sums."""
import json
import pathlib
import re

from configs import OTHER_AUDIENCE, OTHER_ISSUER, provider
from observability import HOST_CRYPTO_ALGS, all_metric_names, prometheus
from tokens import jwks_subset, jwks_text, make_token, tamper_payload, unsigned_token

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
        {"match": {"prefix": "/scoped"}, "requires": {"provider_name": "a"}, "required_scopes": ["read"]},
        {"match": {"prefix": "/report"}, "requires": {"provider_name": "a"}, "mode": "report"},
        {"match": {"prefix": "/any"}, "requires": {"requires_any": {"requirements": [
            {"provider_name": "a"}, {"provider_name": "b-idp"}]}}},
        {"match": {"prefix": "/"}, "requires": {"provider_name": "a"}},
    ],
    "bypass_cors_preflight": True,
}


def scripted_mix(proxy) -> dict[str, float]:
    """Sends the mix; returns the expected non-zero values."""
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
    return {
        "jwt_filter_allowed": 6,
        "jwt_filter_denied": 10,
        "jwt_filter_denied_missing": 2,
        "jwt_filter_denied_expired": 1,
        "jwt_filter_denied_bad_signature": 1,
        "jwt_filter_denied_unknown_kid": 1,
        "jwt_filter_denied_issuer": 1,
        "jwt_filter_denied_audience": 1,
        "jwt_filter_denied_malformed": 1,
        "jwt_filter_denied_alg_not_allowed": 1,
        "jwt_filter_denied_insufficient_scope": 1,
        "jwt_filter_report_would_deny": 2,
        "jwt_filter_report_would_deny_missing": 1,
        "jwt_filter_report_would_deny_expired": 1,
        "jwt_filter_cors_preflight_bypassed": 2,
        "jwt_filter_provider_a_allowed": 5,
        "jwt_filter_provider_a_denied": 9,
        "jwt_filter_provider_b_idp_allowed": 1,
        "jwt_filter_provider_a_jwks_keys": n_keys,
        "jwt_filter_provider_b_idp_jwks_keys": 1,
        # Envoy 1.40 verifies these with BoringSSL (host_crypto defaults to on).
        **{f"jwt_filter_host_crypto_{a}": 1 for a in HOST_CRYPTO_ALGS},
    }


def documented_metric_names() -> set[str]:
    """The Prometheus names listed in docs/observability.md's metric table."""
    # First column of the metric table rows: | `jwt_filter_...` | ...
    text = (ROOT / "docs" / "observability.md").read_text()
    return set(re.findall(r"^\| `(jwt_filter_[a-z0-9_<>]+)` \|", text, re.M))


def test_every_metric_has_the_exact_expected_value(envoy):
    proxy = envoy(METRICS)
    expected = scripted_mix(proxy)
    got = {k: v for k, v in prometheus(proxy).items() if k.startswith("jwt_filter_")}
    defined = all_metric_names("jwt_filter", ["a", "b-idp"])
    # Exactly the metrics we define, each with its type...
    assert {k: t for k, (t, _) in got.items()} == defined
    # ...and every value as expected (all others 0; key ages are 0 for local keys).
    want = {name: float(expected.get(name, 0)) for name in defined}
    assert {k: v for k, (_, v) in got.items()} == want


def test_documented_metrics_are_the_defined_ones():
    documented = documented_metric_names()
    assert documented, "no metric names found in the docs"
    reasons = set(all_metric_names("jwt_filter", []))
    per_provider = {f"jwt_filter_provider_<name>_{s}" for s in
                    ("allowed", "denied", "jwks_keys", "jwks_age_seconds")}
    host = {f"jwt_filter_host_crypto_{a}" for a in HOST_CRYPTO_ALGS}
    reasons -= host
    per_alg = {"jwt_filter_host_crypto_<alg>"}
    want = reasons | per_provider | per_alg
    assert documented == want, sorted(documented ^ want)


def test_stat_prefix(envoy):
    proxy = envoy(dict(METRICS, stat_prefix="edge.jwt"))
    proxy.get("/api")
    got = prometheus(proxy)
    assert got["edge_jwt_denied"][1] == 1
    assert got["edge_jwt_denied_missing"][1] == 1
    assert "jwt_filter_denied" not in got
    stats = proxy.stats("edge")
    assert stats["wasmcustom.edge.jwt.denied"] == 1
