"""How meshes and gateways deliver the module, without a cluster:

- Istio: istiod sends a WasmPlugin to the proxy through ECDS (extension config discovery)
  as an envoy.extensions.filters.http.wasm.v3.Wasm TypedExtensionConfig, with the module
  already fetched to a local file by istio-agent and `pluginConfig` as the JSON
  configuration. Here Envoy gets the same resource from a file config source, built from
  the shipped deploy/istio/wasmplugin-ingressgateway.yaml; the test then changes
  `pluginConfig` (as an operator editing the WasmPlugin would) while requests are running.
- Envoy Gateway / plain Envoy: the module from a `remote` HTTP source pinned by `sha256`.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import pathlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import yaml

from tests.integration import harness
from tests.support import tokens
from tests.integration.harness import ROOT, Envoy, EnvoyStartError

DEMO = ROOT / "envoy" / "demo"
INGRESS = ROOT / "deploy" / "istio" / "wasmplugin-ingressgateway.yaml"
WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
SETTLE_SECONDS = 5.0  # "new requests follow the new policy within seconds"


def demo_token(aud: str, sub: str = "load") -> str:
    return tokens.demo_token(aud=aud, sub=sub)


def wasmplugin() -> dict:
    return yaml.safe_load(INGRESS.read_text())


def ecds_resource(plugin: dict, version: str) -> dict:
    """The DiscoveryResponse istiod would send for the WasmPlugin (after istio-agent has
    replaced the oci:// url by the downloaded file)."""
    meta, spec = plugin["metadata"], plugin["spec"]
    name = f"{meta['namespace']}.{meta['name']}"
    return {
        "version_info": version,
        "resources": [{
            "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
            "name": name,
            "typed_config": {
                "@type": WASM_TYPE,
                "config": {
                    "name": name,
                    "root_id": spec.get("pluginName", ""),
                    "failure_policy": "FAIL_CLOSED" if spec.get("failStrategy") == "FAIL_CLOSE"
                    else "FAIL_OPEN",
                    "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                                      "value": json.dumps(spec["pluginConfig"])},
                    "vm_config": {"runtime": "envoy.wasm.runtime.v8",
                                  "code": {"local": {"filename": str(harness.WASM)}}},
                },
            },
        }],
    }


def write_atomically(path: pathlib.Path, doc: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(yaml.safe_dump(doc, sort_keys=False))
    os.replace(tmp, path)  # one inotify "moved to" event, never a half-written file


class EcdsEnvoy:
    """An Envoy whose JWT filter comes from ECDS (a watched file), as in Istio."""

    def __init__(self, echo_port: int, plugin: dict):
        self.name = f"{plugin['metadata']['namespace']}.{plugin['metadata']['name']}"
        self.proxy = Envoy(echo_port, with_filter=False, concurrency=2,
                           component_log_level="wasm:info")
        self.ecds_dir = self.proxy.dir / "ecds"
        self.ecds_dir.mkdir()
        self.ecds_file = self.ecds_dir / "jwt-filter.yaml"
        write_atomically(self.ecds_file, ecds_resource(plugin, "1"))
        boot = yaml.safe_load(self.proxy.config_path.read_text())
        hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        hcm["http_filters"].insert(0, {
            "name": self.name,
            "config_discovery": {
                "config_source": {
                    "path_config_source": {"path": str(self.ecds_file),
                                           "watched_directory": {"path": str(self.ecds_dir)}},
                    "resource_api_version": "V3",
                },
                "type_urls": [WASM_TYPE],
            },
        })
        # xDS needs a node identity (istio-agent sets one per proxy).
        boot["node"] = {"id": "router~127.0.0.1~istio-ingressgateway.istio-system~istio-system.svc.cluster.local",
                        "cluster": "istio-ingressgateway.istio-system"}
        self.proxy.config_path.write_text(yaml.safe_dump(boot, sort_keys=False))

    def push(self, plugin: dict, version: str) -> None:
        write_atomically(self.ecds_file, ecds_resource(plugin, version))

    def ecds_stats(self) -> dict[str, int]:
        prefix = f"extension_config_discovery.http_filter.{self.name}."
        return {k[len(prefix):]: v for k, v in self.proxy.stats("extension_config_discovery").items()
                if k.startswith(prefix)}


@pytest.fixture
def ecds_envoy(echo_port):
    started: list[EcdsEnvoy] = []

    def factory(plugin: dict) -> EcdsEnvoy:
        e = EcdsEnvoy(echo_port, plugin)
        started.append(e)
        try:
            e.proxy.start()
        except EnvoyStartError as err:
            pytest.fail(f"Envoy with the ECDS-delivered filter did not start:\n{err}", pytrace=False)
        return e

    yield factory
    for e in started:
        e.proxy.stop()


def test_ecds_delivers_the_shipped_wasmplugin(ecds_envoy):
    e = ecds_envoy(wasmplugin())
    p = e.proxy
    assert p.get("/hello").status == 401
    assert p.get("/public").status == 200
    assert p.get("/public/x").status == 200
    assert p.get("/publicity").status == 401
    r = p.get("/hello", token=demo_token("demo-api", sub="alice"))
    assert r.status == 200, r
    assert r.up_headers["x-jwt-sub"] == "alice"
    assert e.ecds_stats().get("config_reload") == 1, e.ecds_stats()


def test_ecds_plugin_config_change_under_load(ecds_envoy):
    """pluginConfig changes (the audience moves from demo-api to demo-api-v2) while four
    clients send requests on keep-alive connections: every answer is the old or the new
    policy's verdict (never a 5xx, never a pass without a right token), each connection
    switches once and for good, and every request started SETTLE_SECONDS after the push
    gets the new verdict."""
    old = wasmplugin()
    new = copy.deepcopy(old)
    new["spec"]["pluginConfig"]["providers"]["demo"]["audiences"] = ["demo-api-v2"]
    e = ecds_envoy(old)
    url = e.proxy.url + "/hello"
    cases = {"old_aud": demo_token("demo-api"), "new_aud": demo_token("demo-api-v2"), "none": None}
    # (case) -> verdict under the old policy, under the new one
    expect = {"old_aud": (200, 401), "new_aud": (401, 200), "none": (401, 401)}
    stop = threading.Event()
    results: list[list[tuple[float, float, str, int]]] = []
    errors: list[BaseException] = []

    def client(i: int, out: list) -> None:
        names = list(cases)
        n = i
        with requests.Session() as s:
            while not stop.is_set():
                case = names[n % len(names)]
                n += 1
                hdrs = {"Authorization": f"Bearer {cases[case]}"} if cases[case] else {}
                t0 = time.monotonic()
                try:
                    status = s.get(url, headers=hdrs, timeout=10).status_code
                except requests.RequestException as err:  # a reset is a failure too
                    errors.append(err)
                    return
                out.append((t0, time.monotonic(), case, status))

    threads = []
    for i in range(4):
        out: list = []
        results.append(out)
        threads.append(threading.Thread(target=client, args=(i, out), daemon=True))
    for t in threads:
        t.start()
    time.sleep(2.0)
    pushed = time.monotonic()
    e.push(new, "2")
    time.sleep(SETTLE_SECONDS + 2.0)
    stop.set()
    for t in threads:
        t.join(timeout=15)
    assert not errors, errors[:3]

    total = sum(len(r) for r in results)
    assert total > 100, f"only {total} requests: the load did not run"
    switch_times = []
    for i, reqs in enumerate(results):
        phase = 0  # 0: old policy, 1: new policy
        for t0, t1, case, status in reqs:
            assert status < 500, f"client {i}: {status} for {case} at {t0 - pushed:+.2f}s"
            allowed = expect[case]
            assert status in allowed, f"client {i}: {status} for {case}: wrong verdict"
            if allowed[0] == allowed[1]:
                continue
            verdict = allowed.index(status)
            if t1 < pushed:
                assert verdict == 0, f"client {i}: new policy before the push ({case}, {status})"
            if t0 > pushed + SETTLE_SECONDS:
                assert verdict == 1, f"client {i}: old policy {t0 - pushed:.2f}s after the push"
            assert verdict >= phase, f"client {i}: back to the old policy at {t0 - pushed:+.2f}s"
            if verdict == 1 and phase == 0:
                phase = 1
                switch_times.append(t0 - pushed)
        assert phase == 1, f"client {i} never saw the new policy"
    stats = e.ecds_stats()
    assert stats.get("config_reload") == 2 and not stats.get("config_fail"), stats
    print(f"{total} requests; connections switched {min(switch_times):.2f}..{max(switch_times):.2f}s "
          f"after the push")


def test_ecds_bad_plugin_config_keeps_the_old_policy(ecds_envoy):
    """A pluginConfig the filter refuses (unknown provider in a rule) is rejected by Envoy
    (config_fail); the running policy stays, nothing opens."""
    old = wasmplugin()
    bad = copy.deepcopy(old)
    bad["spec"]["pluginConfig"]["rules"][-1]["requires"] = {"provider_name": "nope"}
    e = ecds_envoy(old)
    e.push(bad, "2")
    deadline = time.monotonic() + 10
    while not e.ecds_stats().get("config_fail") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert e.ecds_stats().get("config_fail") == 1, e.ecds_stats()
    assert e.proxy.get("/hello").status == 401
    assert e.proxy.get("/hello", token=demo_token("demo-api")).status == 200


# ----------------------------------------------------------------------------------------
# remote HTTP source + sha256
# ----------------------------------------------------------------------------------------

class _WasmHandler(BaseHTTPRequestHandler):
    body = b""
    hits = 0

    def do_GET(self):
        type(self).hits += 1
        self.send_response(200)
        self.send_header("content-type", "application/wasm")
        self.send_header("content-length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def wasm_server():
    handler = type("Handler", (_WasmHandler,), {"body": harness.WASM.read_bytes(), "hits": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], handler
    server.shutdown()
    server.server_close()


def remote_envoy(echo_port: int, wasm_port: int, sha256: str) -> Envoy:
    plugin = wasmplugin()["spec"]["pluginConfig"]
    filt = harness.wasm_filter(plugin)
    filt["typed_config"]["config"]["vm_config"]["code"] = {"remote": {
        "http_uri": {"uri": f"http://127.0.0.1:{wasm_port}/jwt_filter.wasm", "cluster": "wasm_server",
                     "timeout": "10s"},
        "sha256": sha256,
        "retry_policy": {"num_retries": 0},
    }}
    return Envoy(echo_port, with_filter=False, concurrency=1, extra_filters=[filt],
                 extra_clusters=[harness.static_cluster("wasm_server", wasm_port)])


def test_remote_module_with_right_sha256_serves(echo_port, wasm_server):
    port, handler = wasm_server
    digest = hashlib.sha256(harness.WASM.read_bytes()).hexdigest()
    proxy = remote_envoy(echo_port, port, digest)
    try:
        proxy.start()
        assert handler.hits >= 1
        assert proxy.get("/hello").status == 401
        r = proxy.get("/hello", token=demo_token("demo-api", sub="bob"))
        assert r.status == 200, r
        assert r.up_headers["x-jwt-sub"] == "bob"
        assert proxy.stats("wasmcustom"), "the filter's metrics are missing"
    finally:
        proxy.stop()


def test_remote_module_with_wrong_sha256_is_refused(echo_port, wasm_server):
    """The module is fetched, its hash does not match: Envoy refuses the data ("data is
    invalid"), the plugin fails to load and, failing closed, every request is answered by
    Envoy (503) without the filter ever running or the backend being reached."""
    port, handler = wasm_server
    wrong = hashlib.sha256(b"not the module").hexdigest()
    proxy = remote_envoy(echo_port, port, wrong)
    proxy.component_log_level = "wasm:debug,config:debug"
    try:
        proxy.start()
        assert handler.hits >= 1, "the module was never fetched"
        for token in (None, demo_token("demo-api")):
            r = proxy.get("/hello", token=token)
            assert r.status == 503, r
            assert "x-jwt-sub" not in r.text
        log = proxy.log_text()
        assert "data is invalid" in log, proxy.log_tail()
        assert "Plugin configured to fail closed failed to load" in log, proxy.log_tail()
        # The filter never ran: none of its log lines, none of its metrics.
        assert not [l for l in log.splitlines() if "jwt_filter:" in l and "[wasm]" in l], proxy.log_tail()
        assert not proxy.stats("wasmcustom"), proxy.stats("wasmcustom")
        assert proxy.stats("cluster.echo.upstream_rq_total").get("cluster.echo.upstream_rq_total") == 0
    finally:
        proxy.stop()
