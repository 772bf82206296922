//! Carries out a decision's plan ([`crate::effects`]) on the host: request
//! headers, filter state, the decision log line, the local reply; defines
//! the metrics and records the decision time. Decides nothing.

use super::host::Host;
use crate::config::{Config, KeySource};
use crate::effects::{self, Effects};
use crate::keys::ProviderState;
use crate::metrics::{Metrics, ProviderIds, Timing};

use super::abi::{self, Action, LogLevel, MapType};

/// Defines this VM's metrics (the same names in every VM share one stat):
/// the filter-wide ids, and each provider's ids (indexed like
/// `Config::providers`, for the provider objects).
pub fn define_metrics(config: &Config) -> (Metrics, Vec<ProviderIds>) {
    let (m, providers) = Metrics::define(&mut Host, &config.stat_prefix, &effects::layout(config));
    if !m.failed.is_empty() {
        abi::log(
            LogLevel::Warn,
            &format!(
                "jwt_filter: could not define metrics: {}",
                m.failed.join(", ")
            ),
        );
    }
    (m, providers)
}

/// Sets the key gauges of providers with local keys (age 0).
pub fn record_local_keys(config: &Config, providers: &[ProviderState]) {
    for (p, keys) in config.providers.iter().zip(providers) {
        if let KeySource::Local(set) = &p.keys {
            keys.metrics.record_jwks(&Host, set.len(), 0, 0);
        }
    }
}

/// Carries out `fx` on the current request context.
pub fn carry_out(fx: Effects) -> Action {
    for (name, value) in &fx.headers {
        let _ = abi::set_header(MapType::HttpRequestHeaders, name, value.as_deref());
    }
    for (key, value) in &fx.state {
        // Envoy keeps it as filter state `wasm.<key>`.
        let _ = abi::set_property(&[key], value.as_bytes());
    }
    if let Some(line) = &fx.log {
        abi::log(LogLevel::Info, line);
    }
    match fx.reply {
        Some(r) => {
            let headers: Vec<(&str, &str)> =
                r.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let _ = abi::send_reply(r.status, &headers, r.body.as_bytes());
            Action::Pause
        }
        None => Action::Continue,
    }
}

/// Records the filter's own time for a decision that started at
/// `started_ns` (host clock, ns since the epoch). Nothing, not even the
/// clock read, when the histogram is off (`decision_histogram: false`).
pub fn record_time(metrics: &Metrics, timing: Option<Timing>, started_ns: u64) {
    if let Some(t) = timing.filter(|_| metrics.times_decisions()) {
        let micros = abi::now_ns().saturating_sub(started_ns) / 1000;
        metrics.on_decision_time(&Host, t, micros);
    }
}

/// Whether Envoy would keep an info-level line from this plugin: the
/// decision log (and the token facts it needs, including a SHA-256) is only
/// built when it will be written. On any doubt, it is.
pub fn decision_log_enabled() -> bool {
    abi::log_enabled(LogLevel::Info)
}
