//! The proxy-wasm glue: the only code that talks to the host. It reads the
//! configuration, snapshots request headers, asks `policy` for a decision and
//! applies it; for remote JWKS it turns host callbacks (tick, call response,
//! request gone) into [`KeyLifecycle`] events and applies what comes back
//! (tick period, requests to decide again). Nothing here decides anything.

use std::cell::RefCell;
use std::rc::Rc;

use crate::config::Config;
use crate::crypto::hostverify::HostAlgs;
use crate::diag;
use crate::effects::{self, Effects};
use crate::error::AuthError;
use crate::extract::RequestView;
use crate::keys::remote::{self, KeyLifecycle, Parked, Settled};
use crate::metrics::Metrics;
#[cfg(feature = "revocation")]
use crate::revocation_feeds::RevocationFeeds;
use crate::sender::replay;
use crate::sender::replay::ReplayCache;

use abi::{Action, BufferType, LogLevel, MapType};
use host::Host;

mod abi;
mod exports;
mod host;
mod observe;
mod properties;

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
    #[cfg(feature = "revocation")]
    feeds: Option<RevocationFeeds>,
    /// This worker's DPoP replay record (used when the record is per
    /// worker).
    replay: RefCell<ReplayCache>,
}

type SharedVm = Rc<RefCell<Vm>>;

/// A random number from the host (WASI `random_get`, through the standard
/// library's hash seed), mixed with the clock: seeds the jitter of the key
/// refresh schedule so that Envoys started together drift apart.
fn host_random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(abi::now_ns());
    h.finish()
}

/// 32 bytes for the DPoP replay record's bucket secret: SHA-256 over host
/// random numbers ([`host_random`]), so clients cannot predict it.
fn random_secret() -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for _ in 0..4 {
        h.update(host_random().to_be_bytes());
    }
    h.finalize().into()
}

/// Reads the plugin configuration of root context `root_id` and builds its
/// VM state; `None` (logged) when the configuration is refused.
fn configure(root_id: u32) -> Option<SharedVm> {
    let bytes = abi::buffer(BufferType::PluginConfiguration, 0, usize::MAX).unwrap_or_default();
    let cfg = match Config::parse(&bytes) {
        Ok(cfg) => cfg,
        Err(errors) => {
            abi::log(
                LogLevel::Error,
                &format!(
                    "jwt_filter: invalid plugin configuration, refusing to start: {}",
                    diag::describe(&errors)
                ),
            );
            return None;
        }
    };
    // The one list `jwt-filter-check` prints too.
    for w in &cfg.warnings {
        abi::log(LogLevel::Warn, &format!("jwt_filter: warning: {w}"));
    }
    abi::log(
        LogLevel::Info,
        &format!(
            "jwt_filter: configured {} provider(s), {} rule(s)",
            cfg.providers.len(),
            cfg.rules.len()
        ),
    );
    let (metrics, provider_metrics) = observe::define_metrics(&cfg);
    let host_algs = host::setup(cfg.host_crypto, &cfg.stat_prefix);
    // The shared DPoP replay record exists before any request records a
    // proof in it (a first write could not be a compare-and-swap).
    let (replay, ready) = replay::replay_record(cfg.dpop_replay, &Host, &random_secret());
    if !ready {
        abi::log(
            LogLevel::Error,
            "jwt_filter: DPoP replay record could not be created in shared data; \
             DPoP proofs will be refused",
        );
    }
    let config = Rc::new(cfg);
    let owner = remote::unique_owner_id(&mut Host, root_id, abi::now_ms());
    let keys = KeyLifecycle::new(config.clone(), provider_metrics, owner).with_seed(host_random());
    observe::record_local_keys(&config, keys.providers());
    // Revocation feeds: polled on the same tick as the keys.
    #[cfg(feature = "revocation")]
    let feeds = RevocationFeeds::new(&config, &mut Host, owner, abi::now_ms())
        .map(|f| f.with_seed(host_random()));
    #[cfg(feature = "revocation")]
    let first_tick = keys
        .first_tick_ms()
        .or(feeds.as_ref().map(|_| remote::FIRST_TICK_MS));
    #[cfg(not(feature = "revocation"))]
    let first_tick = keys.first_tick_ms();
    if let Some(ms) = first_tick {
        let _ = abi::set_tick_period_ms(ms);
    }
    Some(Rc::new(RefCell::new(Vm {
        config,
        metrics,
        host_algs,
        keys,
        #[cfg(feature = "revocation")]
        feeds,
        replay: RefCell::new(replay),
    })))
}

/// The revocation rules of this VM's feeds (`None`: no provider has revocation).
#[cfg(feature = "revocation")]
fn revocations(v: &Vm) -> Option<&host::Revocations> {
    v.feeds.as_ref().map(RevocationFeeds::revocations)
}

/// Built without revocation feeds: there are none.
#[cfg(not(feature = "revocation"))]
fn revocations(_: &Vm) -> Option<&host::Revocations> {
    None
}

/// The root context's timer: key refreshes, revocation polls, parked
/// requests whose wait is over.
fn tick(vm: &SharedVm) {
    let (ready, period) = vm.borrow_mut().keys.on_tick(&mut Host, abi::now_ms());
    #[cfg(feature = "revocation")]
    if let Some(feeds) = vm.borrow_mut().feeds.as_mut() {
        feeds.on_tick(&mut Host, abi::now_ms());
    }
    if let Some(ms) = period {
        let _ = abi::set_tick_period_ms(ms);
    }
    decide_again(vm, ready);
}

/// A fetch answered (in the root or in a request context).
fn fetch_done(vm: &SharedVm, token: u32, body_size: usize) {
    #[cfg(feature = "revocation")]
    if let Some(feeds) = vm.borrow_mut().feeds.as_mut().filter(|f| f.owns(token)) {
        feeds.on_response(&mut Host, abi::now_ms(), token, body_size);
        return;
    }
    let ready = vm
        .borrow_mut()
        .keys
        .on_fetch_response(&mut Host, abi::now_ms(), token, body_size);
    decide_again(vm, ready);
}

/// Decides parked requests again (no more waiting) and resumes the allowed.
fn decide_again(vm: &SharedVm, ready: Vec<Parked>) {
    for w in ready {
        if abi::set_effective_context(w.context_id).is_err() {
            continue; // the request went away meanwhile
        }
        let action = decide_and_apply(vm, &w.view, None, w.context_id, abi::now_ns(), w.proof);
        if action == Action::Continue {
            let _ = abi::resume_request();
        }
    }
}

/// A request that ends while parked stops waiting. Runs when the host
/// deletes the context (`proxy_on_delete`), so `proxy_on_done` need not be
/// exported: one crossing into the VM less per request.
fn request_gone(vm: &SharedVm, context_id: u32) {
    // Not borrowable: the host deleted the context from inside a call the
    // filter made (a resumed request that finished at once); the parked
    // entry is gone already.
    if let Ok(mut v) = vm.try_borrow_mut() {
        v.keys.on_request_gone(context_id);
    }
}

/// A request's headers arrived. `vm`: `None` when the plugin never got a
/// valid configuration (fails closed).
fn request_headers_arrived(vm: Option<SharedVm>, context_id: u32) -> Action {
    let started_ns = abi::now_ns();
    let Some(vm) = vm else {
        let reply = effects::denial(
            &RequestView::default(),
            AuthError::JwksUnavailable,
            None,
            None,
            started_ns / 1_000_000_000,
        );
        return observe::carry_out(Effects {
            reply: Some(reply),
            ..Effects::default()
        });
    };
    let config = vm.borrow().config.clone();
    let headers = abi::header_pairs(MapType::HttpRequestHeaders).unwrap_or_default();
    let bytes = headers.len();
    let mut view = RequestView::from_serialized(headers);
    // Strip inbound copies of every header the filter writes (only the
    // ones present: one host call saved per absent header).
    for name in &config.sanitize_headers {
        if view.remove(name) {
            let _ = abi::set_header(MapType::HttpRequestHeaders, name, None);
        }
    }
    let preflight = effects::cors_bypass(&config, &vm.borrow().metrics, &Host, &view);
    if let Some(fx) = preflight {
        return observe::carry_out(fx);
    }
    decide_and_apply(&vm, &view, Some(bytes), context_id, started_ns, None)
}

/// Decides and acts on the current (effective) request context. With
/// `may_wait` (the size of the request's headers), a denial that a JWKS
/// fetch could change parks the request. `started_ns`: when the filter
/// started on it (host clock), for the decision-time histogram. `proof`: the
/// DPoP proof this request recorded as fresh before it waited for keys.
fn decide_and_apply(
    vm: &SharedVm,
    view: &RequestView,
    may_wait: Option<usize>,
    context_id: u32,
    started_ns: u64,
    proof: Option<[u8; 32]>,
) -> Action {
    let now = started_ns / 1_000_000;
    if may_wait.is_some() {
        vm.borrow_mut().keys.before_decide(&mut Host, now);
    }
    // One host call: whether a denial's log line (and the token facts it
    // needs) will be kept.
    let log_denials = observe::decision_log_enabled();
    let facts = properties::facts(&vm.borrow().config);
    let (mut outcome, waits, cache, proof) = {
        let v = vm.borrow();
        host::evaluate(
            &v.config,
            v.keys.providers(),
            v.host_algs,
            &v.metrics,
            view,
            now / 1000,
            revocations(&v),
            Some(&v.replay),
            |ev| {
                ev.token_facts = log_denials;
                ev.route = facts;
                ev.recorded_proof.set(proof);
                let outcome = ev.outcome();
                let waits = std::mem::take(&mut ev.waits);
                (outcome, waits, ev.cache_counts(), ev.recorded_proof.get())
            },
        )
    };
    let settled = vm.borrow_mut().keys.settle(
        &mut Host,
        now,
        context_id,
        view,
        may_wait,
        &mut outcome,
        &waits,
        proof,
    );
    match settled {
        Settled::Apply => {}
        Settled::Park => return Action::Pause,
        Settled::DecideAgain => {
            return decide_and_apply(vm, view, None, context_id, started_ns, proof)
        }
    }
    let v = vm.borrow();
    let timing = effects::timing_of(&outcome, cache);
    let fx = effects::plan(
        &v.config,
        &v.metrics,
        v.keys.providers(),
        &Host,
        view,
        outcome,
        log_denials,
        now / 1000,
    );
    drop(v);
    let action = observe::carry_out(fx);
    if let Ok(v) = vm.try_borrow() {
        observe::record_time(&v.metrics, timing, started_ns);
    }
    action
}
