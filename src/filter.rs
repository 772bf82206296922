//! The proxy-wasm glue: the only code that talks to the host. It reads the
//! configuration, snapshots request headers, asks `policy` for a decision and
//! applies it; for remote JWKS it runs the fetches that `jwks_store` schedules
//! and parks requests that wait for keys. Nothing here decides anything.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

use crate::config::{self, Config, KeySource, RemoteJwks};
use crate::error::AuthError;
use crate::extract::RequestView;
use crate::filter_host;
use crate::jwks::KeySet;
use crate::jwks_store::{self, Meta, MAX_JWKS_BYTES};
use crate::metrics::Metrics;
use crate::policy::{Decision, RemoteKeys, Wait};

mod observe;
mod route;

/// Tick period while requests wait for keys, and otherwise.
const FAST_TICK: Duration = Duration::from_millis(50);
const SLOW_TICK: Duration = Duration::from_millis(500);

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    std::panic::set_hook(Box::new(|info| {
        let msg = format!("jwt_filter: panic (VM will abort): {info}");
        let _ = hostcalls::log(LogLevel::Critical, &msg);
    }));
    proxy_wasm::set_root_context(|id| -> Box<dyn RootContext> {
        Box::new(Root { id, vm: None, fast: None })
    });
}}

/// Per-VM state shared by the root context and its request contexts.
struct Vm {
    config: Rc<Config>,
    /// Metric ids, defined once per VM (issue 4).
    metrics: Rc<Metrics>,
    /// Lease owner id, unique across this Envoy's VMs.
    owner: u64,
    /// Provider index -> fetched keys (remote providers only).
    remote: Vec<RemoteKeys>,
    /// Provider index -> `Meta.version` of the keys installed in `remote`.
    installed: Vec<u64>,
    /// In-flight fetches: call token -> provider index.
    fetching: Vec<(u32, usize, FetchKind)>,
    /// Requests parked until a fetch completes.
    waiters: Vec<Waiter>,
    /// Host-offloaded algorithms and verified-token caches (issue 5).
    crypto: filter_host::Crypto,
}

struct Waiter {
    context_id: u32,
    view: RequestView,
    /// (provider, why, `Meta.attempts` when parked). A first-fetch wait ends
    /// when the provider has keys or has run out of retries; an unknown-kid
    /// wait when one more fetch attempt has completed.
    providers: Vec<(usize, Wait, u64)>,
    deadline_ms: u64,
}

type SharedVm = Rc<RefCell<Vm>>;

fn now_ms() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn remote_of(config: &Config, idx: usize) -> Option<&RemoteJwks> {
    match config.providers.get(idx).map(|p| &p.keys) {
        Some(KeySource::Remote(r)) => Some(r),
        _ => None,
    }
}

struct Root {
    id: u32,
    vm: Option<SharedVm>,
    /// Whether the tick period is currently the fast one (`None`: initial).
    fast: Option<bool>,
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
                log::error(&format!(
                    "jwt_filter: invalid plugin configuration, refusing to start: {}",
                    config::describe(&errors)
                ));
                return false;
            }
        };
        for w in &cfg.warnings {
            log::warn(&format!("jwt_filter: config warning: {w}"));
        }
        for w in crate::safety::warnings(&cfg) {
            log::warn(&format!("jwt_filter: unsafe setup: {w}"));
        }
        log::info(&format!(
            "jwt_filter: configured {} provider(s), {} rule(s)",
            cfg.providers.len(),
            cfg.rules.len()
        ));
        let n = cfg.providers.len();
        let has_remote = (0..n).any(|i| remote_of(&cfg, i).is_some());
        let metrics = Rc::new(observe::define_metrics(&cfg));
        let crypto = filter_host::Crypto::new(&cfg);
        let vm = Vm {
            config: Rc::new(cfg),
            metrics,
            owner: unique_owner_id(self.id),
            remote: vec![RemoteKeys::Pending; n],
            installed: vec![0; n],
            fetching: Vec::new(),
            waiters: Vec::new(),
            crypto,
        };
        self.vm = Some(Rc::new(RefCell::new(vm)));
        self.fast = None;
        if has_remote {
            // The first tick fetches (or picks up keys another VM fetched);
            // a short delay lets Envoy finish initialising its clusters.
            let _ = hostcalls::set_tick_period(Duration::from_millis(100));
        }
        true
    }

    fn on_tick(&mut self) {
        let Some(vm) = self.vm.clone() else { return };
        let now = now_ms();
        let n = vm.borrow().config.providers.len();
        for idx in 0..n {
            sync_provider(&vm, idx, now, false);
        }
        resolve_waiters(&vm, now);
        // Fast while requests wait or keys have not arrived yet.
        let fast = {
            let v = vm.borrow();
            !v.waiters.is_empty()
                || v.remote.iter().enumerate().any(|(i, k)| {
                    matches!(k, RemoteKeys::Pending) && remote_of(&v.config, i).is_some()
                })
        };
        if self.fast != Some(fast) {
            self.fast = Some(fast);
            let _ = hostcalls::set_tick_period(if fast { FAST_TICK } else { SLOW_TICK });
        }
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

/// A lease owner id unique among this Envoy's VMs: a shared counter (with
/// compare-and-swap) mixed with the root context id.
fn unique_owner_id(root_id: u32) -> u64 {
    const KEY: &str = "jwt_filter.vm_seq";
    for _ in 0..16 {
        let (bytes, cas) = hostcalls::get_shared_data(KEY).unwrap_or((None, None));
        let seq: u64 = bytes
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
            + 1;
        if hostcalls::set_shared_data(KEY, Some(seq.to_string().as_bytes()), cas).is_ok() {
            return (seq << 32) | u64::from(root_id);
        }
    }
    (now_ms() << 16) | u64::from(root_id)
}

fn meta_key(r: &RemoteJwks) -> String {
    format!("{}|meta", r.shared_key)
}

fn read_meta(r: &RemoteJwks) -> (Meta, Option<u32>) {
    match hostcalls::get_shared_data(&meta_key(r)) {
        Ok((Some(bytes), cas)) => (Meta::decode(&bytes).unwrap_or_default(), cas),
        _ => (Meta::default(), None),
    }
}

/// Installs keys another VM (or this one) fetched, marks keys that went
/// stale, and starts a fetch when one is due (or `for_kid` asks for one).
/// Returns whether a fetch is now in flight anywhere.
fn sync_provider(vm: &SharedVm, idx: usize, now: u64, for_kid: bool) -> bool {
    let config = vm.borrow().config.clone();
    let Some(r) = remote_of(&config, idx) else {
        return false;
    };
    let name = config
        .providers
        .get(idx)
        .map(|p| p.name.as_str())
        .unwrap_or("");
    let (mut meta, mut cas) = read_meta(r);
    if cas.is_none() {
        // First VM to get here creates the record; the CAS below elects one fetcher.
        let _ = hostcalls::set_shared_data(
            &meta_key(r),
            Some(Meta::default().encode().as_bytes()),
            None,
        );
        (meta, cas) = read_meta(r);
    }
    install_if_newer(vm, idx, name, r, &meta, now);

    let due =
        meta.fetch_due(now) || (for_kid && !meta.leased(now) && meta.kid_refetch_allowed(r, now));
    if !due {
        return meta.leased(now);
    }
    let leased = meta.with_lease(r, vm.borrow().owner, now, for_kid);
    if hostcalls::set_shared_data(&meta_key(r), Some(leased.encode().as_bytes()), cas).is_err() {
        return true; // another VM won the lease
    }
    start_fetch(vm, idx, r, name, now)
}

/// What an in-flight call fetches.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FetchKind {
    Discovery,
    Jwks,
}

fn discovered_key(r: &RemoteJwks) -> String {
    format!("{}|jwks_uri", r.shared_key)
}

/// Dispatches the next call of a fetch this VM holds the lease for: the
/// JWKS itself, or first the OpenID discovery document when `jwks_uri` is
/// not known yet. Returns whether a call is in flight.
fn start_fetch(vm: &SharedVm, idx: usize, r: &RemoteJwks, name: &str, now: u64) -> bool {
    let discovered = if r.oidc_discovery {
        hostcalls::get_shared_data(&discovered_key(r))
            .ok()
            .and_then(|(b, _)| b)
            .and_then(|b| String::from_utf8(b).ok())
            .filter(|u| !u.is_empty())
    } else {
        None
    };
    let (kind, authority, path, uri) = match discovered.as_deref().map(jwks_store::split_uri) {
        Some(Ok((a, p))) => (
            FetchKind::Jwks,
            a,
            p,
            discovered.clone().unwrap_or_default(),
        ),
        _ if r.oidc_discovery => (
            FetchKind::Discovery,
            r.authority.clone(),
            r.path.clone(),
            r.uri.clone(),
        ),
        _ => (
            FetchKind::Jwks,
            r.authority.clone(),
            r.path.clone(),
            r.uri.clone(),
        ),
    };
    let headers = vec![
        (":method", "GET"),
        (":path", path.as_str()),
        (":authority", authority.as_str()),
        (
            ":scheme",
            if uri.starts_with("https:") {
                "https"
            } else {
                "http"
            },
        ),
        ("accept", "application/json"),
        ("user-agent", "jwt-filter"),
    ];
    match hostcalls::dispatch_http_call(
        &r.cluster,
        headers,
        None,
        vec![],
        Duration::from_millis(r.timeout_ms),
    ) {
        Ok(token) => {
            vm.borrow_mut().fetching.push((token, idx, kind));
            true
        }
        Err(status) => {
            log::warn(&format!(
                "jwt_filter: provider {name}: cannot fetch {uri} through cluster {:?} ({status:?}); \
                 is the cluster defined in Envoy's static_resources?",
                r.cluster
            ));
            record_failure(vm, idx, r, now);
            false
        }
    }
}

/// Loads the shared JWKS into this VM when its version is newer, and keeps
/// the provider's key state (ready / pending / unavailable) current.
fn install_if_newer(vm: &SharedVm, idx: usize, name: &str, r: &RemoteJwks, meta: &Meta, now: u64) {
    let installed = vm.borrow().installed.get(idx).copied().unwrap_or(0);
    if meta.version != installed && meta.has_keys() {
        let data = hostcalls::get_shared_data(&r.shared_key)
            .ok()
            .and_then(|(b, _)| b);
        let parsed = data
            .as_deref()
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|t| KeySet::parse(t).ok());
        if let Some((set, _)) = parsed {
            observe::keys_installed(&vm.borrow().metrics, idx, r);
            let mut v = vm.borrow_mut();
            if let Some(slot) = v.remote.get_mut(idx) {
                *slot = RemoteKeys::Ready(Rc::new(set));
            }
            if let Some(slot) = v.installed.get_mut(idx) {
                *slot = meta.version;
            }
        }
    }
    let mut v = vm.borrow_mut();
    if let Some(slot) = v.remote.get_mut(idx) {
        match slot {
            RemoteKeys::Ready(_) if !meta.usable(r, now) => {
                log::warn(&format!(
                    "jwt_filter: provider {name}: keys are older than max_stale and no refresh succeeded; \
                     requests are rejected until a fetch succeeds"
                ));
                *slot = RemoteKeys::Unavailable;
            }
            RemoteKeys::Pending if meta.failures > r.num_retries => *slot = RemoteKeys::Unavailable,
            _ => {}
        }
    }
    // Gauges: key count in use, and seconds since the last good fetch.
    let keys = match v.remote.get(idx) {
        Some(RemoteKeys::Ready(set)) => set.len(),
        _ => 0,
    };
    let age = if meta.has_keys() {
        now.saturating_sub(meta.fetched_ms) / 1000
    } else {
        0
    };
    v.metrics.record_jwks(&observe::Host, idx, keys, age, now);
}

fn record_failure(vm: &SharedVm, idx: usize, r: &RemoteJwks, now: u64) {
    vm.borrow()
        .metrics
        .on_jwks_fetch(&observe::Host, idx, false);
    update_meta(r, |m| m.after_failure(r, now));
    let (meta, _) = read_meta(r);
    let config = vm.borrow().config.clone();
    let name = config
        .providers
        .get(idx)
        .map(|p| p.name.as_str())
        .unwrap_or("");
    install_if_newer(vm, idx, name, r, &meta, now);
}

/// Read-modify-write of the shared record with compare-and-swap.
fn update_meta(r: &RemoteJwks, f: impl Fn(&Meta) -> Meta) {
    for _ in 0..8 {
        let (meta, cas) = read_meta(r);
        let next = f(&meta);
        if hostcalls::set_shared_data(&meta_key(r), Some(next.encode().as_bytes()), cas).is_ok() {
            return;
        }
    }
}

/// A JWKS response arrived (in the root or in a request context).
fn fetch_done(vm: &SharedVm, token: u32, body_size: usize) {
    let (idx, kind) = {
        let mut v = vm.borrow_mut();
        let Some(pos) = v.fetching.iter().position(|(t, _, _)| *t == token) else {
            return;
        };
        let (_, idx, kind) = v.fetching.swap_remove(pos);
        (idx, kind)
    };
    let config = vm.borrow().config.clone();
    let (Some(r), Some(p)) = (remote_of(&config, idx), config.providers.get(idx)) else {
        return;
    };
    let now = now_ms();
    let status = response_header(":status");
    let cache_control = response_header("cache-control");
    let body = if body_size > MAX_JWKS_BYTES {
        vec![0u8; body_size.min(MAX_JWKS_BYTES + 1)]
    } else {
        hostcalls::get_buffer(
            proxy_wasm::types::BufferType::HttpCallResponseBody,
            0,
            body_size,
        )
        .ok()
        .flatten()
        .unwrap_or_default()
    };
    if kind == FetchKind::Discovery {
        match jwks_store::discovered_jwks_uri(status.as_deref(), &body, p.issuer.as_deref()) {
            Ok(uri) => {
                log::info(&format!(
                    "jwt_filter: provider {}: discovered jwks_uri {uri}",
                    p.name
                ));
                let _ = hostcalls::set_shared_data(&discovered_key(r), Some(uri.as_bytes()), None);
                start_fetch(vm, idx, r, &p.name, now);
            }
            Err(e) => {
                log::warn(&format!(
                    "jwt_filter: provider {}: OIDC discovery at {} failed: {e}",
                    p.name, r.uri
                ));
                record_failure(vm, idx, r, now);
                resolve_waiters(vm, now);
            }
        }
        return;
    }
    match jwks_store::validate_response(status.as_deref(), &body, &p.allowed_algs) {
        Ok((set, warnings)) => {
            for w in warnings {
                log::warn(&format!(
                    "jwt_filter: provider {}: JWKS key skipped: {w}",
                    p.name
                ));
            }
            let _ = hostcalls::set_shared_data(&r.shared_key, Some(&body), None);
            vm.borrow().metrics.on_jwks_fetch(&observe::Host, idx, true);
            observe::keys_fetched(&vm.borrow().metrics, idx, r, &set, now);
            let max_age = cache_control.as_deref().and_then(jwks_store::parse_max_age);
            update_meta(r, |m| m.after_success(r, now, max_age));
            let (meta, _) = read_meta(r);
            log::info(&format!(
                "jwt_filter: provider {}: fetched {} key(s) from {} (version {})",
                p.name,
                set.len(),
                r.uri,
                meta.version
            ));
            let mut v = vm.borrow_mut();
            if let Some(slot) = v.remote.get_mut(idx) {
                *slot = RemoteKeys::Ready(Rc::new(set));
            }
            if let Some(slot) = v.installed.get_mut(idx) {
                *slot = meta.version;
            }
        }
        Err(e) => {
            let (meta, _) = read_meta(r);
            log::warn(&format!(
                "jwt_filter: provider {}: JWKS fetch from {} failed (failure {} in a row): {e}; {}",
                p.name,
                r.uri,
                meta.failures + 1,
                if meta.has_keys() {
                    "keeping the last good keys"
                } else {
                    "no keys yet"
                }
            ));
            if r.oidc_discovery {
                // The IdP may have moved its keys: discover again next time.
                let _ = hostcalls::set_shared_data(&discovered_key(r), Some(b""), None);
            }
            record_failure(vm, idx, r, now);
        }
    }
    resolve_waiters(vm, now);
}

/// Finishes parked requests whose fetch completed or whose time ran out.
fn resolve_waiters(vm: &SharedVm, now: u64) {
    let ready: Vec<Waiter> = {
        let config = vm.borrow().config.clone();
        let mut v = vm.borrow_mut();
        let (done, keep): (Vec<Waiter>, Vec<Waiter>) =
            std::mem::take(&mut v.waiters).into_iter().partition(|w| {
                now >= w.deadline_ms
                    || w.providers.iter().all(|(idx, wait, attempts)| {
                        let Some(r) = remote_of(&config, *idx) else {
                            return true;
                        };
                        match wait {
                            Wait::FirstFetch => {
                                !matches!(v.remote.get(*idx), Some(RemoteKeys::Pending))
                            }
                            Wait::UnknownKid => read_meta(r).0.attempts > *attempts,
                        }
                    })
            });
        v.waiters = keep;
        done
    };
    for w in ready {
        if hostcalls::set_effective_context(w.context_id).is_err() {
            continue; // the request went away meanwhile
        }
        let action = decide_and_apply(vm, &w.view, false, w.context_id, observe::now_ns());
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
                v.waiters.retain(|w| w.context_id != self.id);
            }
        }
    }
}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let started_ns = observe::now_ns();
        let Some(vm) = self.vm.clone() else {
            // Never configured: fail closed.
            observe::send_denial(&RequestView::default(), AuthError::JwksUnavailable, None);
            return Action::Pause;
        };
        let config = vm.borrow().config.clone();
        let mut view = RequestView::from_serialized(request_headers());
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
        if config.bypass_cors_preflight && is_cors_preflight(&view) {
            vm.borrow().metrics.on_cors_bypass(&observe::Host);
            observe::set_status_header(&config, Some(crate::authz::TokenStatus::NotRequired));
            return Action::Continue;
        }
        decide_and_apply(&vm, &view, true, self.id, started_ns)
    }
}

/// Decides and acts on the current (effective) request context. With
/// `may_wait`, a denial that a JWKS fetch could change parks the request.
/// `started_ns`: when the filter started on it (host clock), for the
/// decision-time histogram.
fn decide_and_apply(
    vm: &SharedVm,
    view: &RequestView,
    may_wait: bool,
    context_id: u32,
    started_ns: u64,
) -> Action {
    let now = started_ns / 1_000_000;
    if may_wait {
        // Keys another VM fetched may be waiting in shared data: look first.
        let pending: Vec<usize> = {
            let v = vm.borrow();
            (0..v.remote.len())
                .filter(|i| matches!(v.remote.get(*i), Some(RemoteKeys::Pending)))
                .filter(|i| remote_of(&v.config, *i).is_some())
                .collect()
        };
        for idx in pending {
            sync_provider(vm, idx, now, false);
        }
    }
    // Evaluated under a shared borrow of the VM (no per-request copy of the
    // key state); host-offloaded crypto and the token cache (issue 5).
    // One host call: whether a denial's log line (and the token facts it
    // needs) will be kept.
    let log_denials = observe::decision_log_enabled();
    let facts = route::facts(&vm.borrow().config);
    let (outcome, waits, cache) = {
        let v = vm.borrow();
        filter_host::evaluate(
            &v.config,
            &v.remote,
            &v.crypto,
            &v.metrics,
            view,
            now / 1000,
            |ev| {
                ev.token_facts = log_denials;
                ev.route = facts;
                (
                    ev.outcome(),
                    std::mem::take(&mut ev.waits),
                    ev.cache_counts(),
                )
            },
        )
    };
    let config = vm.borrow().config.clone();
    if may_wait {
        if let Decision::Deny(_) = outcome.decision {
            if let Some(action) = park(vm, view, &waits, now, context_id) {
                return action;
            }
        }
    }
    let metrics = vm.borrow().metrics.clone();
    let timing = observe::timing_of(&outcome, cache);
    let action = observe::apply(&config, &metrics, view, outcome, log_denials);
    observe::record_time(&metrics, timing, started_ns);
    action
}

/// Parks the request when a fetch may change the outcome: keys not fetched
/// yet, or an unknown `kid` while a refetch is in flight or allowed by the
/// rate limit. `None`: nothing to wait for, decide now.
fn park(
    vm: &SharedVm,
    view: &RequestView,
    waits: &[(usize, Wait)],
    now: u64,
    context_id: u32,
) -> Option<Action> {
    let config = vm.borrow().config.clone();
    let mut providers = Vec::new();
    let mut deadline = now;
    for (idx, wait) in waits {
        let Some(r) = remote_of(&config, *idx) else {
            continue;
        };
        let (meta, _) = read_meta(r);
        let worth_waiting = match wait {
            // Still pending: a fetch is under way or a retry is scheduled.
            Wait::FirstFetch => {
                sync_provider(vm, *idx, now, false);
                matches!(vm.borrow().remote.get(*idx), Some(RemoteKeys::Pending))
            }
            Wait::UnknownKid => sync_provider(vm, *idx, now, true),
        };
        if worth_waiting {
            providers.push((*idx, *wait, meta.attempts));
            let budget = match wait {
                Wait::FirstFetch => (r.timeout_ms + r.max_interval_ms)
                    .saturating_mul(u64::from(r.num_retries) + 1)
                    .min(30_000),
                Wait::UnknownKid => r.timeout_ms + 2_000,
            };
            deadline = deadline.max(now + budget);
        }
    }
    if providers.is_empty() {
        return None;
    }
    vm.borrow_mut().waiters.push(Waiter {
        context_id,
        view: view.clone(),
        providers,
        deadline_ms: deadline,
    });
    Some(Action::Pause)
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

/// A header of the JWKS response, read as bytes for the same reason.
fn response_header(name: &str) -> Option<String> {
    hostcalls::get_map_value_bytes(proxy_wasm::types::MapType::HttpCallResponseHeaders, name)
        .ok()
        .flatten()
        .map(|v| String::from_utf8_lossy(&v).into_owned())
}

/// A CORS preflight: OPTIONS with `Origin` and `Access-Control-Request-Method`.
fn is_cors_preflight(view: &RequestView) -> bool {
    view.header(":method") == Some("OPTIONS")
        && view.header("origin").is_some_and(|v| !v.is_empty())
        && view
            .header("access-control-request-method")
            .is_some_and(|v| !v.is_empty())
}

/// Logging that never fails the request.
mod log {
    use proxy_wasm::types::LogLevel;
    pub fn info(msg: &str) {
        let _ = proxy_wasm::hostcalls::log(LogLevel::Info, msg);
    }
    pub fn warn(msg: &str) {
        let _ = proxy_wasm::hostcalls::log(LogLevel::Warn, msg);
    }
    pub fn error(msg: &str) {
        let _ = proxy_wasm::hostcalls::log(LogLevel::Error, msg);
    }
}
