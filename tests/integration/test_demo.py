"""The shipped demo (envoy/envoy.yaml's plugin config + tools/demo_token.py) works end to end."""
import http.client
import subprocess
import sys

import yaml

from tests.integration.checks import assert_invalid, assert_missing, assert_passed
from tests.integration.harness import ROOT
from tests.support.tokens import demo_script_token

DEMO = ROOT / "envoy" / "demo"


def demo_plugin_config() -> str:
    boot = yaml.safe_load((ROOT / "envoy" / "envoy.yaml").read_text())
    hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    wasm = next(f for f in hcm["http_filters"] if f["name"] == "envoy.filters.http.wasm")
    return wasm["typed_config"]["config"]["configuration"]["value"]


def test_demo_flow(shared_envoy):
    proxy = shared_envoy(demo_plugin_config(), concurrency=1)
    assert_missing(proxy.get("/hello"), proxy, "/hello")
    assert_passed(proxy.get("/public/hello"))
    token = demo_script_token("--sub", "alice", "--scope", "read write")
    h = assert_passed(proxy.get("/hello", token=token))["headers"]
    assert h["x-jwt-sub"] == "alice"
    assert h["x-jwt-scope"] == "read write"
    assert "x-jwt-payload" in h
    expired = demo_script_token("--expired")
    assert_invalid(proxy.get("/hello", token=expired), proxy, "/hello", "Jwt is expired")
    assert_invalid(proxy.get("/hello", token=demo_script_token("--aud", "other")), proxy, "/hello",
                   "Audiences in Jwt are not allowed")


def test_demo_cors_preflight(shared_envoy):
    proxy = shared_envoy(demo_plugin_config(), concurrency=1)
    reply = proxy.request("OPTIONS", "/hello", headers={"Origin": "https://x.example",
                                                        "Access-Control-Request-Method": "GET"})
    assert_passed(reply)


def test_demo_jwks_matches_private_key_and_envoy_yaml():
    import json

    from cryptography.hazmat.primitives import serialization
    from tests.support.tokens import b64u_decode

    jwks = json.loads((DEMO / "jwks.json").read_text())
    inline = json.loads(json.loads(demo_plugin_config())["providers"]["demo"]["local_jwks"]["inline_string"])
    assert inline == jwks, "envoy/envoy.yaml inlines a different JWKS than envoy/demo/jwks.json"
    key = serialization.load_pem_private_key((DEMO / "demo_private.pem").read_bytes(), None)
    nums = key.public_key().public_numbers()
    (jwk,) = jwks["keys"]
    assert jwk["kid"] == "demo-key"
    assert int.from_bytes(b64u_decode(jwk["n"]), "big") == nums.n
    assert int.from_bytes(b64u_decode(jwk["e"]), "big") == nums.e


def test_echo_server_standalone():
    """The echo server as a subprocess (how ./build.sh run starts it)."""
    import json
    import socket
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.echo_server", str(port)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for _ in range(50):
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/p?q=1", method="DELETE",
                                             headers={"X-Multi": "a"})
                with urllib.request.urlopen(req, timeout=1) as resp:
                    body = json.load(resp)
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError("the echo server did not answer")
        assert body["method"] == "DELETE"
        assert body["path"] == "/p?q=1"
        assert body["headers"]["x-multi"] == "a"
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def test_echo_joins_repeated_headers(echo_port):
    import http.client
    import json

    conn = http.client.HTTPConnection("127.0.0.1", echo_port, timeout=5)
    conn.putrequest("GET", "/r")
    conn.putheader("X-Dup", "one")
    conn.putheader("X-Dup", "two")
    conn.endheaders()
    body = json.loads(conn.getresponse().read())
    conn.close()
    assert body["headers"]["x-dup"] == "one,two"


def shipped_path_normalisation() -> dict:
    """The HttpConnectionManager's path settings in the shipped envoy/envoy.yaml."""
    boot = yaml.safe_load((ROOT / "envoy" / "envoy.yaml").read_text())
    hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    keys = ("normalize_path", "merge_slashes", "path_with_escaped_slashes_action")
    return {k: hcm[k] for k in keys if k in hcm}


TRAVERSALS = ("/public/../hello", "/public/%2e%2e/hello", "/public/..%2fhello", "/public/..%2Fhello")


def raw_get(proxy, path: str) -> tuple[int, str]:
    """GET with the path sent byte for byte (requests/urllib3 would remove dot segments)."""
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read().decode(errors="replace")
    finally:
        conn.close()


def test_shipped_path_normalisation_closes_exempt_prefix_traversal(shared_envoy):
    """With envoy/envoy.yaml's path settings, a path that climbs out of the exempt /public/
    prefix is judged as the path it reaches: no token, 401. Without them (Envoy's defaults)
    the same paths match /public/ and pass without a token, which shows what the settings do."""
    options = shipped_path_normalisation()
    assert options == {"normalize_path": True, "merge_slashes": True,
                       "path_with_escaped_slashes_action": "UNESCAPE_AND_FORWARD"}
    proxy = shared_envoy(demo_plugin_config(), concurrency=1, hcm_options=options)
    for path in TRAVERSALS:
        assert raw_get(proxy, path) == (401, "Jwt is missing"), path
    assert raw_get(proxy, "/public/hello")[0] == 200
    assert raw_get(proxy, "//public//hello")[0] == 200
    plain = shared_envoy(demo_plugin_config(), concurrency=1)
    assert raw_get(plain, "/public/../hello")[0] == 200
