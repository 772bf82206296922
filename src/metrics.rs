//! Counter and gauge names, defined once per VM, and the request-path events
//! that move them. The host (proxy-wasm `define_metric` / `increment_metric` /
//! `record_metric`) sits behind [`MetricHost`], so this module is pure and
//! tested natively with a fake.
//!
//! Names are `<stat_prefix>.<name>`; Envoy stores proxy-wasm metrics under the
//! `wasmcustom.` namespace (`/stats` shows `wasmcustom.jwt_filter.allowed`),
//! and `/stats/prometheus` drops that namespace and turns `.` into `_`
//! (`jwt_filter_allowed`), with no `envoy_` prefix. See docs/observability.md.
//!
//! Envoy runs one VM per worker; defining a name that already exists returns
//! the same underlying stat, so counters aggregate across workers.

use crate::error::AuthError;

/// Default `stat_prefix`.
pub const DEFAULT_STAT_PREFIX: &str = "jwt_filter";

/// Kind of metric (mapped to proxy-wasm's `MetricType` by the glue).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
}

/// What the host offers. Ids are whatever the host returns.
pub trait MetricHost {
    /// Defines (or looks up) a metric; `None` if the host refused.
    fn define(&mut self, kind: MetricKind, name: &str) -> Option<u32>;
    fn increment(&self, id: u32, delta: i64);
    fn record(&self, id: u32, value: u64);
}

/// Filter-wide counters with Envoy `jwt_authn`'s names.
pub const GLOBAL_COUNTERS: [&str; 7] = [
    "allowed",
    "denied",
    "cors_preflight_bypassed",
    "jwks_fetch_success",
    "jwks_fetch_failed",
    "jwt_cache_hit",
    "jwt_cache_miss",
];

/// Per-provider counters (`provider.<name>.<counter>`).
pub const PROVIDER_COUNTERS: [&str; 2] = ["allowed", "denied"];
/// Per-provider gauges (`provider.<name>.<gauge>`).
pub const PROVIDER_GAUGES: [&str; 2] = ["jwks_keys", "jwks_age_seconds"];

/// Every metric name for a prefix and the provider names, in definition order.
pub fn metric_names(prefix: &str, providers: &[&str]) -> Vec<(MetricKind, String)> {
    let mut out = Vec::new();
    for c in GLOBAL_COUNTERS {
        out.push((MetricKind::Counter, format!("{prefix}.{c}")));
    }
    for e in AuthError::ALL {
        out.push((
            MetricKind::Counter,
            format!("{prefix}.denied_{}", e.reason()),
        ));
    }
    out.push((MetricKind::Counter, format!("{prefix}.report_would_deny")));
    for e in AuthError::ALL {
        out.push((
            MetricKind::Counter,
            format!("{prefix}.report_would_deny_{}", e.reason()),
        ));
    }
    for p in providers {
        for c in PROVIDER_COUNTERS {
            out.push((MetricKind::Counter, provider_metric(prefix, p, c)));
        }
        for g in PROVIDER_GAUGES {
            out.push((MetricKind::Gauge, provider_metric(prefix, p, g)));
        }
    }
    out
}

/// `<prefix>.provider.<name>.<metric>`; characters of the provider name
/// outside `[A-Za-z0-9_-]` become `_` (a `.` would add a level to the name).
pub fn provider_metric(prefix: &str, provider: &str, metric: &str) -> String {
    let name: String = provider
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{prefix}.provider.{name}.{metric}")
}

/// A `stat_prefix` is non-empty `[A-Za-z0-9_]` segments joined by `.`.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 64
        && prefix.split('.').all(|seg| {
            !seg.is_empty() && seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid stat_prefix {prefix:?}: use up to 64 characters of [A-Za-z0-9_] \
             segments separated by '.'"
        ))
    }
}

/// How Envoy's `/stats/prometheus` renders a proxy-wasm metric name: the
/// `wasmcustom.` namespace is dropped and every character outside
/// `[a-zA-Z0-9_]` becomes `_` (counters get no `_total` suffix).
pub fn prometheus_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Per-provider metric ids.
#[derive(Clone, Debug, Default)]
pub struct ProviderIds {
    pub allowed: Option<u32>,
    pub denied: Option<u32>,
    pub jwks_keys: Option<u32>,
    pub jwks_age_seconds: Option<u32>,
}

/// Every metric id, built once at configure time; the request path only
/// calls `increment` with these ids (no name formatting per request).
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    pub allowed: Option<u32>,
    pub denied: Option<u32>,
    pub cors_preflight_bypassed: Option<u32>,
    pub jwks_fetch_success: Option<u32>,
    pub jwks_fetch_failed: Option<u32>,
    pub jwt_cache_hit: Option<u32>,
    pub jwt_cache_miss: Option<u32>,
    /// Indexed like `AuthError::ALL`.
    pub denied_by_reason: Vec<Option<u32>>,
    pub report_would_deny: Option<u32>,
    /// Indexed like `AuthError::ALL`.
    pub would_deny_by_reason: Vec<Option<u32>>,
    /// Indexed like `Config::providers`.
    pub providers: Vec<ProviderIds>,
    /// Names the host refused to define (logged by the glue).
    pub failed: Vec<String>,
}

fn reason_index(err: AuthError) -> usize {
    AuthError::ALL
        .iter()
        .position(|e| *e == err)
        .unwrap_or_default()
}

impl Metrics {
    /// Defines every metric for the prefix and providers.
    pub fn define(host: &mut dyn MetricHost, prefix: &str, providers: &[&str]) -> Metrics {
        let mut m = Metrics::default();
        let mut def = |kind: MetricKind, name: String, failed: &mut Vec<String>| {
            let id = host.define(kind, &name);
            if id.is_none() {
                failed.push(name);
            }
            id
        };
        let mut failed = Vec::new();
        let c = MetricKind::Counter;
        m.allowed = def(c, format!("{prefix}.allowed"), &mut failed);
        m.denied = def(c, format!("{prefix}.denied"), &mut failed);
        m.cors_preflight_bypassed =
            def(c, format!("{prefix}.cors_preflight_bypassed"), &mut failed);
        m.jwks_fetch_success = def(c, format!("{prefix}.jwks_fetch_success"), &mut failed);
        m.jwks_fetch_failed = def(c, format!("{prefix}.jwks_fetch_failed"), &mut failed);
        m.jwt_cache_hit = def(c, format!("{prefix}.jwt_cache_hit"), &mut failed);
        m.jwt_cache_miss = def(c, format!("{prefix}.jwt_cache_miss"), &mut failed);
        for e in AuthError::ALL {
            let id = def(c, format!("{prefix}.denied_{}", e.reason()), &mut failed);
            m.denied_by_reason.push(id);
        }
        m.report_would_deny = def(c, format!("{prefix}.report_would_deny"), &mut failed);
        for e in AuthError::ALL {
            let name = format!("{prefix}.report_would_deny_{}", e.reason());
            let id = def(c, name, &mut failed);
            m.would_deny_by_reason.push(id);
        }
        for p in providers {
            let g = MetricKind::Gauge;
            let ids = ProviderIds {
                allowed: def(c, provider_metric(prefix, p, "allowed"), &mut failed),
                denied: def(c, provider_metric(prefix, p, "denied"), &mut failed),
                jwks_keys: def(g, provider_metric(prefix, p, "jwks_keys"), &mut failed),
                jwks_age_seconds: def(
                    g,
                    provider_metric(prefix, p, "jwks_age_seconds"),
                    &mut failed,
                ),
            };
            m.providers.push(ids);
        }
        m.failed = failed;
        m
    }

    fn inc(host: &dyn MetricHost, id: Option<u32>) {
        if let Some(id) = id {
            host.increment(id, 1);
        }
    }

    /// A request allowed by a rule (`accepted`: providers whose tokens were accepted).
    pub fn on_allow(&self, host: &dyn MetricHost, accepted: &[usize]) {
        Self::inc(host, self.allowed);
        for &p in accepted {
            Self::inc(host, self.providers.get(p).and_then(|ids| ids.allowed));
        }
    }

    /// A request rejected; `provider`: the provider blamed, when known.
    pub fn on_deny(&self, host: &dyn MetricHost, err: AuthError, provider: Option<usize>) {
        Self::inc(host, self.denied);
        Self::inc(
            host,
            self.denied_by_reason
                .get(reason_index(err))
                .copied()
                .flatten(),
        );
        if let Some(p) = provider {
            Self::inc(host, self.providers.get(p).and_then(|ids| ids.denied));
        }
    }

    /// A report-mode rule would have rejected the request (it was let through).
    pub fn on_would_deny(&self, host: &dyn MetricHost, err: AuthError) {
        Self::inc(host, self.report_would_deny);
        Self::inc(
            host,
            self.would_deny_by_reason
                .get(reason_index(err))
                .copied()
                .flatten(),
        );
    }

    /// A CORS preflight passed without a token.
    pub fn on_cors_bypass(&self, host: &dyn MetricHost) {
        Self::inc(host, self.cors_preflight_bypassed);
    }

    /// A remote JWKS fetch finished (issue 3 glue): moves
    /// `jwks_fetch_success` / `jwks_fetch_failed`.
    pub fn on_jwks_fetch(&self, host: &dyn MetricHost, ok: bool) {
        Self::inc(
            host,
            if ok {
                self.jwks_fetch_success
            } else {
                self.jwks_fetch_failed
            },
        );
    }

    /// Key-health gauges for a provider: key count and seconds since the last
    /// good JWKS (0 for local keys, which never age).
    pub fn record_jwks(&self, host: &dyn MetricHost, provider: usize, keys: usize, age_secs: u64) {
        if let Some(ids) = self.providers.get(provider) {
            if let Some(id) = ids.jwks_keys {
                host.record(id, keys as u64);
            }
            if let Some(id) = ids.jwks_age_seconds {
                host.record(id, age_secs);
            }
        }
    }
}

#[cfg(test)]
mod tests;
