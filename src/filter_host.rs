//! Host glue: the proxy-wasm [`Host`] behind the metric and key-lifecycle
//! traits, and offloaded signature verification: the raw
//! `proxy_call_foreign_function` call (every status handled, the result
//! buffer owned and freed), the configure-time probe, and the verifier the
//! request path uses. The logic is in [`crate::hostverify`].
//!
//! Why the raw host function: proxy-wasm 0.2.5's
//! `hostcalls::call_foreign_function` panics on statuses it does not expect,
//! and with `panic = "abort"` that kills the VM.

use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, LogLevel, MapType, MetricType};

use crate::config::Config;
use crate::dpop::SharedData;
use crate::extract::RequestView;
use crate::hostverify::{self, status, HostAlgs};
use crate::jwks::{Alg, Key};
use crate::keys::ProviderKeys;
use crate::metrics::{MetricHost, MetricKind, Metrics};
use crate::policy::Evaluator;
use crate::remote_keys::{FetchRequest, KeyHost, Level};
use crate::revocation::Revocations;
use crate::revocation_feeds::{FeedCall, FeedHost};

#[link(wasm_import_module = "env")]
extern "C" {
    // The SDK declares the same import with its `Status` enum as the return
    // type; a u32 is the same ABI and cannot hold an invalid discriminant.
    #[link_name = "proxy_call_foreign_function"]
    fn raw_call_foreign_function(
        function_name_data: *const u8,
        function_name_size: usize,
        arguments_data: *const u8,
        arguments_size: usize,
        results_data: *mut *mut u8,
        results_size: *mut usize,
    ) -> u32;
    // The SDK's `get_map_value_bytes` panics on a status other than Ok and
    // NotFound; Envoy answers BadArgument for the call answer's headers in
    // the callback of a failed call (reset, answer over the buffer limit),
    // where there is no answer.
    #[link_name = "proxy_get_header_map_value"]
    fn raw_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *mut *mut u8,
        value_size: *mut usize,
    ) -> u32;
}

/// Runs a host call that hands back a buffer through out-pointers (`data`,
/// `size`) and takes ownership of that buffer: `Ok(bytes)` when the call
/// returns status 0 (no buffer: empty), `Err(status)` otherwise (a buffer
/// the host wrote anyway is freed). The one place that turns host memory
/// into a `Vec`.
pub fn host_buffer(call: impl FnOnce(*mut *mut u8, *mut usize) -> u32) -> Result<Vec<u8>, u32> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    let code = call(&mut data, &mut size);
    let bytes = if data.is_null() {
        Vec::new()
    } else {
        // SAFETY: the host has pointed `data` at `size` bytes it allocated
        // through this module's `proxy_on_memory_allocate` (a `Vec<u8>` of
        // exactly `size` bytes), which we now own, as the SDK does:
        // capacity == length == size.
        unsafe { Vec::from_raw_parts(data, size, size) }
    };
    if code == status::OK {
        Ok(bytes)
    } else {
        Err(code)
    }
}

/// Calls a foreign function: `Ok(result bytes)` or `Err(status)`.
fn call_foreign(name: &str, args: &[u8]) -> Result<Vec<u8>, u32> {
    host_buffer(|data, size| {
        // SAFETY: every pointer is valid for the duration of the call.
        unsafe {
            raw_call_foreign_function(
                name.as_ptr(),
                name.len(),
                args.as_ptr(),
                args.len(),
                data,
                size,
            )
        }
    })
}

fn host_call(args: &[u8]) -> Result<Vec<u8>, u32> {
    call_foreign(hostverify::FUNCTION, args)
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
    let _ = hostcalls::log(
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
            if let Ok(id) = hostcalls::define_metric(MetricType::Gauge, &name) {
                let _ = hostcalls::record_metric(id, u64::from(value));
            }
        }
    }
    algs
}

/// Verifies one signature, through the host for the algorithms in `host`.
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
            let _ = hostcalls::increment_metric(id, i64::from(n));
        }
    }
}

/// Runs one evaluation with this VM's host algorithms, keys and token
/// caches. `f` gets the evaluator; its cache counts are recorded afterwards.
#[allow(clippy::too_many_arguments)]
pub fn evaluate<T>(
    config: &Config,
    providers: &[ProviderKeys],
    host: HostAlgs,
    metrics: &Metrics,
    view: &RequestView,
    now_secs: u64,
    revocation: Option<&Revocations>,
    f: impl FnOnce(&mut Evaluator<'_, '_>) -> T,
) -> T {
    let verify = move |k: &Key, a: Alg, i: &[u8], s: &[u8]| verify(host, k, a, i, s);
    let mut ev = Evaluator::new(config, providers, view, now_secs, &verify);
    ev.shared = Some(&Host);
    ev.revocation = revocation;
    let out = f(&mut ev);
    count_cache(metrics, ev.cache_counts());
    out
}

/// The proxy-wasm host: metrics, shared data, HTTP calls, logs.
pub struct Host;

impl SharedData for Host {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        self.shared_get(key)
    }
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        hostcalls::set_shared_data(key, Some(value), cas).is_ok()
    }
}

impl MetricHost for Host {
    fn define(&mut self, kind: MetricKind, name: &str) -> Option<u32> {
        let t = match kind {
            MetricKind::Counter => MetricType::Counter,
            MetricKind::Gauge => MetricType::Gauge,
            MetricKind::Histogram => MetricType::Histogram,
        };
        hostcalls::define_metric(t, name).ok()
    }
    fn increment(&self, id: u32, delta: i64) {
        let _ = hostcalls::increment_metric(id, delta);
    }
    fn record(&self, id: u32, value: u64) {
        let _ = hostcalls::record_metric(id, value);
    }
}

impl KeyHost for Host {
    fn shared_get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        hostcalls::get_shared_data(key).unwrap_or((None, None))
    }
    fn shared_set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        hostcalls::set_shared_data(key, Some(value), cas).is_ok()
    }
    fn dispatch(&mut self, r: &FetchRequest) -> Result<u32, String> {
        let headers = vec![
            (":method", "GET"),
            (":path", r.path.as_str()),
            (":authority", r.authority.as_str()),
            (":scheme", r.scheme),
            ("accept", "application/json"),
            ("user-agent", "jwt-filter"),
        ];
        let timeout = Duration::from_millis(r.timeout_ms);
        hostcalls::dispatch_http_call(&r.cluster, headers, None, vec![], timeout)
            .map_err(|status| format!("{status:?}"))
    }
    /// Read as bytes through the raw import: the SDK's string accessor
    /// panics on a value that is not UTF-8, and both its accessors on the
    /// BadArgument Envoy gives after a failed call; either would kill the VM.
    /// `None` on any status but Ok.
    fn response_header(&self, name: &str) -> Option<String> {
        host_buffer(|data, size| {
            // SAFETY: the key and the out-pointers are valid for the call.
            unsafe {
                raw_get_header_map_value(
                    MapType::HttpCallResponseHeaders as u32,
                    name.as_ptr(),
                    name.len(),
                    data,
                    size,
                )
            }
        })
        .ok()
        .map(|v| String::from_utf8_lossy(&v).into_owned())
    }
    fn response_body(&self, size: usize) -> Vec<u8> {
        hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, size)
            .ok()
            .flatten()
            .unwrap_or_default()
    }
    fn log(&mut self, level: Level, message: &str) {
        let level = match level {
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
        };
        let _ = hostcalls::log(level, message);
    }
}

/// Revocation feeds: their calls carry a method, headers and a body.
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
        let body = (!c.body.is_empty()).then_some(c.body.as_slice());
        let timeout = Duration::from_millis(r.timeout_ms);
        hostcalls::dispatch_http_call(&r.cluster, headers, body, vec![], timeout)
            .map_err(|status| format!("{status:?}"))
    }
}
