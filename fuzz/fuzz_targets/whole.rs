//! The whole decision from one input, as Envoy's `jwt_authn` fuzzer does it:
//! the configuration, the signing keys, the clock and the request all come
//! from the fuzzer. The configuration is parsed and validated; its keys are
//! replaced by the input's JWKS (inline, so no host is needed); the request
//! is decided at the input's time, and the decision planned into its effects
//! (headers, filter state, log line, reply).
//!
//! Input (text, sections separated by a line `---`):
//! the time in seconds since the epoch; the plugin configuration (JSON); the
//! JWKS (JSON); the request headers (as the `extract` target, see common.rs).
#![no_main]

#[path = "common.rs"]
mod common;

use jwt_filter::config::Config;
use jwt_filter::effects;
use jwt_filter::extract::RequestView;
use jwt_filter::keys::ProviderState;
use jwt_filter::metrics::{MetricHost, MetricKind, Metrics};
use jwt_filter::policy::Evaluator;
use jwt_filter::token;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Counts nothing; every metric gets an id, as Envoy gives.
struct NoMetrics;

impl MetricHost for NoMetrics {
    fn define(&mut self, _kind: MetricKind, _name: &str) -> Option<u32> {
        Some(1)
    }
    fn increment(&self, _id: u32, _delta: i64) {}
    fn record(&self, _id: u32, _value: u64) {}
}

/// The configuration with every provider's keys replaced by `jwks`; the
/// text as it is when it is not a JSON object with providers.
fn with_keys(config: &str, jwks: &str) -> Vec<u8> {
    let Ok(mut v) = serde_json::from_str::<Value>(config) else {
        return config.as_bytes().to_vec();
    };
    if let Some(providers) = v.get_mut("providers").and_then(Value::as_object_mut) {
        for p in providers.values_mut().filter_map(Value::as_object_mut) {
            p.remove("remote_jwks");
            p.remove("remoteJwks");
            p.insert(
                "local_jwks".to_string(),
                serde_json::json!({ "inline_string": jwks }),
            );
        }
    }
    v.to_string().into_bytes()
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(4, "\n---\n");
    let now = parts
        .next()
        .and_then(|t| t.trim().parse::<u64>().ok())
        .unwrap_or(1_700_000_000);
    let config = parts.next().unwrap_or("");
    let jwks = parts.next().unwrap_or("");
    let request = parts.next().unwrap_or("");
    let Ok(cfg) = Config::parse(&with_keys(config, jwks)) else {
        return;
    };
    let mut host = NoMetrics;
    let (metrics, ids) = Metrics::define(&mut host, &cfg.stat_prefix, &effects::layout(&cfg));
    let providers = ProviderState::for_config(&cfg, ids);
    let view = RequestView::new(common::headers(request.as_bytes()));
    if effects::cors_bypass(&cfg, &metrics, &host, &view).is_some() {
        return;
    }
    // Twice: the second decision may hit the token cache the first filled.
    for _ in 0..2 {
        let outcome = Evaluator::new(&cfg, &providers, &view, now, &token::native_verify).outcome();
        let _ = effects::plan(&cfg, &metrics, &providers, &host, &view, outcome, true, now);
    }
});
