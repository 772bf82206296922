//! Host glue for offloaded signature verification: the raw
//! `proxy_call_foreign_function` call (every status handled, the result
//! buffer owned and freed), the configure-time probe, and the verifier the
//! request path uses. The logic is in [`crate::hostverify`].
//!
//! Why the raw host function: proxy-wasm 0.2.5's
//! `hostcalls::call_foreign_function` panics on statuses it does not expect,
//! and with `panic = "abort"` that kills the VM.

use std::cell::RefCell;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{LogLevel, MetricType};

use crate::config::Config;
use crate::extract::RequestView;
use crate::hostverify::{self, status, HostAlgs};
use crate::jwks::{Alg, Key};
use crate::metrics::Metrics;
use crate::policy::{Evaluator, RemoteKeys};
use crate::token_cache::{self, TokenCache};

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

/// A VM's verification state: which algorithms the host checks, and one
/// verified-token cache per provider.
pub struct Crypto {
    pub host: HostAlgs,
    pub caches: RefCell<Vec<TokenCache>>,
}

impl Crypto {
    /// Probes the host (see [`setup`]) and sizes each provider's cache by
    /// its `jwt_cache_config`.
    pub fn new(config: &Config) -> Crypto {
        let caches = config
            .providers
            .iter()
            .map(|p| TokenCache::new(p.jwt_cache_size, token_cache::MAX_BYTES))
            .collect();
        Crypto {
            host: setup(config.host_crypto, &config.stat_prefix),
            caches: RefCell::new(caches),
        }
    }
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

/// Runs one evaluation with this VM's host algorithms and token caches.
/// `f` gets the evaluator; its cache counts are recorded afterwards.
pub fn evaluate<T>(
    config: &Config,
    remote: &[RemoteKeys],
    crypto: &Crypto,
    metrics: &Metrics,
    view: &RequestView,
    now_secs: u64,
    f: impl FnOnce(&mut Evaluator<'_, '_>) -> T,
) -> T {
    let host = crypto.host;
    let verify = move |k: &Key, a: Alg, i: &[u8], s: &[u8]| verify(host, k, a, i, s);
    let mut ev = Evaluator::new(config, remote, view, now_secs, &verify).with_cache(&crypto.caches);
    let out = f(&mut ev);
    count_cache(metrics, ev.cache_counts());
    out
}
