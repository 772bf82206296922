"""Helpers for the authorization / report-mode / metrics / decision-log tests:
Prometheus text parsing, and an Envoy with a file access log that prints the filter state
the plugin writes."""
from __future__ import annotations

import re
import signal
import time
import urllib.request

import yaml

from harness import Envoy

#: Every AuthError::reason() (src/error.rs), in declaration order.
REASONS = [
    "missing", "multiple", "too_large", "malformed", "alg_not_allowed", "unsupported_crit",
    "issuer", "audience", "expired", "not_yet_valid", "missing_exp", "lifetime_too_long",
    "unknown_kid", "bad_signature", "jwks_unavailable", "insufficient_scope",
    "subject", "route_requirement",
]
GLOBAL_COUNTERS = ["allowed", "denied", "cors_preflight_bypassed", "jwks_fetch_success",
                   "jwks_fetch_failed", "jwt_cache_hit", "jwt_cache_miss"]

_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


def prometheus(proxy: Envoy) -> dict[str, tuple[str, float]]:
    """name -> (type, value) for every unlabelled sample in /stats/prometheus."""
    with urllib.request.urlopen(f"{proxy.admin_url}/stats/prometheus", timeout=5) as resp:
        text = resp.read().decode()
    types: dict[str, str] = {}
    out: dict[str, tuple[str, float]] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
            continue
        m = _LINE.match(line)
        if m and m.group(2) in (None, "{}"):
            out[m.group(1)] = (types.get(m.group(1), "?"), float(m.group(3)))
    return out


#: Algorithms that can be verified by Envoy's `verify_signature` (one gauge each).
HOST_CRYPTO_ALGS = ["RS256", "RS384", "RS512", "ES256", "ES384"]


def all_metric_names(prefix: str, providers: list[str]) -> dict[str, str]:
    """Prometheus name -> type for every metric the filter defines."""
    p = prefix.replace(".", "_")
    names = {f"{p}_{c}": "counter" for c in GLOBAL_COUNTERS}
    names.update({f"{p}_denied_{r}": "counter" for r in REASONS})
    names[f"{p}_report_would_deny"] = "counter"
    names.update({f"{p}_host_crypto_{a}": "gauge" for a in HOST_CRYPTO_ALGS})
    names.update({f"{p}_report_would_deny_{r}": "counter" for r in REASONS})
    for prov in providers:
        q = re.sub(r"[^A-Za-z0-9_]", "_", prov)
        names[f"{p}_provider_{q}_allowed"] = "counter"
        names[f"{p}_provider_{q}_denied"] = "counter"
        names[f"{p}_provider_{q}_jwks_keys"] = "gauge"
        names[f"{p}_provider_{q}_jwks_age_seconds"] = "gauge"
    return names


ACCESS_LOG_FORMAT = (
    "ACCESS status=%RESPONSE_CODE% decision=%FILTER_STATE(wasm.jwt_filter_decision:PLAIN)% "
    "jwt_status=%FILTER_STATE(wasm.jwt_filter_status:PLAIN)% "
    "reason=%FILTER_STATE(wasm.jwt_filter_reason:PLAIN)% "
    "provider=%FILTER_STATE(wasm.jwt_filter_provider:PLAIN)% "
    "payload=%FILTER_STATE(wasm.jwt_filter_payload:PLAIN)%\n"
)


def envoy_with_access_log(echo_port: int, plugin_config) -> Envoy:
    """An (unstarted) Envoy whose listener writes ACCESS_LOG_FORMAT lines to
    <dir>/access.log; call .start() and .stop()."""
    proxy = Envoy(echo_port, plugin_config)
    boot = yaml.safe_load(proxy.config_path.read_text())
    hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["access_log"] = [{
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": str(proxy.dir / "access.log"),
            "log_format": {"text_format_source": {"inline_string": ACCESS_LOG_FORMAT}},
        },
    }]
    proxy.config_path.write_text(yaml.safe_dump(boot, sort_keys=False))
    return proxy


def access_log_lines(proxy: Envoy, want: int, timeout: float = 10.0) -> list[str]:
    """The access log's lines once at least `want` are there (SIGUSR1 reopens/flushes)."""
    path = proxy.dir / "access.log"
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    while time.monotonic() < deadline:
        if proxy.proc is not None and proxy.proc.poll() is None:
            proxy.proc.send_signal(signal.SIGUSR1)
        try:
            lines = [l for l in path.read_text().splitlines() if l.startswith("ACCESS ")]
        except FileNotFoundError:
            lines = []
        if len(lines) >= want:
            return lines
        time.sleep(0.2)
    return lines


def wait_for_log(proxy: Envoy, needle: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = proxy.log_text()
        if needle in text:
            return text
        time.sleep(0.1)
    return proxy.log_text()
