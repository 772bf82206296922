"""Requests parked for an unknown kid are bounded: while a refetch runs, each VM holds at
most 1024 waiting requests and 4 MiB of their headers; a request past the bound is denied
at once (401, "Jwks refetch is busy: too many requests wait for keys", counted as
jwt_filter_decisions_total{decision="deny",reason="key_wait_full"}), never queued, and the identity provider still sees one fetch."""
from __future__ import annotations

import concurrent.futures
import time
import uuid

import pytest
import requests

from tests.integration import harness
from tests.integration.harness import Envoy, EnvoyStartError
from tests.support.jwks_server import JwksServer
from tests.integration.observability import series, values
from tests.support.tokens import ISSUER, jwks_subset, make_token

BUSY = "Jwks refetch is busy: too many requests wait for keys"
UNKNOWN = "Jwks doesn't have key to match kid or alg from Jwt"


@pytest.fixture
def jwks_server():
    server = JwksServer(jwks_subset("rsa-a"))
    yield server
    server.close()


@pytest.fixture
def proxy(echo_port, jwks_server):
    config = {
        "providers": {"idp": {"issuer": ISSUER, "audiences": ["api"], "remote_jwks": {
            "http_uri": {"uri": "http://idp.test/.well-known/jwks.json", "cluster": "jwks",
                         "timeout": "4s"},
            "cache_duration": "600s"}}},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "idp"}}],
    }
    # One worker: one VM, so the per-VM bound is the whole Envoy's.
    envoy = Envoy(echo_port, config, concurrency=1,
                  extra_clusters=[harness.static_cluster("jwks", jwks_server.port)])
    try:
        envoy.start()
    except EnvoyStartError as err:
        pytest.fail(str(err), pytrace=False)
    deadline = time.monotonic() + 10
    while "fetched" not in envoy.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    yield envoy
    envoy.stop()


def test_unknown_kid_flood_past_the_bound_is_denied_at_once(proxy, jwks_server):
    valid = make_token("RS256", kid="rsa-a")
    assert proxy.get("/x", token=valid).status == 200
    before = jwks_server.count
    # The refetch the flood starts takes 3 s (under the 4 s timeout): requests wait.
    jwks_server.delay = 3.0
    # ~48 KiB of headers each: the 4 MiB bound admits about 85 of them.
    pad = "p" * (48 * 1024)

    def one(_):
        token = make_token("RS256", kid=uuid.uuid4().hex)
        t0 = time.monotonic()
        resp = requests.get(proxy.url + "/x", timeout=20,
                            headers={"authorization": f"Bearer {token}", "x-pad": pad})
        return resp.status_code, resp.text, time.monotonic() - t0

    with concurrent.futures.ThreadPoolExecutor(160) as pool:
        results = list(pool.map(one, range(160)))
    statuses = {s for s, _, _ in results}
    assert statuses == {401}, statuses
    busy = [r for r in results if r[1] == BUSY]
    waited = [r for r in results if r[1] == UNKNOWN]
    assert len(busy) + len(waited) == len(results), {t for _, t, _ in results}
    assert 40 <= len(busy) <= 120, f"{len(busy)} denied as busy"
    assert 40 <= len(waited) <= 120, f"{len(waited)} waited for the refetch"
    # Past the bound: answered at once, not after the refetch.
    assert max(t for _, _, t in busy) < 2.5, sorted(t for _, _, t in busy)[-5:]
    assert min(t for _, _, t in waited) > 1.0
    assert jwks_server.count - before == 1
    denied = series("jwt_filter_decisions_total", decision="deny", reason="key_wait_full",
                    mode="enforce")
    assert values(proxy)[denied] == len(busy)
    # The VM is healthy and the wait list drained.
    jwks_server.delay = 0
    assert proxy.get("/x", token=valid).status == 200
    assert proxy.get("/x", token=make_token("RS256", kid="other")).text == UNKNOWN
