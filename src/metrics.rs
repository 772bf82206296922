//! Metric names, defined once per VM, and the events that move them. The
//! host (proxy-wasm `define_metric` / `increment_metric` / `record_metric`)
//! sits behind [`MetricHost`], so this module is pure and tested natively
//! with a fake.
//!
//! The proxy-wasm ABI has no metric labels, so labels travel inside the stat
//! name with Istio's convention: one `key=.=value;.;` segment per label,
//! between the prefix and the metric's own name, e.g.
//!
//! ```text
//! jwt_filter.decision=.=deny;.;reason=.=expired;.;mode=.=enforce;.;decisions_total
//! ```
//!
//! Envoy's `stats_config.stats_tags` entries `(key=\.=(.*?);\.;)` (see
//! [`STATS_TAGS`]; Istio's `extraStatTags` generates exactly these) cut each
//! segment out of the name and make it a tag, so `/stats/prometheus` shows
//! `jwt_filter_decisions_total{decision="deny",reason="expired",mode="enforce"}`.
//! Envoy stores proxy-wasm metrics in its `wasmcustom.` namespace, which
//! `/stats/prometheus` drops (no `envoy_` prefix either). Label values are
//! bounded: reasons, modes and results are fixed sets, provider and rule
//! names come from the configuration; never anything from a request.
//!
//! Envoy runs one VM per worker; defining a name that already exists returns
//! the same underlying stat, so counters aggregate across workers.

use std::cell::Cell;

use crate::authz::Mode;
use crate::error::AuthError;

/// Default `stat_prefix`.
pub const DEFAULT_STAT_PREFIX: &str = "jwt_filter";

/// Every label key the filter puts in a stat name. Envoy's tag extraction
/// needs one `stats_tags` entry per key (Istio: one `extraStatTags` entry).
pub const LABELS: [&str; 9] = [
    "decision",
    "reason",
    "mode",
    "provider",
    "rule",
    "result",
    "key_source",
    "alg",
    "outcome",
];

/// The `stats_tags` regex for a label key (Istio's `extraStatTags` form).
pub fn stats_tag_regex(label: &str) -> String {
    format!("({label}=\\.=(.*?);\\.;)")
}

/// Kind of metric (mapped to proxy-wasm's `MetricType` by the glue).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

/// What the host offers. Ids are whatever the host returns.
pub trait MetricHost {
    /// Defines (or looks up) a metric; `None` if the host refused.
    fn define(&mut self, kind: MetricKind, name: &str) -> Option<u32>;
    fn increment(&self, id: u32, delta: i64);
    fn record(&self, id: u32, value: u64);
}

/// `<prefix>.<key>=.=<value>;.;...<name>`. Label values are cut to
/// [`MAX_LABEL_VALUE`] characters of `[A-Za-z0-9_-]` (others become `_`),
/// so a value can neither end its segment nor add a level to the name.
pub fn stat_name(prefix: &str, name: &str, labels: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(prefix.len() + name.len() + 24 * labels.len() + 1);
    out.push_str(prefix);
    out.push('.');
    for (k, v) in labels {
        out.push_str(k);
        out.push_str("=.=");
        out.push_str(&label_value(v));
        out.push_str(";.;");
    }
    out.push_str(name);
    out
}

/// Longest label value written (characters).
pub const MAX_LABEL_VALUE: usize = 64;

/// A label value as written into a stat name: `[A-Za-z0-9_-]`, others `_`.
pub fn label_value(v: &str) -> String {
    v.chars()
        .take(MAX_LABEL_VALUE)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
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

/// Where a provider's keys come from (`key_source` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySourceKind {
    Local,
    Remote,
}

impl KeySourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeySourceKind::Local => "local",
            KeySourceKind::Remote => "remote",
        }
    }
}

/// What the metrics need to know about the configuration.
#[derive(Clone, Debug)]
pub struct Layout<'a> {
    /// Provider name and key source, indexed like `Config::providers`.
    pub providers: Vec<(&'a str, KeySourceKind)>,
    /// Per rule (indexed like `Config::rules`): its name and mode when it is
    /// named and has a requirement (only those get per-rule counters).
    pub rules: Vec<Option<(&'a str, Mode)>>,
    /// Whether the decision-time histogram is defined (`decision_histogram`).
    pub decision_histogram: bool,
}

impl Default for Layout<'_> {
    fn default() -> Self {
        Layout {
            providers: Vec::new(),
            rules: Vec::new(),
            decision_histogram: true,
        }
    }
}

/// Which part of the decision-time histogram a decision falls in
/// (`outcome` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timing {
    /// Allowed after at least one signature check.
    Verified,
    /// Allowed, every accepted token came from the verified-token cache.
    CacheHit,
    /// Allowed without a token (`allow_missing*`).
    NoToken,
    /// Rejected, or would have been (report mode).
    Denied,
}

impl Timing {
    pub const ALL: [Timing; 4] = [
        Timing::Verified,
        Timing::CacheHit,
        Timing::NoToken,
        Timing::Denied,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Timing::Verified => "verified",
            Timing::CacheHit => "cache_hit",
            Timing::NoToken => "no_token",
            Timing::Denied => "denied",
        }
    }

    /// From the decision: `allowed`, how many tokens were accepted, and the
    /// evaluation's verified-token cache (hits, misses).
    pub fn classify(allowed: bool, accepted: usize, (hits, misses): (u32, u32)) -> Timing {
        if !allowed {
            Timing::Denied
        } else if accepted == 0 {
            Timing::NoToken
        } else if hits > 0 && misses == 0 {
            Timing::CacheHit
        } else {
            Timing::Verified
        }
    }
}

fn mode_str(m: Mode) -> &'static str {
    match m {
        Mode::Enforce => "enforce",
        Mode::Report => "report",
    }
}

/// Every metric of a layout: (kind, stat name), in definition order.
pub fn metric_names(prefix: &str, layout: &Layout<'_>) -> Vec<(MetricKind, String)> {
    let mut host = Recorder::default();
    let _ = Metrics::define(&mut host, prefix, layout);
    host.0
}

#[derive(Default)]
struct Recorder(Vec<(MetricKind, String)>);

impl MetricHost for Recorder {
    fn define(&mut self, kind: MetricKind, name: &str) -> Option<u32> {
        self.0.push((kind, name.to_string()));
        Some(0)
    }
    fn increment(&self, _id: u32, _delta: i64) {}
    fn record(&self, _id: u32, _value: u64) {}
}

/// One provider's metric ids and key-age state. [`Metrics::define`] makes
/// one per provider and hands them out; each lives in its provider's object
/// ([`crate::keys::ProviderState`]), so whatever handles a provider's
/// decision or fetch counts through it directly. The default counts nothing.
#[derive(Clone, Debug, Default)]
pub struct ProviderIds {
    pub allowed: Option<u32>,
    pub denied: Option<u32>,
    pub jwks_keys: Option<u32>,
    pub jwks_age_seconds: Option<u32>,
    pub oldest_key_age_seconds: Option<u32>,
    /// Remote providers only.
    pub fetch_success: Option<u32>,
    pub fetch_failure: Option<u32>,
    pub keys_added: Option<u32>,
    pub keys_removed: Option<u32>,
    /// OIDC discovery named a plain-HTTP or off-issuer `jwks_uri`.
    pub discovery_untrusted: Option<u32>,
    /// When the oldest key still served was first seen (ms since the epoch).
    oldest_first_seen_ms: Cell<Option<u64>>,
}

/// Per named rule: allowed, and denied (enforce) or would-deny (report).
#[derive(Clone, Debug, Default)]
pub struct RuleIds {
    pub allowed: Option<u32>,
    pub rejected: Option<u32>,
}

/// Every metric id, built once at configure time; the request path only
/// calls `increment` / `record` with these ids (no name formatting per request).
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    /// Allowed, by mode: `[enforce, report]`.
    pub allowed: [Option<u32>; 2],
    pub cors_preflight_bypassed: Option<u32>,
    pub jwt_cache_hit: Option<u32>,
    pub jwt_cache_miss: Option<u32>,
    /// Denials, indexed like `AuthError::ALL`.
    pub denied_by_reason: Vec<Option<u32>>,
    /// Report-mode would-denials, indexed like `AuthError::ALL`.
    pub would_deny_by_reason: Vec<Option<u32>>,
    /// Indexed like `Config::rules`.
    pub rules: Vec<RuleIds>,
    /// Decision-time histogram, indexed like `Timing::ALL`.
    pub duration: Vec<Option<u32>>,
    /// Names the host refused to define (logged by the glue).
    pub failed: Vec<String>,
}

fn reason_index(err: AuthError) -> usize {
    AuthError::ALL
        .iter()
        .position(|e| *e == err)
        .unwrap_or_default()
}

/// Name of the decision-time histogram (microseconds).
pub const DURATION: &str = "decision_duration_microseconds";

impl Metrics {
    /// Defines every metric for the prefix and layout. Returns the
    /// filter-wide ids and, indexed like `layout.providers`, each provider's
    /// ids (for its provider object).
    pub fn define(
        host: &mut dyn MetricHost,
        prefix: &str,
        layout: &Layout<'_>,
    ) -> (Metrics, Vec<ProviderIds>) {
        let mut failed = Vec::new();
        let mut def = |kind: MetricKind, name: &str, labels: &[(&str, &str)]| {
            let full = stat_name(prefix, name, labels);
            let id = host.define(kind, &full);
            if id.is_none() {
                failed.push(full);
            }
            id
        };
        use MetricKind::{Counter as C, Gauge as G, Histogram as H};
        let mut m = Metrics::default();
        let mut providers = Vec::with_capacity(layout.providers.len());
        let decisions = "decisions_total";
        for (i, mode) in [Mode::Enforce, Mode::Report].into_iter().enumerate() {
            if let Some(slot) = m.allowed.get_mut(i) {
                *slot = def(
                    C,
                    decisions,
                    &[
                        ("decision", "allow"),
                        ("reason", "none"),
                        ("mode", mode_str(mode)),
                    ],
                );
            }
        }
        for e in AuthError::ALL {
            let labels = [
                ("decision", "deny"),
                ("reason", e.reason()),
                ("mode", "enforce"),
            ];
            m.denied_by_reason.push(def(C, decisions, &labels));
        }
        for e in AuthError::ALL {
            let labels = [
                ("decision", "would_deny"),
                ("reason", e.reason()),
                ("mode", "report"),
            ];
            m.would_deny_by_reason.push(def(C, decisions, &labels));
        }
        m.cors_preflight_bypassed = def(C, "cors_preflight_bypassed_total", &[]);
        m.jwt_cache_hit = def(C, "jwt_cache_lookups_total", &[("result", "hit")]);
        m.jwt_cache_miss = def(C, "jwt_cache_lookups_total", &[("result", "miss")]);
        if layout.decision_histogram {
            for t in Timing::ALL {
                m.duration
                    .push(def(H, DURATION, &[("outcome", t.as_str())]));
            }
        }
        for (name, source) in &layout.providers {
            let p = [("provider", *name)];
            let ps = [("provider", *name), ("key_source", source.as_str())];
            let mut ids = ProviderIds {
                allowed: def(
                    C,
                    "provider_decisions_total",
                    &[("provider", name), ("decision", "allow")],
                ),
                denied: def(
                    C,
                    "provider_decisions_total",
                    &[("provider", name), ("decision", "deny")],
                ),
                jwks_keys: def(G, "jwks_keys", &ps),
                jwks_age_seconds: def(G, "jwks_age_seconds", &ps),
                oldest_key_age_seconds: def(G, "jwks_oldest_key_age_seconds", &ps),
                ..ProviderIds::default()
            };
            if *source == KeySourceKind::Remote {
                ids.fetch_success = def(
                    C,
                    "jwks_fetches_total",
                    &[("provider", name), ("result", "success")],
                );
                ids.fetch_failure = def(
                    C,
                    "jwks_fetches_total",
                    &[("provider", name), ("result", "failure")],
                );
                ids.keys_added = def(C, "jwks_keys_added_total", &p);
                ids.keys_removed = def(C, "jwks_keys_removed_total", &p);
                ids.discovery_untrusted = def(C, "jwks_discovery_untrusted_total", &p);
            }
            providers.push(ids);
        }
        for rule in &layout.rules {
            let ids = match rule {
                Some((name, mode)) => {
                    let rejected = match mode {
                        Mode::Enforce => "deny",
                        Mode::Report => "would_deny",
                    };
                    RuleIds {
                        allowed: def(
                            C,
                            "rule_decisions_total",
                            &[("rule", name), ("decision", "allow")],
                        ),
                        rejected: def(
                            C,
                            "rule_decisions_total",
                            &[("rule", name), ("decision", rejected)],
                        ),
                    }
                }
                None => RuleIds::default(),
            };
            m.rules.push(ids);
        }
        m.failed = failed;
        (m, providers)
    }

    /// A request allowed by `rule` (in `mode`); `accepted`: the ids of the
    /// providers whose tokens were accepted.
    pub fn on_allow<'p>(
        &self,
        host: &dyn MetricHost,
        accepted: impl IntoIterator<Item = &'p ProviderIds>,
        rule: Option<usize>,
        mode: Mode,
    ) {
        let i = usize::from(mode == Mode::Report);
        inc(host, self.allowed.get(i).copied().flatten());
        for ids in accepted {
            inc(host, ids.allowed);
        }
        inc(
            host,
            rule.and_then(|r| self.rules.get(r)).and_then(|r| r.allowed),
        );
    }

    /// A request rejected by `rule`; `blamed`: the ids of the provider
    /// blamed, when known.
    pub fn on_deny(
        &self,
        host: &dyn MetricHost,
        err: AuthError,
        blamed: Option<&ProviderIds>,
        rule: Option<usize>,
    ) {
        inc(
            host,
            self.denied_by_reason
                .get(reason_index(err))
                .copied()
                .flatten(),
        );
        if let Some(ids) = blamed {
            inc(host, ids.denied);
        }
        inc(
            host,
            rule.and_then(|r| self.rules.get(r))
                .and_then(|r| r.rejected),
        );
    }

    /// A report-mode `rule` would have rejected the request (it was let through).
    pub fn on_would_deny(&self, host: &dyn MetricHost, err: AuthError, rule: Option<usize>) {
        inc(
            host,
            self.would_deny_by_reason
                .get(reason_index(err))
                .copied()
                .flatten(),
        );
        inc(
            host,
            rule.and_then(|r| self.rules.get(r))
                .and_then(|r| r.rejected),
        );
    }

    /// Whether the decision-time histogram is recorded (defined, and the
    /// host accepted it): when not, the glue does not read the clock for it.
    pub fn times_decisions(&self) -> bool {
        self.duration.iter().any(Option::is_some)
    }

    /// The filter's own time for one decision, in microseconds.
    pub fn on_decision_time(&self, host: &dyn MetricHost, timing: Timing, micros: u64) {
        let i = Timing::ALL.iter().position(|t| *t == timing);
        if let Some(id) = i.and_then(|i| self.duration.get(i)).copied().flatten() {
            host.record(id, micros);
        }
    }

    /// A CORS preflight passed without a token.
    pub fn on_cors_bypass(&self, host: &dyn MetricHost) {
        inc(host, self.cors_preflight_bypassed);
    }
}

fn inc(host: &dyn MetricHost, id: Option<u32>) {
    if let Some(id) = id {
        host.increment(id, 1);
    }
}

fn add(host: &dyn MetricHost, id: Option<u32>, n: usize) {
    if let (Some(id), true) = (id, n > 0) {
        host.increment(id, i64::try_from(n).unwrap_or(i64::MAX));
    }
}

impl ProviderIds {
    /// A remote JWKS fetch of this provider finished.
    pub fn on_jwks_fetch(&self, host: &dyn MetricHost, ok: bool) {
        inc(
            host,
            if ok {
                self.fetch_success
            } else {
                self.fetch_failure
            },
        );
    }

    /// OIDC discovery named a `jwks_uri` that is plain HTTP or on another
    /// host than the issuer's ([`crate::warning::discovered_uri_problem`]).
    pub fn on_discovery_untrusted(&self, host: &dyn MetricHost) {
        inc(host, self.discovery_untrusted);
    }

    /// A fetch installed a changed key set: `added` / `removed` kids.
    pub fn on_keys_changed(&self, host: &dyn MetricHost, added: usize, removed: usize) {
        add(host, self.keys_added, added);
        add(host, self.keys_removed, removed);
    }

    /// The first-seen time (ms since the epoch) of the oldest key the
    /// provider serves now; `record_jwks` turns it into an age.
    pub fn set_oldest_key(&self, first_seen_ms: Option<u64>) {
        self.oldest_first_seen_ms.set(first_seen_ms);
    }

    /// Key-health gauges: key count, seconds since the last good JWKS (0
    /// for local keys, which never age), and the age of the oldest key
    /// served (0 until one is known).
    pub fn record_jwks(&self, host: &dyn MetricHost, keys: usize, age_secs: u64, now_ms: u64) {
        if let Some(id) = self.jwks_keys {
            host.record(id, keys as u64);
        }
        if let Some(id) = self.jwks_age_seconds {
            host.record(id, age_secs);
        }
        if let Some(id) = self.oldest_key_age_seconds {
            let age = self
                .oldest_first_seen_ms
                .get()
                .map_or(0, |t| now_ms.saturating_sub(t) / 1000);
            host.record(id, age);
        }
    }
}

#[cfg(test)]
mod tests;
