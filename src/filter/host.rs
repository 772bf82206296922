//! Host glue: the proxy-wasm [`Host`] behind the metric, shared-data,
//! key-lifecycle and feed traits, and offloaded signature verification (the
//! configure-time probe and the verifier the request path uses; the logic is
//! in [`crate::crypto::hostverify`]). Every host call goes through [`abi`].

use std::cell::RefCell;

use super::abi::{self, BufferType, LogLevel, MapType, MetricType};

use crate::config::Config;
use crate::crypto::hostverify::{self, HostAlgs};
use crate::crypto::jwks::{Alg, Key};
use crate::extract::RequestView;
use crate::keys::remote::{FetchRequest, KeyHost, Level};
use crate::keys::ProviderState;
use crate::metrics::{MetricHost, MetricKind, Metrics};
use crate::policy::Evaluator;
#[cfg(feature = "revocation")]
pub use crate::revocation::Revocations;
#[cfg(feature = "revocation")]
use crate::revocation_feeds::{FeedCall, FeedHost};
use crate::sender::replay::ReplayCache;
use crate::shared_data::SharedData;

/// Built without revocation feeds: a type with no values, so no request
/// path code checks revocation.
#[cfg(not(feature = "revocation"))]
pub enum Revocations {}

fn host_call(args: &[u8]) -> Result<Vec<u8>, u32> {
    abi::call_foreign(hostverify::FUNCTION, args)
}

/// Decides which algorithms the host verifies in this VM: none when
/// `enabled` is false (config `host_crypto: false`), else those that pass
/// the known-answer probe. Logs one line, and sets two gauges per
/// offloadable algorithm (label `alg`): `host_crypto` (1 host, 0 wasm) and
/// `host_crypto_fallback` (1 when the host was wanted but failed the probe).
pub fn setup(enabled: bool, stat_prefix: &str) -> HostAlgs {
    let (algs, why) = if enabled {
        let p = hostverify::probe(host_call);
        (p.host, p.problems)
    } else {
        (
            HostAlgs::NONE,
            vec!["host_crypto is false in the configuration".to_string()],
        )
    };
    let mut line = format!("jwt_filter: signature verification: {}", algs.describe());
    if !why.is_empty() {
        line.push_str(&format!(" ({})", why.join("; ")));
    }
    abi::log(
        if enabled && !why.is_empty() {
            LogLevel::Warn
        } else {
            LogLevel::Info
        },
        &line,
    );
    for alg in hostverify::OFFLOADABLE {
        let host = algs.contains(alg);
        for (name, value) in [
            ("host_crypto", host),
            // Wanted (host_crypto on) but the probe failed: the wasm fallback.
            ("host_crypto_fallback", enabled && !host),
        ] {
            let name = crate::metrics::stat_name(stat_prefix, name, &[("alg", alg.name())]);
            if let Ok(id) = abi::define_metric(MetricType::Gauge, &name) {
                abi::record_metric(id, u64::from(value));
            }
        }
    }
    algs
}

/// Verifies one signature, through the host for the algorithms in `host`.
// Not inlined into the signature loop: its body (host offload and the pure
// fallback for every algorithm) would make that loop one of V8's largest compile zones.
#[inline(never)]
pub fn verify(host: HostAlgs, key: &Key, alg: Alg, input: &[u8], signature: &[u8]) -> bool {
    hostverify::verify_with(host, host_call, key, alg, input, signature)
}

/// Moves `jwt_cache_hit` / `jwt_cache_miss`.
pub fn count_cache(metrics: &Metrics, (hits, misses): (u32, u32)) {
    for (id, n) in [
        (metrics.jwt_cache_hit, hits),
        (metrics.jwt_cache_miss, misses),
    ] {
        if let (Some(id), true) = (id, n > 0) {
            abi::increment_metric(id, i64::from(n));
        }
    }
}

/// Runs one evaluation with this VM's host algorithms, keys and token
/// caches. `f` gets the evaluator; its cache counts are recorded afterwards.
#[allow(clippy::too_many_arguments)]
pub fn evaluate<T>(
    config: &Config,
    providers: &[ProviderState],
    host: HostAlgs,
    metrics: &Metrics,
    view: &RequestView,
    now_secs: u64,
    revocation: Option<&Revocations>,
    local_replay: Option<&RefCell<ReplayCache>>,
    f: impl FnOnce(&mut Evaluator<'_, '_>) -> T,
) -> T {
    let verify = move |k: &Key, a: Alg, i: &[u8], s: &[u8]| verify(host, k, a, i, s);
    let mut ev = Evaluator::new(config, providers, view, now_secs, &verify);
    ev.shared = Some(&Host);
    #[cfg(feature = "revocation")]
    {
        ev.revocation = revocation;
    }
    #[cfg(not(feature = "revocation"))]
    let _ = revocation;
    ev.local_replay = local_replay;
    let out = f(&mut ev);
    count_cache(metrics, ev.cache_counts());
    out
}

/// The proxy-wasm host: metrics, shared data, HTTP calls, logs.
pub struct Host;

impl SharedData for Host {
    fn shared_get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        abi::shared_get(key).unwrap_or((None, None))
    }
    fn shared_set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        abi::shared_set(key, value, cas).is_ok()
    }
}

impl MetricHost for Host {
    fn define(&mut self, kind: MetricKind, name: &str) -> Option<u32> {
        let t = match kind {
            MetricKind::Counter => MetricType::Counter,
            MetricKind::Gauge => MetricType::Gauge,
            MetricKind::Histogram => MetricType::Histogram,
        };
        abi::define_metric(t, name).ok()
    }
    fn increment(&self, id: u32, delta: i64) {
        abi::increment_metric(id, delta);
    }
    fn record(&self, id: u32, value: u64) {
        abi::record_metric(id, value);
    }
}

impl KeyHost for Host {
    fn dispatch(&mut self, r: &FetchRequest) -> Result<u32, String> {
        let headers = vec![
            (":method", "GET"),
            (":path", r.path.as_str()),
            (":authority", r.authority.as_str()),
            (":scheme", r.scheme),
            ("accept", "application/json"),
            ("user-agent", "jwt-filter"),
        ];
        abi::http_call(&r.cluster, &headers, &[], r.timeout_ms)
            .map_err(|status| format!("host status {status}"))
    }
    /// Read as bytes: the SDK's string accessor panics on a value that is
    /// not UTF-8, which would kill the VM.
    fn response_header(&self, name: &str) -> Option<String> {
        abi::header_value(MapType::HttpCallResponseHeaders, name)
            .ok()
            .flatten()
            .map(|v| String::from_utf8_lossy(&v).into_owned())
    }
    fn response_body(&self, size: usize) -> Vec<u8> {
        abi::buffer(BufferType::HttpCallResponseBody, 0, size).unwrap_or_default()
    }
    fn log(&mut self, level: Level, message: &str) {
        let level = match level {
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
        };
        abi::log(level, message);
    }
}

/// Revocation feeds: their calls carry a method, headers and a body.
#[cfg(feature = "revocation")]
impl FeedHost for Host {
    fn dispatch_call(&mut self, c: &FeedCall) -> Result<u32, String> {
        let r = &c.request;
        let mut headers = vec![
            (":method", c.method),
            (":path", r.path.as_str()),
            (":authority", r.authority.as_str()),
            (":scheme", r.scheme),
            ("user-agent", "jwt-filter"),
        ];
        for (k, v) in &c.headers {
            headers.push((k, v.as_str()));
        }
        abi::http_call(&r.cluster, &headers, &c.body, r.timeout_ms)
            .map_err(|status| format!("host status {status}"))
    }
}
