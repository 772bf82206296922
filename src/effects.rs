//! What a decision does to the request, as a plan the glue carries out: the
//! request headers to set and remove, the filter state to write, the local
//! reply (or none: the request goes on), the decision log line, and the
//! counters (moved here, through [`MetricHost`]). Report mode, the
//! `strip_failure_response` reply, the `scope` of an `insufficient_scope`
//! challenge and the DPoP challenge are decided here, not in the glue.

use crate::authz::{Mode, TokenStatus};
use crate::config::{Config, KeySource};
use crate::decision::{Decision, HeaderOp, Outcome};
use crate::decision_log::{self, Entry, Verdict};
use crate::error::AuthError;
use crate::extract::RequestView;
use crate::keys::ProviderState;
use crate::matcher::path_only;
use crate::metrics::{KeySourceKind, Layout, MetricHost, Metrics, Timing};
use crate::sender::dpop::{denial_headers, DpopSettings};

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

/// A reply from the filter in place of the upstream's.
#[derive(Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u32,
    pub headers: Vec<(&'static str, String)>,
    pub body: &'static str,
}

/// Everything the host is to do for one decision, in this order: request
/// headers, filter state, log line, then the reply (the request stops) or
/// none (it goes on).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// Request headers to set (`Some`) or remove (`None`), in order.
    pub headers: Vec<(String, Option<String>)>,
    /// Filter state to write (key, value).
    pub state: Vec<(&'static str, String)>,
    /// The decision log line (a denial, when the log is kept).
    pub log: Option<String>,
    /// The local reply; `None`: the request continues.
    pub reply: Option<Reply>,
}

impl Effects {
    fn status_header(&mut self, config: &Config, status: Option<TokenStatus>) {
        if let (Some(h), Some(s)) = (&config.status_header, status) {
            self.headers.push((h.clone(), Some(s.as_str().to_string())));
        }
    }

    fn state_status(&mut self, status: Option<TokenStatus>) {
        if let Some(s) = status {
            self.state.push((STATE_STATUS, s.as_str().to_string()));
        }
    }
}

/// The metric layout of a configuration: its providers (and where their keys
/// come from) and its named rules.
pub fn layout(config: &Config) -> Layout<'_> {
    Layout {
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
    }
}

/// The plan for a CORS preflight let through without a token (counted), or
/// `None` when `view` is not one that `bypass_cors_preflight` lets through.
pub fn cors_bypass(
    config: &Config,
    metrics: &Metrics,
    host: &dyn MetricHost,
    view: &RequestView,
) -> Option<Effects> {
    if !crate::policy::bypasses_as_cors_preflight(config, view) {
        return None;
    }
    metrics.on_cors_bypass(host);
    let mut fx = Effects::default();
    fx.status_header(config, Some(TokenStatus::NotRequired));
    Some(fx)
}

/// The plan for `outcome`, counting it on `host`. `providers`: each
/// provider's state (its metric ids), indexed like `config.providers`; `log_denials`:
/// build the decision log line for a denial; `now`: seconds since the epoch
/// (the `DPoP-Nonce` of a challenge).
#[allow(clippy::too_many_arguments)]
pub fn plan(
    config: &Config,
    metrics: &Metrics,
    providers: &[ProviderState],
    host: &dyn MetricHost,
    view: &RequestView,
    outcome: Outcome,
    log_denials: bool,
    now: u64,
) -> Effects {
    let ids = |i: &usize| providers.get(*i).map(|p| &p.metrics);
    let provider_name = |i: Option<usize>| -> Option<&str> {
        i.and_then(|i| config.providers.get(i))
            .map(|p| p.name.as_str())
    };
    let mut fx = Effects::default();
    match outcome.decision {
        Decision::NoAuth => fx.status_header(config, outcome.status),
        Decision::Allow(ops) => {
            fx.headers.extend(ops.into_iter().map(|op| match op {
                HeaderOp::Set(name, value) => (name, Some(value)),
                HeaderOp::Remove(name) => (name, None),
            }));
            metrics.on_allow(
                host,
                outcome.accepted.iter().filter_map(ids),
                outcome.rule,
                outcome.mode,
            );
            fx.status_header(config, outcome.status);
            if config.filter_state {
                fx.state.push((STATE_DECISION, "allow".to_string()));
                fx.state_status(outcome.status);
                if let Some(p) = provider_name(outcome.accepted.first().copied()) {
                    fx.state.push((STATE_PROVIDER, p.to_string()));
                }
                if let Some(payload) = outcome.payload {
                    fx.state.push((STATE_PAYLOAD, payload));
                }
            }
        }
        Decision::Deny(err) => {
            let report = outcome.mode == Mode::Report;
            if report {
                metrics.on_would_deny(host, err, outcome.rule);
            } else {
                metrics.on_deny(
                    host,
                    err,
                    outcome.blamed.as_ref().and_then(ids),
                    outcome.rule,
                );
            }
            let provider = provider_name(outcome.blamed);
            let blamed = outcome.blamed.and_then(|i| config.providers.get(i));
            if log_denials {
                fx.log = Some(decision_log::line(
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
                ));
            }
            if config.filter_state {
                let decision = if report { "would_deny" } else { "deny" };
                fx.state.push((STATE_DECISION, decision.to_string()));
                fx.state_status(outcome.status);
                fx.state.push((STATE_REASON, err.reason().to_string()));
                if let Some(p) = provider {
                    fx.state.push((STATE_PROVIDER, p.to_string()));
                }
            }
            if report {
                fx.status_header(config, outcome.status);
                return fx;
            }
            fx.reply = Some(if config.strip_failure_response {
                // jwt_authn's strip_failure_response: the status alone.
                Reply {
                    status: err.status(),
                    headers: Vec::new(),
                    body: "",
                }
            } else if err == AuthError::WrongRequirement {
                // jwt_authn's reply to an unknown requirement_name: no challenge.
                Reply {
                    status: err.status(),
                    headers: Vec::new(),
                    body: err.body(),
                }
            } else {
                let scope = outcome
                    .rule
                    .and_then(|r| config.rules.get(r))
                    .and_then(|r| r.authz.scope_text.as_deref())
                    .filter(|_| err == AuthError::InsufficientScope);
                denial(view, err, scope, blamed.and_then(|p| p.dpop.as_ref()), now)
            });
        }
    }
    fx
}

/// The RFC 6750 (or RFC 9449, with `dpop`: the blamed provider's DPoP
/// settings) reply to a denial: status, `WWW-Authenticate` challenge with the
/// request's URL as realm, and the body.
pub fn denial(
    view: &RequestView,
    err: AuthError,
    scope: Option<&str>,
    dpop: Option<&DpopSettings>,
    now: u64,
) -> Reply {
    let realm = format!(
        "{}://{}{}",
        view.header(":scheme").unwrap_or("http"),
        view.header(":authority").unwrap_or(""),
        path_only(view.path())
    );
    Reply {
        status: err.status(),
        headers: denial_headers(&realm, err, scope, dpop, now),
        body: err.body(),
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

#[cfg(test)]
#[path = "effects/tests.rs"]
mod tests;
