//! The proxy-wasm glue: the only code that talks to the host. It reads the
//! configuration, snapshots request headers, asks `policy` for a decision and
//! applies it; for remote JWKS it turns host callbacks (tick, call response,
//! request gone) into [`KeyLifecycle`] events and applies what comes back
//! (tick period, requests to decide again). Nothing here decides anything.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

use crate::config::Config;
use crate::diag;
use crate::error::AuthError;
use crate::extract::RequestView;
use crate::filter_host::{self, Host};
use crate::hostverify::HostAlgs;
use crate::metrics::Metrics;
use crate::policy::{self, Decision};
use crate::remote_keys::{self, KeyLifecycle, ParkResult, Parked};
use crate::revocation_feeds::RevocationFeeds;

mod observe;
mod route;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    std::panic::set_hook(Box::new(|info| {
        let msg = format!("jwt_filter: panic (VM will abort): {info}");
        let _ = hostcalls::log(LogLevel::Critical, &msg);
    }));
    proxy_wasm::set_root_context(|id| -> Box<dyn RootContext> {
        Box::new(Root { id, vm: None })
    });
}}

/// Per-VM state shared by the root context and its request contexts.
struct Vm {
    config: Rc<Config>,
    /// Filter-wide metric ids, defined once per VM (each provider's are in
    /// its object in `keys`).
    metrics: Metrics,
    /// Algorithms the host verifies.
    host_algs: HostAlgs,
    /// Each provider's keys and token cache, the fetches, the parked requests.
    keys: KeyLifecycle,
    /// Revocation feeds (`None`: no provider has revocation).
    feeds: Option<RevocationFeeds>,
}

type SharedVm = Rc<RefCell<Vm>>;

fn now_ms() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A random number from the host (WASI `random_get`, through the standard
/// library's hash seed), mixed with the clock: seeds the jitter of the key
/// refresh schedule so that Envoys started together drift apart.
fn host_random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

struct Root {
    id: u32,
    vm: Option<SharedVm>,
}

impl Context for Root {
    fn on_http_call_response(&mut self, token: u32, _h: usize, body_size: usize, _t: usize) {
        if let Some(vm) = &self.vm {
            fetch_done(vm, token, body_size);
        }
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = hostcalls::get_buffer(
            proxy_wasm::types::BufferType::PluginConfiguration,
            0,
            usize::MAX,
        )
        .ok()
        .flatten()
        .unwrap_or_default();
        let cfg = match Config::parse(&bytes) {
            Ok(cfg) => cfg,
            Err(errors) => {
                log(
                    LogLevel::Error,
                    &format!(
                        "jwt_filter: invalid plugin configuration, refusing to start: {}",
                        diag::describe(&errors)
                    ),
                );
                return false;
            }
        };
        // The one list `jwt-filter-check` prints too.
        for w in &cfg.warnings {
            log(LogLevel::Warn, &format!("jwt_filter: warning: {w}"));
        }
        log(
            LogLevel::Info,
            &format!(
                "jwt_filter: configured {} provider(s), {} rule(s)",
                cfg.providers.len(),
                cfg.rules.len()
            ),
        );
        let (metrics, provider_metrics) = observe::define_metrics(&cfg);
        let host_algs = filter_host::setup(cfg.host_crypto, &cfg.stat_prefix);
        let config = Rc::new(cfg);
        let owner = remote_keys::unique_owner_id(&mut Host, self.id, now_ms());
        let keys =
            KeyLifecycle::new(config.clone(), provider_metrics, owner).with_seed(host_random());
        observe::record_local_keys(&config, keys.providers());
        // Revocation feeds: polled on the same tick as the keys.
        let feeds = RevocationFeeds::new(&config, &mut Host, owner, now_ms())
            .map(|f| f.with_seed(host_random()));
        let first_tick = keys
            .first_tick_ms()
            .or(feeds.as_ref().map(|_| remote_keys::FIRST_TICK_MS));
        if let Some(ms) = first_tick {
            let _ = hostcalls::set_tick_period(Duration::from_millis(ms));
        }
        self.vm = Some(Rc::new(RefCell::new(Vm {
            config,
            metrics,
            host_algs,
            keys,
            feeds,
        })));
        true
    }

    fn on_tick(&mut self) {
        let Some(vm) = self.vm.clone() else { return };
        let (ready, period) = vm.borrow_mut().keys.on_tick(&mut Host, now_ms());
        if let Some(feeds) = vm.borrow_mut().feeds.as_mut() {
            feeds.on_tick(&mut Host, now_ms());
        }
        if let Some(ms) = period {
            let _ = hostcalls::set_tick_period(Duration::from_millis(ms));
        }
        decide_again(&vm, ready);
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Request {
            id: context_id,
            vm: self.vm.clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// A fetch answered (in the root or in a request context).
fn fetch_done(vm: &SharedVm, token: u32, body_size: usize) {
    if let Some(feeds) = vm.borrow_mut().feeds.as_mut().filter(|f| f.owns(token)) {
        feeds.on_response(&mut Host, now_ms(), token, body_size);
        return;
    }
    let ready = vm
        .borrow_mut()
        .keys
        .on_fetch_response(&mut Host, now_ms(), token, body_size);
    decide_again(vm, ready);
}

/// Decides parked requests again (no more waiting) and resumes the allowed.
fn decide_again(vm: &SharedVm, ready: Vec<Parked>) {
    for w in ready {
        if hostcalls::set_effective_context(w.context_id).is_err() {
            continue; // the request went away meanwhile
        }
        let action = decide_and_apply(vm, &w.view, None, w.context_id, observe::now_ns());
        if action == Action::Continue {
            let _ = hostcalls::resume_http_request();
        }
    }
}

struct Request {
    id: u32,
    vm: Option<SharedVm>,
}

impl Context for Request {
    fn on_http_call_response(&mut self, token: u32, _h: usize, body_size: usize, _t: usize) {
        if let Some(vm) = &self.vm {
            fetch_done(vm, token, body_size);
        }
    }
}

/// A request that ends while parked stops waiting. This runs when the SDK
/// drops the context (`proxy_on_delete`), so `proxy_on_done` need not be
/// exported: one crossing into the VM less per request.
impl Drop for Request {
    fn drop(&mut self) {
        if let Some(vm) = &self.vm {
            if let Ok(mut v) = vm.try_borrow_mut() {
                v.keys.on_request_gone(self.id);
            }
        }
    }
}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let started_ns = observe::now_ns();
        let Some(vm) = self.vm.clone() else {
            // Never configured: fail closed.
            observe::send_denial(
                &RequestView::default(),
                AuthError::JwksUnavailable,
                None,
                None,
            );
            return Action::Pause;
        };
        let config = vm.borrow().config.clone();
        let headers = request_headers();
        let bytes = headers.len();
        let mut view = RequestView::from_serialized(headers);
        // Strip inbound copies of every header the filter writes (only the
        // ones present: one host call saved per absent header).
        for name in &config.sanitize_headers {
            if view.remove(name) {
                let _ = hostcalls::set_map_value(
                    proxy_wasm::types::MapType::HttpRequestHeaders,
                    name,
                    None,
                );
            }
        }
        if policy::bypasses_as_cors_preflight(&config, &view) {
            vm.borrow().metrics.on_cors_bypass(&Host);
            observe::set_status_header(&config, Some(crate::authz::TokenStatus::NotRequired));
            return Action::Continue;
        }
        decide_and_apply(&vm, &view, Some(bytes), self.id, started_ns)
    }
}

/// Decides and acts on the current (effective) request context. With
/// `may_wait` (the size of the request's headers), a denial that a JWKS
/// fetch could change parks the request. `started_ns`: when the filter
/// started on it (host clock), for the decision-time histogram.
fn decide_and_apply(
    vm: &SharedVm,
    view: &RequestView,
    may_wait: Option<usize>,
    context_id: u32,
    started_ns: u64,
) -> Action {
    let now = started_ns / 1_000_000;
    if may_wait.is_some() {
        vm.borrow_mut().keys.before_decide(&mut Host, now);
    }
    // One host call: whether a denial's log line (and the token facts it
    // needs) will be kept.
    let log_denials = observe::decision_log_enabled();
    let facts = route::facts(&vm.borrow().config);
    let (mut outcome, waits, cache) = {
        let v = vm.borrow();
        filter_host::evaluate(
            &v.config,
            v.keys.providers(),
            v.host_algs,
            &v.metrics,
            view,
            now / 1000,
            v.feeds.as_ref().map(RevocationFeeds::revocations),
            |ev| {
                ev.token_facts = log_denials;
                ev.route = facts;
                let outcome = ev.outcome();
                (outcome, std::mem::take(&mut ev.waits), ev.cache_counts())
            },
        )
    };
    if let (Some(bytes), Decision::Deny(_)) = (may_wait, &outcome.decision) {
        let parked = vm
            .borrow_mut()
            .keys
            .park(&mut Host, now, context_id, view, bytes, &waits);
        match parked {
            ParkResult::Parked => return Action::Pause,
            ParkResult::Deny(err) => outcome.decision = Decision::Deny(err),
            // Keys another VM just fetched are installed: decide with them.
            ParkResult::DecideAgain => {
                return decide_and_apply(vm, view, None, context_id, started_ns)
            }
            ParkResult::DecideNow => {}
        }
    }
    let v = vm.borrow();
    let timing = observe::timing_of(&outcome, cache);
    let action = observe::apply(
        &v.config,
        &v.metrics,
        v.keys.providers(),
        view,
        outcome,
        log_denials,
    );
    observe::record_time(&v.metrics, timing, started_ns);
    action
}

#[link(wasm_import_module = "env")]
extern "C" {
    // The SDK declares this import with enum types and panics on an
    // unexpected status; plain integers are the same ABI.
    #[link_name = "proxy_get_header_map_pairs"]
    fn raw_get_header_map_pairs(map_type: u32, data: *mut *mut u8, size: *mut usize) -> u32;
}

/// The request headers, serialized as the host wrote them (see
/// [`RequestView::from_serialized`]): one buffer, no copy, no per-header
/// allocation. Read as bytes, not through the SDK's string accessors, which
/// panic on a value that is not UTF-8 and would kill the VM. Empty on any
/// host error.
fn request_headers() -> Vec<u8> {
    filter_host::host_buffer(|data, size| {
        // SAFETY: every pointer is valid for the duration of the call.
        unsafe {
            raw_get_header_map_pairs(
                proxy_wasm::types::MapType::HttpRequestHeaders as u32,
                data,
                size,
            )
        }
    })
    .unwrap_or_default()
}

/// Logging that never fails the request.
fn log(level: LogLevel, msg: &str) {
    let _ = hostcalls::log(level, msg);
}
