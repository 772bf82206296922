//! The remote-key lifecycle of one VM: when to fetch (first fetch, refresh,
//! retry with back-off, unknown-`kid` refetch), who fetches (the lease in the
//! shared [`Meta`] record, so one VM fetches for all), OpenID discovery,
//! installing keys another VM fetched, staleness, and the requests parked
//! until a fetch completes (with their deadlines and bounds).
//!
//! Plain Rust driven by events, with the time always an argument
//! (milliseconds since the epoch) and the host behind [`KeyHost`]: the
//! proxy-wasm glue translates its callbacks into these calls, and the tests
//! (or a simulation of many proxies) drive the very same code with a fake
//! host and a simulated clock.
//!
//! Events: [`KeyLifecycle::on_tick`], [`KeyLifecycle::before_decide`],
//! [`KeyLifecycle::park`], [`KeyLifecycle::on_fetch_response`],
//! [`KeyLifecycle::on_request_gone`]. Each returns what the glue must do:
//! requests to decide again, a tick period to set.

use crate::keys::{history, store};
use crate::remote_jwks;
use std::rc::Rc;

use crate::config::{Config, KeySource};
use crate::crypto::jwks::KeySet;
use crate::decision::{Decision, Outcome};
use crate::error::AuthError;
use crate::extract::RequestView;
use crate::keys::history::KeyHistory;
use crate::keys::store::{Meta, Schedule, MAX_JWKS_BYTES};
use crate::keys::{FetchKind, ProviderState, RemoteKeys, Wait};
use crate::metrics::{MetricHost, ProviderIds};
use crate::remote_jwks::RemoteJwks;
use crate::shared_data::SharedData;

/// Tick period while requests wait or keys have not arrived yet.
pub const FAST_TICK_MS: u64 = 50;
/// Tick period otherwise.
pub const SLOW_TICK_MS: u64 = 500;
/// First tick after configuration: fetches (or picks up keys another VM
/// fetched) once Envoy has finished initialising its clusters.
pub const FIRST_TICK_MS: u64 = 100;
/// Longest a request waits for a first fetch.
pub const MAX_FIRST_FETCH_WAIT_MS: u64 = 30_000;
/// How long past the fetch timeout a request waits for an unknown-`kid`
/// refetch.
pub const KID_WAIT_SLACK_MS: u64 = 2_000;
/// Most requests parked at once in one VM (each holds a copy of its headers).
pub const MAX_PARKED: usize = 1024;
/// Most header bytes held by parked requests in one VM.
pub const MAX_PARKED_BYTES: usize = 4 * 1024 * 1024;

/// Log levels the lifecycle writes at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
}

/// A fetch to dispatch: a GET of `authority` + `path` through `cluster`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchRequest {
    pub cluster: String,
    pub authority: String,
    pub path: String,
    /// `https` or `http`.
    pub scheme: &'static str,
    pub timeout_ms: u64,
    /// The full URI (for log lines).
    pub uri: String,
}

/// What the lifecycle needs from the host (proxy-wasm in the filter, a fake
/// in tests, a simulated Envoy in a simulation). Metrics and the Envoy's
/// shared data (all VMs) come through the [`MetricHost`] and [`SharedData`]
/// supertraits.
pub trait KeyHost: MetricHost + SharedData {
    /// Starts an HTTP call; its answer comes back as
    /// [`KeyLifecycle::on_fetch_response`] with the returned token.
    fn dispatch(&mut self, request: &FetchRequest) -> Result<u32, String>;
    /// A header of the response being delivered, as text.
    fn response_header(&self, name: &str) -> Option<String>;
    /// The first `size` bytes of the response body being delivered.
    fn response_body(&self, size: usize) -> Vec<u8>;
    fn log(&mut self, level: Level, message: &str);
}

/// The remote-key lifecycle of one VM.
pub struct KeyLifecycle {
    config: Rc<Config>,
    /// Lease owner id, unique across this Envoy's VMs.
    owner: u64,
    providers: Vec<ProviderState>,
    parked: Vec<Parked>,
    parked_bytes: usize,
    /// Whether the tick period set last is the fast one (`None`: initial).
    fast: Option<bool>,
    max_parked: usize,
    max_parked_bytes: usize,
    /// How fetches are spread (jitter, back-off, `Retry-After`).
    schedule: Schedule,
    /// Seeds the jitter draws: differs between Envoys (the host's random).
    seed: u64,
}

fn remote_of(config: &Config, idx: usize) -> Option<&RemoteJwks> {
    match config.providers.get(idx).map(|p| &p.keys) {
        Some(KeySource::Remote(r)) => Some(r),
        _ => None,
    }
}

fn meta_key(r: &RemoteJwks) -> String {
    format!("{}|meta", r.shared_key)
}

fn history_key(r: &RemoteJwks) -> String {
    format!("{}|key_history", r.shared_key)
}

fn discovered_key(r: &RemoteJwks) -> String {
    format!("{}|jwks_uri", r.shared_key)
}

fn read_meta(host: &impl KeyHost, r: &RemoteJwks) -> (Meta, Option<u32>) {
    match host.shared_get(&meta_key(r)) {
        (Some(bytes), cas) => (Meta::decode(&bytes).unwrap_or_default(), cas),
        _ => (Meta::default(), None),
    }
}

/// Read-modify-write of the shared record with compare-and-swap.
fn update_meta(host: &mut impl KeyHost, r: &RemoteJwks, f: impl Fn(&Meta) -> Meta) {
    for _ in 0..8 {
        let (meta, cas) = read_meta(host, r);
        let next = f(&meta);
        if host.shared_set(&meta_key(r), next.encode().as_bytes(), cas) {
            return;
        }
    }
}

/// A lease owner id unique among this Envoy's VMs: a shared counter (with
/// compare-and-swap) mixed with the root context id.
pub fn unique_owner_id(host: &mut impl KeyHost, root_id: u32, now: u64) -> u64 {
    const KEY: &str = "jwt_filter.vm_seq";
    for _ in 0..16 {
        let (bytes, cas) = host.shared_get(KEY);
        let seq: u64 = bytes
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
            + 1;
        if host.shared_set(KEY, seq.to_string().as_bytes(), cas) {
            return (seq << 32) | u64::from(root_id);
        }
    }
    (now << 16) | u64::from(root_id)
}

impl KeyLifecycle {
    /// A VM's lifecycle for `config`; `metrics`: each provider's metric
    /// ids, indexed like `Config::providers` (from
    /// [`crate::metrics::Metrics::define`]), which go to the provider's
    /// object; `owner` from [`unique_owner_id`].
    pub fn new(config: Rc<Config>, metrics: Vec<ProviderIds>, owner: u64) -> Self {
        let providers = ProviderState::for_config(&config, metrics);
        KeyLifecycle {
            config,
            owner,
            providers,
            parked: Vec::new(),
            parked_bytes: 0,
            fast: None,
            max_parked: MAX_PARKED,
            max_parked_bytes: MAX_PARKED_BYTES,
            schedule: Schedule::Spread,
            seed: owner,
        }
    }

    /// Seeds the jitter of this VM's fetch schedule. The filter passes a
    /// random number from the host, so that Envoys started together drift
    /// apart; tests and the simulation pass fixed seeds. Without it the
    /// lease owner id is the seed, which is the same in every Envoy.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Another fetch [`Schedule`] than `Spread` (the mesh simulation runs
    /// both).
    pub fn with_schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// Other parking bounds (count, header bytes) than the defaults.
    pub fn with_park_bounds(mut self, count: usize, bytes: usize) -> Self {
        self.max_parked = count;
        self.max_parked_bytes = bytes;
        self
    }

    /// Each provider's keys, caches and metric ids, indexed like
    /// `Config::providers`.
    pub fn providers(&self) -> &[ProviderState] {
        &self.providers
    }

    /// Requests parked now.
    pub fn parked(&self) -> usize {
        self.parked.len()
    }

    /// The tick period to set after configuration: `Some` when a provider
    /// has remote keys.
    pub fn first_tick_ms(&self) -> Option<u64> {
        self.providers
            .iter()
            .any(|p| p.remote)
            .then_some(FIRST_TICK_MS)
    }

    /// The periodic tick: installs keys other VMs fetched, marks stale keys,
    /// starts due fetches, ends parked requests whose time ran out. Returns
    /// the requests to decide again, and a new tick period when it changes.
    pub fn on_tick(&mut self, host: &mut impl KeyHost, now: u64) -> (Vec<Parked>, Option<u64>) {
        for idx in 0..self.providers.len() {
            self.sync_provider(host, idx, now, false);
        }
        let ready = self.take_ready(host, now);
        // Fast while requests wait or keys have not arrived yet.
        let fast = !self.parked.is_empty() || self.providers.iter().any(ProviderState::pending);
        let period = (self.fast != Some(fast)).then(|| {
            self.fast = Some(fast);
            if fast {
                FAST_TICK_MS
            } else {
                SLOW_TICK_MS
            }
        });
        (ready, period)
    }

    /// Before a new request is decided: keys another VM fetched may be
    /// waiting in shared data for providers still pending here.
    pub fn before_decide(&mut self, host: &mut impl KeyHost, now: u64) {
        for idx in 0..self.providers.len() {
            if self.providers.get(idx).is_some_and(ProviderState::pending) {
                self.sync_provider(host, idx, now, false);
            }
        }
    }

    fn take_in_flight(&mut self, token: u32) -> Option<(usize, FetchKind)> {
        for (idx, p) in self.providers.iter_mut().enumerate() {
            if let Some(pos) = p.in_flight.iter().position(|(t, _)| *t == token) {
                let (_, kind) = p.in_flight.swap_remove(pos);
                return Some((idx, kind));
            }
        }
        None
    }

    /// Installs keys another VM (or this one) fetched, marks keys that went
    /// stale, and starts a fetch when one is due (or `for_kid` asks for
    /// one). Returns whether a fetch is now in flight anywhere.
    fn sync_provider(
        &mut self,
        host: &mut impl KeyHost,
        idx: usize,
        now: u64,
        for_kid: bool,
    ) -> bool {
        let config = self.config.clone();
        let Some(r) = remote_of(&config, idx) else {
            return false;
        };
        let (mut meta, mut cas) = read_meta(host, r);
        if cas.is_none() {
            // First VM to get here creates the record; the CAS below elects one fetcher.
            host.shared_set(&meta_key(r), Meta::default().encode().as_bytes(), None);
            (meta, cas) = read_meta(host, r);
        }
        self.install_if_newer(host, idx, &meta, now);

        let due = meta.fetch_due(now)
            || (for_kid && !meta.leased(now) && meta.kid_refetch_allowed(r, now, self.schedule));
        if !due {
            return meta.leased(now);
        }
        let leased = meta.with_lease(r, self.owner, now, for_kid);
        if !host.shared_set(&meta_key(r), leased.encode().as_bytes(), cas) {
            return true; // another VM won the lease
        }
        self.start_fetch(host, idx, now)
    }

    /// Dispatches the next call of a fetch this VM holds the lease for: the
    /// JWKS itself, or first the OpenID discovery document when `jwks_uri`
    /// is not known yet. Returns whether a call is in flight.
    fn start_fetch(&mut self, host: &mut impl KeyHost, idx: usize, now: u64) -> bool {
        let config = self.config.clone();
        let (Some(r), Some(p)) = (remote_of(&config, idx), config.providers.get(idx)) else {
            return false;
        };
        let (kind, request) = fetch_request(host, r);
        match host.dispatch(&request) {
            Ok(token) => {
                if let Some(slot) = self.providers.get_mut(idx) {
                    slot.in_flight.push((token, kind));
                }
                true
            }
            Err(status) => {
                host.log(
                    Level::Warn,
                    &format!(
                        "jwt_filter: provider {}: cannot fetch {} through cluster {:?} ({status}); \
                         is the cluster defined in Envoy's static_resources?",
                        p.name, request.uri, r.cluster
                    ),
                );
                self.record_failure(host, idx, now, None);
                false
            }
        }
    }

    /// A failed attempt: back off (at least `retry_after_ms`, the server's
    /// `Retry-After`, under `Spread`).
    fn record_failure(
        &mut self,
        host: &mut impl KeyHost,
        idx: usize,
        now: u64,
        retry_after_ms: Option<u64>,
    ) {
        let config = self.config.clone();
        let Some(r) = remote_of(&config, idx) else {
            return;
        };
        if let Some(slot) = self.providers.get(idx) {
            slot.metrics.on_jwks_fetch(host, false);
        }
        let (schedule, seed) = (self.schedule, self.seed);
        update_meta(host, r, |m| {
            m.after_failure(
                r,
                now,
                retry_after_ms,
                schedule,
                store::mix(seed, m.attempts),
            )
        });
        let (meta, _) = read_meta(host, r);
        self.install_if_newer(host, idx, &meta, now);
    }

    /// Loads the shared JWKS into this VM when its version is newer, and
    /// keeps the provider's key state (ready / pending / unavailable)
    /// current; sets the key gauges.
    fn install_if_newer(&mut self, host: &mut impl KeyHost, idx: usize, meta: &Meta, now: u64) {
        let config = self.config.clone();
        let (Some(r), Some(p)) = (remote_of(&config, idx), config.providers.get(idx)) else {
            return;
        };
        let Some(slot) = self.providers.get_mut(idx) else {
            return;
        };
        if meta.version != slot.installed && meta.has_keys() {
            let data = host.shared_get(&r.shared_key).0;
            let parsed = data
                .as_deref()
                .and_then(|b| std::str::from_utf8(b).ok())
                .and_then(|t| KeySet::parse(t).ok());
            if let Some((set, _)) = parsed {
                // When the served keys were first seen (another VM wrote it).
                if let (Some(bytes), _) = host.shared_get(&history_key(r)) {
                    let oldest = KeyHistory::decode(&bytes).oldest();
                    slot.metrics.set_oldest_key(oldest);
                }
                slot.keys = RemoteKeys::Ready(Rc::new(set));
                slot.installed = meta.version;
            }
        }
        match slot.keys {
            RemoteKeys::Ready(_) if !meta.usable(r, now) => {
                host.log(
                    Level::Warn,
                    &format!(
                        "jwt_filter: provider {}: keys are older than max_stale and no refresh succeeded; \
                         requests are rejected until a fetch succeeds",
                        p.name
                    ),
                );
                slot.keys = RemoteKeys::Unavailable;
            }
            RemoteKeys::Pending if meta.failures > r.num_retries => {
                slot.keys = RemoteKeys::Unavailable;
            }
            _ => {}
        }
        // Gauges: key count in use, and seconds since the last good fetch.
        let keys = match &slot.keys {
            RemoteKeys::Ready(set) => set.len(),
            _ => 0,
        };
        let age = if meta.has_keys() {
            now.saturating_sub(meta.fetched_ms) / 1000
        } else {
            0
        };
        slot.metrics.record_jwks(host, keys, age, now);
    }
}

/// The next call for a source: the discovered `jwks_uri` when known, else
/// the discovery document (with `oidc_discovery`) or the configured URI.
fn fetch_request(host: &impl KeyHost, r: &RemoteJwks) -> (FetchKind, FetchRequest) {
    let discovered = if r.oidc_discovery {
        host.shared_get(&discovered_key(r))
            .0
            .and_then(|b| String::from_utf8(b).ok())
            .filter(|u| !u.is_empty())
    } else {
        None
    };
    let (kind, authority, path, uri) = match discovered.as_deref().map(remote_jwks::split_uri) {
        Some(Ok((a, p))) => (FetchKind::Jwks, a, p, discovered.unwrap_or_default()),
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
    let scheme = if uri.starts_with("https:") {
        "https"
    } else {
        "http"
    };
    let request = FetchRequest {
        cluster: r.cluster.clone(),
        authority,
        path,
        scheme,
        timeout_ms: r.timeout_ms,
        uri,
    };
    (kind, request)
}

mod answer;
mod parking;

pub use parking::{ParkResult, Parked, Settled};

#[cfg(test)]
mod tests;
