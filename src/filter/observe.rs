//! Host side of a decision: the local reply or the pass-through,
//! the status header, filter state for access logs and other filters,
//! counters, and the decision log line. What to write is decided by the pure
//! modules (`policy::Outcome`, `metrics`, `decision_log`); this only calls
//! the host.

use super::abi::{self, Action, LogLevel, MapType};

use crate::authz::{Mode, TokenStatus};
use crate::config::{Config, KeySource};
use crate::decision_log::{self, Entry, Verdict};
use crate::dpop::{denial_headers, DpopSettings};
use crate::error::AuthError;
use crate::extract::RequestView;
use crate::filter_host::Host;
use crate::keys::ProviderKeys;
use crate::matcher::path_only;
use crate::metrics::{KeySourceKind, Layout, Metrics, ProviderIds, Timing};
use crate::policy::{Decision, HeaderOp, Outcome};

/// Filter state keys written per request. Envoy stores a proxy-wasm property
/// `<key>` as filter state `wasm.<key>`, readable in access logs as
/// `%FILTER_STATE(wasm.<key>:PLAIN)%`.
///
/// `allow` | `deny` | `would_deny` (report mode).
pub const STATE_DECISION: &str = "jwt_filter_decision";
/// `valid` | `missing` | `invalid` | `unauthorized` (as the status header).
pub const STATE_STATUS: &str = "jwt_filter_status";
/// Denial reason (`expired`, `missing`, ...), on deny and would-deny.
pub const STATE_REASON: &str = "jwt_filter_reason";
/// Name of the provider whose token was accepted (or blamed).
pub const STATE_PROVIDER: &str = "jwt_filter_provider";
/// Verified claims (JSON) of the accepted token.
pub const STATE_PAYLOAD: &str = "jwt_filter_payload";

/// Defines this VM's metrics (the same names in every VM share one stat):
/// the filter-wide ids, and each provider's ids (indexed like
/// `Config::providers`, for the provider objects).
pub fn define_metrics(config: &Config) -> (Metrics, Vec<ProviderIds>) {
    let layout = Layout {
        providers: config
            .providers
            .iter()
            .map(|p| {
                let source = match p.keys {
                    KeySource::Local(_) => KeySourceKind::Local,
                    _ => KeySourceKind::Remote,
                };
                (p.name.as_str(), source)
            })
            .collect(),
        rules: config
            .rules
            .iter()
            .map(|r| {
                r.name
                    .as_deref()
                    .filter(|_| r.requirement.is_some())
                    .map(|n| (n, r.mode))
            })
            .collect(),
        decision_histogram: config.decision_histogram,
    };
    let (m, providers) = Metrics::define(&mut Host, &config.stat_prefix, &layout);
    if !m.failed.is_empty() {
        log(
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
pub fn record_local_keys(config: &Config, providers: &[ProviderKeys]) {
    for (p, keys) in config.providers.iter().zip(providers) {
        if let KeySource::Local(set) = &p.keys {
            keys.metrics.record_jwks(&Host, set.len(), 0, 0);
        }
    }
}

/// Acts on the outcome for the current request context; `log_denials`:
/// write the decision log line for a denial ([`decision_log_enabled`]).
pub fn apply(
    config: &Config,
    metrics: &Metrics,
    providers: &[ProviderKeys],
    view: &RequestView,
    outcome: Outcome,
    log_denials: bool,
) -> Action {
    let ids = |i: &usize| providers.get(*i).map(|p| &p.metrics);
    let provider_name = |i: Option<usize>| -> Option<&str> {
        i.and_then(|i| config.providers.get(i))
            .map(|p| p.name.as_str())
    };
    match outcome.decision {
        Decision::NoAuth => {
            set_status_header(config, outcome.status);
            Action::Continue
        }
        Decision::Allow(ops) => {
            for op in ops {
                match op {
                    HeaderOp::Set(name, value) => set_header(&name, Some(&value)),
                    HeaderOp::Remove(name) => set_header(&name, None),
                }
            }
            metrics.on_allow(
                &Host,
                outcome.accepted.iter().filter_map(ids),
                outcome.rule,
                outcome.mode,
            );
            set_status_header(config, outcome.status);
            if config.filter_state {
                set_state(STATE_DECISION, "allow");
                set_state_status(outcome.status);
                if let Some(p) = provider_name(outcome.accepted.first().copied()) {
                    set_state(STATE_PROVIDER, p);
                }
                if let Some(payload) = &outcome.payload {
                    set_state(STATE_PAYLOAD, payload);
                }
            }
            Action::Continue
        }
        Decision::Deny(err) => {
            let report = outcome.mode == Mode::Report;
            if report {
                metrics.on_would_deny(&Host, err, outcome.rule);
            } else {
                metrics.on_deny(
                    &Host,
                    err,
                    outcome.blamed.as_ref().and_then(ids),
                    outcome.rule,
                );
            }
            let provider = provider_name(outcome.blamed);
            let blamed = outcome.blamed.and_then(|i| config.providers.get(i));
            if log_denials {
                let line = decision_log::line(
                    config.decision_log_format,
                    &Entry {
                        verdict: if report {
                            Verdict::WouldDeny
                        } else {
                            Verdict::Deny
                        },
                        error: err,
                        provider,
                        rule: outcome.rule,
                        token: outcome.token.as_ref(),
                        method: view.header(":method").unwrap_or("-"),
                        path: view.path(),
                        binding: blamed.and_then(|p| p.binding_label()),
                    },
                );
                log(LogLevel::Info, &line);
            }
            if config.filter_state {
                set_state(STATE_DECISION, if report { "would_deny" } else { "deny" });
                set_state_status(outcome.status);
                set_state(STATE_REASON, err.reason());
                if let Some(p) = provider {
                    set_state(STATE_PROVIDER, p);
                }
            }
            if report {
                set_status_header(config, outcome.status);
                return Action::Continue;
            }
            let scope = outcome
                .rule
                .and_then(|r| config.rules.get(r))
                .and_then(|r| r.authz.scope_text.as_deref())
                .filter(|_| err == AuthError::InsufficientScope);
            if config.strip_failure_response || err == AuthError::WrongRequirement {
                // jwt_authn's strip_failure_response (and its wrong
                // requirement_name reply): the status alone.
                let body = if config.strip_failure_response {
                    ""
                } else {
                    err.body()
                };
                let _ = abi::send_reply(err.status(), &[], body.as_bytes());
            } else {
                let dpop = blamed.and_then(|p| p.dpop.as_ref());
                send_denial(view, err, scope, dpop);
            }
            Action::Pause
        }
    }
}

/// Which decision-time series an outcome belongs to (`None`: no JWT was
/// required, nothing decided); `cache`: the evaluation's (hits, misses).
pub fn timing_of(outcome: &Outcome, cache: (u32, u32)) -> Option<Timing> {
    match outcome.decision {
        Decision::NoAuth => None,
        Decision::Allow(_) => Some(Timing::classify(true, outcome.accepted.len(), cache)),
        Decision::Deny(_) => Some(Timing::Denied),
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

/// Sends the local reply for a denial on the current context; `dpop`: the
/// blamed provider's DPoP settings, for a `DPoP` challenge.
pub fn send_denial(
    view: &RequestView,
    err: AuthError,
    scope: Option<&str>,
    dpop: Option<&DpopSettings>,
) {
    let path = path_only(view.path());
    let realm = format!(
        "{}://{}{}",
        view.header(":scheme").unwrap_or("http"),
        view.header(":authority").unwrap_or(""),
        path
    );
    let reply = denial_headers(&realm, err, scope, dpop, abi::now_ns() / 1_000_000_000);
    let headers: Vec<(&str, &str)> = reply.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let _ = abi::send_reply(err.status(), &headers, err.body().as_bytes());
}

fn set_header(name: &str, value: Option<&str>) {
    let _ = abi::set_header(MapType::HttpRequestHeaders, name, value);
}

pub fn set_status_header(config: &Config, status: Option<TokenStatus>) {
    if let (Some(h), Some(s)) = (&config.status_header, status) {
        set_header(h, Some(s.as_str()));
    }
}

fn set_state_status(status: Option<TokenStatus>) {
    if let Some(s) = status {
        set_state(STATE_STATUS, s.as_str());
    }
}

fn set_state(key: &str, value: &str) {
    let _ = abi::set_property(&[key], value.as_bytes());
}

/// Whether Envoy would keep an info-level line from this plugin: the
/// decision log (and the token facts it needs, including a SHA-256) is only
/// built when it will be written. On any doubt, it is.
pub fn decision_log_enabled() -> bool {
    abi::log_enabled(LogLevel::Info)
}

fn log(level: LogLevel, msg: &str) {
    abi::log(level, msg);
}
