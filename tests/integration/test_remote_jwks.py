"""Remote JWKS: fetching through an Envoy cluster, rotation, unknown-kid
refetch, faults, first-fetch waiting, one fetch for all workers, Cache-Control.

Every test runs Envoy with --concurrency 2 and a JWKS server on 127.0.0.1 that the
test controls (support/jwks_server.py)."""
from __future__ import annotations

import concurrent.futures
import time
import uuid

import pytest

from tests.integration import harness
from tests.integration.checks import eventually
from tests.integration.harness import Envoy, EnvoyStartError
from tests.support.envoy import free_port
from tests.support.jwks_server import JwksServer
from tests.integration.observability import series, values
from tests.support.tokens import ISSUER, jwks_subset, jwks_text, make_token


def fetches(provider: str, result: str) -> str:
    return series("jwt_filter_jwks_fetches_total", provider=provider, result=result)


def key_gauge(name: str, provider: str) -> str:
    return series(f"jwt_filter_{name}", provider=provider, key_source="remote")


def remote_config(port_cluster: str = "jwks", **remote) -> dict:
    rj = {"http_uri": {"uri": "http://idp.test/.well-known/jwks.json", "cluster": port_cluster,
                       "timeout": "1s"},
          "cache_duration": "600s"}
    rj.update(remote)
    return {
        "providers": {"idp": {"issuer": ISSUER, "audiences": ["api"], "remote_jwks": rj,
                              "forward": True}},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "idp"}}],
    }


@pytest.fixture
def jwks_server():
    server = JwksServer(jwks_subset("rsa-a"))
    yield server
    server.close()


@pytest.fixture
def start(echo_port):
    started: list[Envoy] = []

    def factory(config: dict, jwks_port: int, wait_for_keys: bool = True) -> Envoy:
        proxy = Envoy(echo_port, config, concurrency=2,
                      extra_clusters=[harness.static_cluster("jwks", jwks_port)])
        try:
            proxy.start()
        except EnvoyStartError as err:
            pytest.fail(str(err), pytrace=False)
        started.append(proxy)
        if wait_for_keys:
            deadline = time.monotonic() + 10
            while "fetched" not in proxy.log_text() and time.monotonic() < deadline:
                time.sleep(0.05)
        return proxy

    yield factory
    for proxy in started:
        proxy.stop()


def bearer(token: str) -> dict:
    return {"authorization": f"Bearer {token}"}


def status(proxy: Envoy, token: str) -> int:
    return proxy.get("/x", headers=bearer(token)).status


def test_keys_fetched_valid_token_accepted_once_for_all_workers(start, jwks_server):
    proxy = start(remote_config(), jwks_server.port)
    token = make_token("RS256", kid="rsa-a")
    statuses = [status(proxy, token) for _ in range(20)]
    assert statuses == [200] * 20
    assert status(proxy, make_token("RS256", kid="rsa-a", claims={"aud": "other"})) == 401
    time.sleep(1.0)
    # Two workers plus the main thread each run a VM: still a single fetch.
    assert jwks_server.count == 1, jwks_server.requests
    assert proxy.log_text().count("fetched 1 key(s)") == 1
    stats = values(proxy)
    assert stats[fetches("idp", "success")] == 1
    assert stats[fetches("idp", "failure")] == 0
    assert stats[key_gauge("jwks_keys", "idp")] == 1
    assert 0 <= stats[key_gauge("jwks_age_seconds", "idp")] <= 5


def test_rotation_with_short_cache_duration(start, jwks_server):
    jwks_server.max_age = None
    proxy = start(remote_config(cache_duration="1s", min_refetch_interval="60s"), jwks_server.port)
    old = make_token("RS256", kid="rsa-a")
    new = make_token("RS256", kid="rsa-b", key="rsa2048b.pem")
    assert status(proxy, old) == 200
    # Rotate: the IdP now publishes only the new key.
    jwks_server.jwks = jwks_subset("rsa-b")
    assert eventually(lambda: status(proxy, new) == 200), "new key never picked up"
    assert eventually(lambda: status(proxy, old) == 401), "old key still accepted"
    reply = proxy.get("/x", headers=bearer(old))
    assert reply.status == 401
    assert "invalid_token" in reply.www_authenticate


def test_unknown_kid_triggers_single_rate_limited_refetch(start, jwks_server):
    proxy = start(remote_config(), jwks_server.port)
    assert jwks_server.count == 1
    # The IdP adds a key; cache_duration is long, so only an unknown-kid refetch finds it.
    jwks_server.jwks = jwks_subset("rsa-a", "rsa-b")
    new = make_token("RS256", kid="rsa-b", key="rsa2048b.pem")
    assert status(proxy, new) == 200, "new kid not accepted on the first try"
    assert jwks_server.count == 2
    # A flood of random kids: rate-limited by min_refetch_interval (default 30s).
    tokens = [make_token("RS256", kid=uuid.uuid4().hex) for _ in range(200)]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda t: status(proxy, t), tokens))
    assert set(results) == {401}
    assert jwks_server.count <= 3, f"{jwks_server.count} fetches for 200 random kids"


def test_random_kid_flood_on_fresh_envoy_fetches_at_most_once(start, jwks_server):
    proxy = start(remote_config(), jwks_server.port)
    before = jwks_server.count
    tokens = [make_token("RS256", kid=uuid.uuid4().hex) for _ in range(200)]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda t: proxy.get("/x", headers=bearer(t)), tokens))
    assert {r.status for r in results} == {401}
    assert all("Jwks doesn't have key" in r.text for r in results)
    assert jwks_server.count - before <= 1


@pytest.mark.parametrize("fault", ["500", "garbage", "empty", "hang", "huge", "weak", "reset"])
def test_refresh_faults_keep_last_good_keys(start, jwks_server, fault):
    jwks_server.hang_seconds = 2.5
    jwks_server.weak_jwks = jwks_text("jwks_weak.json")
    proxy = start(remote_config(cache_duration="1s", http_uri={
        "uri": "http://idp.test/.well-known/jwks.json", "cluster": "jwks", "timeout": "0.5s"}),
        jwks_server.port)
    token = make_token("RS256", kid="rsa-a")
    assert status(proxy, token) == 200
    jwks_server.mode = fault
    seen = jwks_server.count
    assert eventually(lambda: jwks_server.count >= seen + 2, timeout=10), "no refresh attempts"
    for _ in range(10):
        assert status(proxy, token) == 200
        time.sleep(0.1)
    assert "keeping the last good keys" in proxy.log_text()
    stats = values(proxy)
    assert stats[fetches("idp", "failure")] >= 2
    assert stats[key_gauge("jwks_keys", "idp")] == 1
    # And it recovers.
    jwks_server.mode = "ok"
    jwks_server.jwks = jwks_subset("rsa-b")
    new = make_token("RS256", kid="rsa-b", key="rsa2048b.pem")
    assert eventually(lambda: status(proxy, new) == 200, timeout=10)


def test_retry_after_is_honoured(start, jwks_server):
    """A 429 with Retry-After holds back every fetch (the retry and unknown-kid
    refetches) until then; the last good keys stay in use meanwhile. Without it the
    retries would come after 0.2, 0.4, 0.8 and then every 1 s."""
    proxy = start(remote_config(cache_duration="1s"), jwks_server.port)
    token = make_token("RS256", kid="rsa-a")
    assert status(proxy, token) == 200
    jwks_server.retry_after = 4
    jwks_server.mode = "429"
    seen = jwks_server.count
    assert eventually(lambda: jwks_server.count > seen, timeout=5), "no refresh"
    throttled = jwks_server.count
    throttled_at = jwks_server.requests[-1][0]
    new = make_token("RS256", kid="rsa-b", key="rsa2048b.pem")
    while time.monotonic() < throttled_at + 3.5:
        assert status(proxy, token) == 200
        assert status(proxy, new) == 401
        time.sleep(0.1)
    assert jwks_server.count == throttled, jwks_server.requests
    jwks_server.mode = "ok"
    assert eventually(lambda: jwks_server.count > throttled, timeout=6), "no retry"
    gap = jwks_server.requests[throttled][0] - throttled_at
    assert 3.9 <= gap <= 6.6, gap
    assert status(proxy, token) == 200


def test_jwks_server_down_from_the_start_is_401_never_5xx(start):
    proxy = start(remote_config(), free_port(), wait_for_keys=False)
    token = make_token("RS256", kid="rsa-a")
    for _ in range(5):
        reply = proxy.get("/x", headers=bearer(token))
        assert reply.status == 401, reply
        assert reply.text == "Jwks remote fetch is failed"
        assert 'error="invalid_token"' in reply.www_authenticate
    # No token at all is still "missing", not a key problem.
    assert proxy.get("/x").text == "Jwt is missing"


def test_unknown_cluster_is_401_with_a_clear_log(start, jwks_server):
    config = remote_config(port_cluster="no-such-cluster")
    proxy = start(config, jwks_server.port, wait_for_keys=False)
    token = make_token("RS256", kid="rsa-a")
    assert proxy.get("/x", headers=bearer(token)).status == 401
    assert eventually(lambda: "no-such-cluster" in proxy.log_text())
    assert "through cluster" in proxy.log_text()


def test_requests_during_first_fetch_wait_then_pass(start, jwks_server):
    jwks_server.delay = 0.7  # under the 1s fetch timeout
    proxy = start(remote_config(), jwks_server.port, wait_for_keys=False)
    token = make_token("RS256", kid="rsa-a")
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: proxy.get("/x", headers=bearer(token)), range(8)))
    assert [r.status for r in replies] == [200] * 8
    assert time.monotonic() - t0 < 5
    assert jwks_server.count == 1


def test_cache_control_max_age_is_honoured(start, jwks_server):
    jwks_server.max_age = 1
    proxy = start(remote_config(cache_duration="600s"), jwks_server.port)
    first = jwks_server.count
    time.sleep(4.2)
    fetched = jwks_server.count - first
    # Refreshed about once a second (one VM fetches for all workers), not per cache_duration.
    assert 2 <= fetched <= 6, f"{fetched} refreshes in 4.2s with max-age=1"
    assert status(proxy, make_token("RS256", kid="rsa-a")) == 200


def test_hmac_algorithms_refused_for_remote_keys(envoy_expect_fail):
    config = remote_config()
    config["providers"]["idp"]["allowed_algorithms"] = ["HS256"]
    log = envoy_expect_fail(config)
    assert "providers.idp.allowed_algorithms" in log


def test_oidc_discovery_finds_jwks_uri(start, jwks_server):
    import json
    jwks_server.discovery = json.dumps({"issuer": ISSUER, "jwks_uri": "https://issuer.test/keys.json"})
    config = remote_config(oidc_discovery=True, http_uri={"cluster": "jwks", "timeout": "1s"})
    proxy = start(config, jwks_server.port)
    assert status(proxy, make_token("RS256", kid="rsa-a")) == 200
    paths = [p for _, p in jwks_server.requests]
    assert paths == ["/.well-known/openid-configuration", "/keys.json"], paths
    assert "discovered jwks_uri https://issuer.test/keys.json" in proxy.log_text()
    # On the issuer's own host over https: nothing to warn about.
    assert "[discovery_untrusted]" not in proxy.log_text()
    assert values(proxy).get(series("jwt_filter_jwks_discovery_untrusted_total", provider="idp")) == 0


def test_oidc_discovery_to_another_host_is_warned_and_counted(start, jwks_server):
    """The discovery document names keys on another host than the issuer's: they are used
    (the cluster is the configured one), and the filter says so and counts it."""
    import json
    jwks_server.discovery = json.dumps({"issuer": ISSUER, "jwks_uri": "https://keys.other.test/k.json"})
    config = remote_config(oidc_discovery=True, http_uri={"cluster": "jwks", "timeout": "1s"})
    proxy = start(config, jwks_server.port)
    assert status(proxy, make_token("RS256", kid="rsa-a")) == 200
    assert values(proxy).get(series("jwt_filter_jwks_discovery_untrusted_total", provider="idp")) == 1
    warned = [line for line in proxy.log_text().splitlines()
              if "jwt_filter: warning: providers.idp.remote_jwks.oidc_discovery: the discovered "
                 "jwks_uri https://keys.other.test/k.json" in line]
    assert warned and warned[0].endswith(" [discovery_untrusted]"), warned
    assert '"keys.other.test" is not the issuer\'s ("issuer.test")' in warned[0]


def test_oidc_discovery_with_wrong_issuer_is_refused(start, jwks_server):
    import json
    jwks_server.discovery = json.dumps({"issuer": "https://evil.test", "jwks_uri": "https://evil.test/k"})
    config = remote_config(oidc_discovery=True, http_uri={"cluster": "jwks", "timeout": "1s"})
    proxy = start(config, jwks_server.port, wait_for_keys=False)
    reply = proxy.get("/x", headers=bearer(make_token("RS256", kid="rsa-a")))
    assert reply.status == 401 and reply.text == "Jwks remote fetch is failed"
    assert "different issuer" in proxy.log_text()


def test_key_rotation_metrics(jwks_server, start):
    """Keys added and removed by each new JWKS, and the age of the oldest key still
    served (from when this Envoy first saw it)."""
    proxy = start(remote_config(cache_duration="1s"), jwks_server.port)
    stats = lambda: values(proxy)
    added = series("jwt_filter_jwks_keys_added_total", provider="idp")
    removed = series("jwt_filter_jwks_keys_removed_total", provider="idp")
    oldest = key_gauge("jwks_oldest_key_age_seconds", "idp")
    assert eventually(lambda: stats()[oldest] >= 2, timeout=6), stats()
    assert (stats()[added], stats()[removed]) == (0, 0)  # the first set is no change
    jwks_server.jwks = jwks_subset("rsa-a", "rsa-b")
    assert eventually(lambda: stats()[added] == 1), stats()
    assert stats()[removed] == 0
    age_a = stats()[oldest]
    assert age_a >= 2  # rsa-a is still served: its clock did not restart
    jwks_server.jwks = jwks_subset("rsa-b")
    assert eventually(lambda: stats()[removed] == 1), stats()
    assert eventually(lambda: stats()[oldest] < age_a), stats()  # now rsa-b's, younger
    assert stats()[added] == 1
    assert stats()[key_gauge("jwks_keys", "idp")] == 1
