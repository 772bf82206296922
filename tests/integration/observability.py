"""Helpers for the authorization / report-mode / metrics / decision-log tests:
Prometheus text parsing, and an Envoy with a file access log that prints the filter state
the plugin writes."""
from __future__ import annotations

import re
import signal
import time
import urllib.request

import yaml

from tests.integration.harness import Envoy

#: Every AuthError::reason() (src/error.rs), in declaration order.
REASONS = [
    "missing", "multiple", "too_large", "malformed", "alg_not_allowed", "unsupported_crit",
    "issuer", "audience", "expired", "not_yet_valid", "missing_exp", "lifetime_too_long",
    "unknown_kid", "bad_signature", "jwks_unavailable", "insufficient_scope",
    "subject", "route_requirement", "key_wait_full",
    "dpop_missing", "dpop_malformed", "dpop_alg", "dpop_signature", "dpop_htm", "dpop_htu",
    "dpop_iat", "dpop_ath", "dpop_nonce", "dpop_replay", "dpop_replay_cache_full",
    "dpop_jkt_mismatch", "dpop_required", "cert_unbound", "cert_missing", "cert_mismatch",
    "token_type", "iat_future", "revoked", "revocation_unavailable",
]
#: The decision-time histogram's `outcome` values.
OUTCOMES = ["verified", "cache_hit", "no_token", "denied"]

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def series(name: str, **labels: str) -> str:
    """The canonical key of a Prometheus series: name{k="v",...} with the labels sorted
    (just `name` without labels)."""
    if not labels:
        return name
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def prometheus_text(proxy: Envoy) -> str:
    with urllib.request.urlopen(f"{proxy.admin_url}/stats/prometheus", timeout=5) as resp:
        return resp.read().decode()


def parse_prometheus(text: str) -> dict[str, tuple[str, float]]:
    """series(...) key -> (family type, value) for every sample of an exposition text."""
    types: dict[str, str] = {}
    out: dict[str, tuple[str, float]] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
            continue
        m = _SAMPLE.match(line)
        if not m:
            continue
        name = m.group(1)
        labels = dict(_LABEL.findall(m.group(2) or ""))
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        kind = types.get(name) or types.get(family, "?")
        out[series(name, **labels)] = (kind, float(m.group(3)))
    return out


def prometheus(proxy: Envoy) -> dict[str, tuple[str, float]]:
    """series key -> (type, value) for every sample in Envoy's /stats/prometheus."""
    return parse_prometheus(prometheus_text(proxy))


def values(proxy: Envoy, prefix: str = "jwt_filter_") -> dict[str, float]:
    """series key -> value of the filter's samples (histogram buckets and sums left out)."""
    return {k: v for k, (_, v) in prometheus(proxy).items()
            if k.startswith(prefix) and not re.match(r"^[a-z_]+_(bucket|sum)\b", k)}


def stat_name(prefix: str, name: str, *labels: tuple[str, str]) -> str:
    """The raw stat name (as in admin /stats) of a filter metric: labels in the order the
    filter writes them (src/metrics.rs)."""
    tags = "".join(f"{k}=.={v};.;" for k, v in labels)
    return f"wasmcustom.{prefix}.{tags}{name}"


#: Algorithms that can be verified by Envoy's `verify_signature` (one gauge each).
HOST_CRYPTO_ALGS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512"]


def all_series(prefix: str, providers: list[tuple[str, str]],
               rules: list[tuple[str, str]] = ()) -> dict[str, str]:
    """series key -> type of every series the filter defines (histograms by their
    `_count` series); providers: (name, "local"|"remote"); rules: named rules with a
    requirement, (name, "enforce"|"report")."""
    p = prefix.replace(".", "_")
    out = {}
    dec = f"{p}_decisions_total"
    for mode in ("enforce", "report"):
        out[series(dec, decision="allow", reason="none", mode=mode)] = "counter"
    for r in REASONS:
        out[series(dec, decision="deny", reason=r, mode="enforce")] = "counter"
        out[series(dec, decision="would_deny", reason=r, mode="report")] = "counter"
    out[f"{p}_cors_preflight_bypassed_total"] = "counter"
    for r in ("hit", "miss"):
        out[series(f"{p}_jwt_cache_lookups_total", result=r)] = "counter"
    for o in OUTCOMES:
        out[series(f"{p}_decision_duration_microseconds_count", outcome=o)] = "histogram"
    for a in HOST_CRYPTO_ALGS:
        out[series(f"{p}_host_crypto", alg=a)] = "gauge"
        out[series(f"{p}_host_crypto_fallback", alg=a)] = "gauge"
    for name, source in providers:
        q = re.sub(r"[^A-Za-z0-9_-]", "_", name)
        for d in ("allow", "deny"):
            out[series(f"{p}_provider_decisions_total", provider=q, decision=d)] = "counter"
        for g in ("jwks_keys", "jwks_age_seconds", "jwks_oldest_key_age_seconds"):
            out[series(f"{p}_{g}", provider=q, key_source=source)] = "gauge"
        if source == "remote":
            for r in ("success", "failure"):
                out[series(f"{p}_jwks_fetches_total", provider=q, result=r)] = "counter"
            out[series(f"{p}_jwks_keys_added_total", provider=q)] = "counter"
            out[series(f"{p}_jwks_keys_removed_total", provider=q)] = "counter"
            out[series(f"{p}_jwks_discovery_untrusted_total", provider=q)] = "counter"
    for name, mode in rules:
        rejected = "deny" if mode == "enforce" else "would_deny"
        for d in ("allow", rejected):
            out[series(f"{p}_rule_decisions_total", rule=name, decision=d)] = "counter"
    return out


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
