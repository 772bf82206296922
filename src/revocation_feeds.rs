//! The revocation feeds of one VM: when to poll each provider's deny list
//! and SSF stream, who polls (the lease in a shared [`Meta`] record, the same
//! schedule as remote JWKS: one poll per Envoy, jittered, backing off after
//! failures), reading what comes back, sharing the resulting rules with the
//! other VMs, installing the rules other VMs fetched, and the failure policy
//! (`fail_closed` past `staleness`).
//!
//! Plain Rust driven by events with the time as an argument (milliseconds
//! since the epoch), the host behind [`FeedHost`]: the glue calls
//! [`RevocationFeeds::on_tick`] and [`RevocationFeeds::on_response`], and the
//! request path reads [`RevocationFeeds::revocations`].
//!
//! Shared data, per provider and feed (`<base>` = `jwt_filter.revocation|<provider>|<feed>`):
//! `<base>|meta` (the schedule), `<base>` (the rules, as a deny-list
//! document), `<base>|etag` (deny list: the ETag of the document) and
//! `<base>|pending` (SSF: acknowledgements and errors owed to the
//! transmitter); `jwt_filter.revocation|<provider>|ssf_jwks` holds the
//! transmitter's JWKS with the time it was fetched.

use crate::keys::store;
use std::rc::Rc;

use crate::config::Config;
use crate::crypto::jwks::KeySet;
use crate::keys::remote::{FetchRequest, KeyHost, Level};
use crate::keys::store::{Meta, Schedule};
use crate::metrics::{stat_name, MetricHost, MetricKind};
use crate::remote_jwks::RemoteJwks;
use crate::revocation::ssf::{self, Pending, Reject, SsfSettings};
use crate::revocation::{denylist, FeedSettings, ProviderRules, Refused, Revocations, RuleSet};
use crate::token;

/// What the feeds need from the host beyond [`KeyHost`]: HTTP calls with a
/// method, headers and a body.
pub trait FeedHost: KeyHost {
    fn dispatch_call(&mut self, call: &FeedCall) -> Result<u32, String>;
}

/// One HTTP call of a feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedCall {
    pub request: FetchRequest,
    /// `GET` or `POST`.
    pub method: &'static str,
    /// Extra request headers (`if-none-match`, `content-type`, `authorization`).
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// Which feed of a provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    DenyList,
    Ssf,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::DenyList => "deny_list",
            Source::Ssf => "ssf",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CallKind {
    List,
    Jwks,
    Poll,
}

struct Feed {
    provider: usize,
    source: Source,
    settings: FeedSettings,
    ssf: Option<SsfSettings>,
    installed: u64,
    in_flight: Vec<(u32, CallKind)>,
    /// The transmitter's keys as last read from shared data, with their text length and fetch time.
    jwks: Option<(u64, Rc<KeySet>)>,
    ids: FeedIds,
}

/// The revocation feeds of one VM.
pub struct RevocationFeeds {
    owner: u64,
    feeds: Vec<Feed>,
    revocations: Revocations,
    max_entries: Vec<(usize, usize)>,
    started_ms: u64,
    seed: u64,
    issuers: Vec<Option<String>>,
    names: Vec<String>,
}

fn meta_key(base: &str) -> String {
    format!("{base}|meta")
}

fn read_meta(host: &impl KeyHost, base: &str) -> (Meta, Option<u32>) {
    match host.shared_get(&meta_key(base)) {
        (Some(bytes), cas) => (Meta::decode(&bytes).unwrap_or_default(), cas),
        (None, cas) => (Meta::default(), cas),
    }
}

fn update_meta(host: &mut impl KeyHost, base: &str, f: impl Fn(&Meta) -> Meta) -> Meta {
    for _ in 0..8 {
        let (meta, cas) = read_meta(host, base);
        let next = f(&meta);
        if host.shared_set(&meta_key(base), next.encode().as_bytes(), cas) {
            return next;
        }
    }
    read_meta(host, base).0
}

fn request_of(r: &RemoteJwks) -> FetchRequest {
    FetchRequest {
        cluster: r.cluster.clone(),
        authority: r.authority.clone(),
        path: r.path.clone(),
        scheme: if r.uri.starts_with("https:") {
            "https"
        } else {
            "http"
        },
        timeout_ms: r.timeout_ms,
        uri: r.uri.clone(),
    }
}

/// The transmitter's JWKS as stored: `<fetched_ms> <jwks json>`.
fn read_jwks(host: &impl KeyHost, key: &str) -> Option<(u64, String)> {
    let bytes = host.shared_get(key).0?;
    let text = String::from_utf8(bytes).ok()?;
    let (ms, json) = text.split_once(' ')?;
    Some((ms.parse().ok()?, json.to_string()))
}

impl RevocationFeeds {
    /// The feeds of `config` (`None` when no provider has revocation), with
    /// their metrics defined through `host`; `owner` from
    /// [`crate::keys::remote::unique_owner_id`].
    pub fn new(
        config: &Config,
        host: &mut dyn MetricHost,
        owner: u64,
        now: u64,
    ) -> Option<RevocationFeeds> {
        let mut feeds = Vec::new();
        let mut providers = Vec::with_capacity(config.providers.len());
        let mut max_entries = Vec::with_capacity(config.providers.len());
        for (idx, p) in config.providers.iter().enumerate() {
            let Some(r) = &p.revocation else {
                providers.push(None);
                max_entries.push((0, 0));
                continue;
            };
            providers.push(Some(ProviderRules::default()));
            max_entries.push((r.max_entries, r.max_bytes));
            if let Some(d) = &r.deny_list {
                feeds.push(Feed {
                    provider: idx,
                    source: Source::DenyList,
                    settings: d.clone(),
                    ssf: None,
                    installed: 0,
                    in_flight: Vec::new(),
                    jwks: None,
                    ids: FeedIds::define(host, &config.stat_prefix, &p.name, Source::DenyList),
                });
            }
            if let Some(s) = &r.ssf {
                feeds.push(Feed {
                    provider: idx,
                    source: Source::Ssf,
                    settings: s.poll.clone(),
                    ssf: Some(s.clone()),
                    installed: 0,
                    in_flight: Vec::new(),
                    jwks: None,
                    ids: FeedIds::define(host, &config.stat_prefix, &p.name, Source::Ssf),
                });
            }
        }
        if feeds.is_empty() {
            return None;
        }
        Some(RevocationFeeds {
            owner,
            feeds,
            revocations: Revocations { providers },
            max_entries,
            started_ms: now,
            seed: owner,
            issuers: config.providers.iter().map(|p| p.issuer.clone()).collect(),
            names: config.providers.iter().map(|p| p.name.clone()).collect(),
        })
    }

    /// Seeds the jitter (see [`crate::keys::remote::KeyLifecycle::with_seed`]).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// What the request path checks.
    pub fn revocations(&self) -> &Revocations {
        &self.revocations
    }

    /// Whether `token` is a call of these feeds.
    pub fn owns(&self, token: u32) -> bool {
        self.feeds
            .iter()
            .any(|f| f.in_flight.iter().any(|(t, _)| *t == token))
    }

    /// The periodic tick: installs rules other VMs fetched, applies the
    /// failure policy, sets the gauges, and starts due polls.
    pub fn on_tick(&mut self, host: &mut impl FeedHost, now: u64) {
        for i in 0..self.feeds.len() {
            self.sync(host, i, now);
        }
    }

    fn name(&self, i: usize) -> String {
        let Some(f) = self.feeds.get(i) else {
            return String::new();
        };
        format!(
            "jwt_filter: provider {}: revocation {}",
            self.names.get(f.provider).map_or("?", String::as_str),
            f.source.name()
        )
    }

    fn sync(&mut self, host: &mut impl FeedHost, i: usize, now: u64) {
        let Some(f) = self.feeds.get(i) else { return };
        let base = f.settings.fetch.shared_key.clone();
        let (mut meta, mut cas) = read_meta(host, &base);
        if cas.is_none() {
            host.shared_set(&meta_key(&base), Meta::default().encode().as_bytes(), None);
            (meta, cas) = read_meta(host, &base);
        }
        self.install_if_newer(host, i, &meta, now);
        let Some(f) = self.feeds.get(i) else { return };
        if !f.in_flight.is_empty() || !meta.fetch_due(now) {
            return;
        }
        let leased = meta.with_lease(&f.settings.fetch, self.owner, now, false);
        if !host.shared_set(&meta_key(&base), leased.encode().as_bytes(), cas) {
            return; // another VM polls
        }
        self.start(host, i, now);
    }

    /// Dispatches the first call of a poll this VM holds the lease for.
    fn start(&mut self, host: &mut impl FeedHost, i: usize, now: u64) {
        let Some(f) = self.feeds.get(i) else { return };
        let call = match (&f.source, &f.ssf) {
            (Source::DenyList, _) => {
                let base = &f.settings.fetch.shared_key;
                let etag = host
                    .shared_get(&format!("{base}|etag"))
                    .0
                    .and_then(|b| String::from_utf8(b).ok())
                    .filter(|e| !e.is_empty() && f.installed > 0);
                let mut headers = vec![("accept", "application/json".to_string())];
                if let Some(e) = etag {
                    headers.push(("if-none-match", e));
                }
                (
                    CallKind::List,
                    FeedCall {
                        request: request_of(&f.settings.fetch),
                        method: "GET",
                        headers,
                        body: Vec::new(),
                    },
                )
            }
            (Source::Ssf, Some(s)) => {
                let fresh = read_jwks(host, &s.jwks.shared_key).is_some_and(|(at, _)| {
                    at > 0 && now < at.saturating_add(s.jwks.cache_duration_ms)
                });
                if fresh {
                    (CallKind::Poll, poll_call(host, s))
                } else {
                    (
                        CallKind::Jwks,
                        FeedCall {
                            request: request_of(&s.jwks),
                            method: "GET",
                            headers: vec![("accept", "application/json".to_string())],
                            body: Vec::new(),
                        },
                    )
                }
            }
            (Source::Ssf, None) => return,
        };
        self.dispatch(host, i, now, call);
    }

    fn dispatch(
        &mut self,
        host: &mut impl FeedHost,
        i: usize,
        now: u64,
        (kind, call): (CallKind, FeedCall),
    ) {
        match host.dispatch_call(&call) {
            Ok(token) => {
                if let Some(f) = self.feeds.get_mut(i) {
                    f.in_flight.push((token, kind));
                }
            }
            Err(status) => {
                let msg = format!(
                    "{}: cannot call {} through cluster {:?} ({status}); is the cluster \
                     defined in Envoy's static_resources?",
                    self.name(i),
                    call.request.uri,
                    call.request.cluster
                );
                host.log(Level::Warn, &msg);
                self.failed(host, i, now);
            }
        }
    }

    /// A call of these feeds answered. Not inlined into the glue's fetch
    /// callback (a smaller compile zone for V8).
    #[inline(never)]
    pub fn on_response(
        &mut self,
        host: &mut impl FeedHost,
        now: u64,
        token: u32,
        body_size: usize,
    ) {
        let mut found = None;
        for (i, f) in self.feeds.iter_mut().enumerate() {
            if let Some(pos) = f.in_flight.iter().position(|(t, _)| *t == token) {
                let (_, kind) = f.in_flight.swap_remove(pos);
                found = Some((i, kind));
                break;
            }
        }
        let Some((i, kind)) = found else { return };
        let status = host.response_header(":status");
        let limit = match kind {
            CallKind::List => denylist::MAX_DOCUMENT_BYTES,
            CallKind::Jwks => store::MAX_JWKS_BYTES,
            CallKind::Poll => ssf::MAX_POLL_RESPONSE_BYTES,
        };
        // An oversized body is never read into the VM.
        let body = (body_size <= limit).then(|| host.response_body(body_size));
        match kind {
            CallKind::List => self.list_answered(host, i, now, status.as_deref(), body, body_size),
            CallKind::Jwks => self.jwks_answered(host, i, now, status.as_deref(), body, body_size),
            CallKind::Poll => self.poll_answered(host, i, now, status.as_deref(), body, body_size),
        }
    }

    fn list_answered(
        &mut self,
        host: &mut impl FeedHost,
        i: usize,
        now: u64,
        status: Option<&str>,
        body: Option<Vec<u8>>,
        size: usize,
    ) {
        let Some(f) = self.feeds.get(i) else { return };
        let (base, uri, ids) = (
            f.settings.fetch.shared_key.clone(),
            f.settings.fetch.uri.clone(),
            f.ids.clone(),
        );
        let (max_entries, max_bytes) = self.bounds(f.provider);
        match (status, body) {
            (Some("304"), _) => {
                inc(host, ids.poll_not_modified, 1);
                self.succeeded(host, i, now, false, false);
            }
            (Some("200"), Some(body)) => {
                match denylist::parse(&body, max_entries, max_bytes, now / 1000) {
                    Ok(parsed) => {
                        if parsed.refused > 0 {
                            inc(host, ids.rules_refused, parsed.refused);
                            let msg = format!(
                                "{}: {} entries of {uri} refused: the list is full ({max_entries} \
                                 entries / {max_bytes} bytes); raise revocation.max_entries or \
                                 max_bytes, or shorten the list",
                                self.name(i),
                                parsed.refused
                            );
                            host.log(Level::Warn, &msg);
                        }
                        inc(host, ids.poll_success, 1);
                        host.shared_set(&base, &body, None);
                        let etag = host.response_header("etag").unwrap_or_default();
                        host.shared_set(&format!("{base}|etag"), etag.as_bytes(), None);
                        let msg = format!(
                            "{}: {} rule(s) read from {uri}",
                            self.name(i),
                            parsed.set.len()
                        );
                        host.log(Level::Info, &msg);
                        self.succeeded(host, i, now, true, false);
                    }
                    Err(e) => {
                        inc(host, ids.poll_refused, 1);
                        let msg = format!(
                            "{}: document from {uri} refused: {e}; keeping the last good list",
                            self.name(i)
                        );
                        host.log(Level::Warn, &msg);
                        self.failed(host, i, now);
                    }
                }
            }
            (Some("200"), None) => {
                inc(host, ids.poll_refused, 1);
                let msg = format!(
                    "{}: document from {uri} refused: {size} bytes exceeds the {} byte limit; \
                     keeping the last good list",
                    self.name(i),
                    denylist::MAX_DOCUMENT_BYTES
                );
                host.log(Level::Warn, &msg);
                self.failed(host, i, now);
            }
            (s, _) => {
                let msg = format!(
                    "{}: poll of {uri} failed ({}); keeping the last good list",
                    self.name(i),
                    s.map_or("no response".to_string(), |s| format!("HTTP {s}"))
                );
                host.log(Level::Warn, &msg);
                self.failed(host, i, now);
            }
        }
    }

    fn bounds(&self, provider: usize) -> (usize, usize) {
        self.max_entries.get(provider).copied().unwrap_or((0, 0))
    }

    /// A poll completed: the schedule moves on (a new version when the
    /// rules changed; polled again at the next tick when `more` waits).
    fn succeeded(
        &mut self,
        host: &mut impl FeedHost,
        i: usize,
        now: u64,
        changed: bool,
        more: bool,
    ) {
        let Some(f) = self.feeds.get(i) else { return };
        let (base, fetch) = (
            f.settings.fetch.shared_key.clone(),
            f.settings.fetch.clone(),
        );
        let seed = self.seed;
        let meta = update_meta(host, &base, |m| {
            let mut next = m.after_success(
                &fetch,
                now,
                None,
                Schedule::Spread,
                store::mix(seed, m.attempts),
            );
            if !changed && m.has_keys() {
                next.version = m.version;
            }
            if more {
                next.refresh_ms = now;
            }
            next
        });
        self.install_if_newer(host, i, &meta, now);
    }

    fn failed(&mut self, host: &mut impl FeedHost, i: usize, now: u64) {
        let Some(f) = self.feeds.get(i) else { return };
        inc(host, f.ids.poll_failure, 1);
        let (base, fetch) = (
            f.settings.fetch.shared_key.clone(),
            f.settings.fetch.clone(),
        );
        let seed = self.seed;
        let meta = update_meta(host, &base, |m| {
            m.after_failure(
                &fetch,
                now,
                None,
                Schedule::Spread,
                store::mix(seed, m.attempts),
            )
        });
        self.install_if_newer(host, i, &meta, now);
    }

    /// Loads the shared rules when their version is newer, applies the
    /// failure policy, and sets the gauges.
    fn install_if_newer(&mut self, host: &mut impl KeyHost, i: usize, meta: &Meta, now: u64) {
        let Some(f) = self.feeds.get(i) else { return };
        let provider = f.provider;
        let (max_entries, max_bytes) = self.bounds(provider);
        let mut installed = None;
        if meta.version != f.installed && meta.has_keys() {
            let parsed = host
                .shared_get(&f.settings.fetch.shared_key)
                .0
                .and_then(|b| denylist::parse(&b, max_entries, max_bytes, now / 1000).ok());
            if let Some(p) = parsed {
                installed = Some(Rc::new(p.set));
            }
        }
        let read_at = meta.fetched_ms.max(self.started_ms);
        let stale = now > read_at.saturating_add(f.settings.staleness_ms);
        let unavailable = stale && f.settings.fail_closed;
        let (source, ids) = (f.source, f.ids.clone());
        if let Some(f) = self.feeds.get_mut(i) {
            if installed.is_some() {
                f.installed = meta.version;
            }
        }
        let Some(Some(rules)) = self.revocations.providers.get_mut(provider) else {
            return;
        };
        if let Some(set) = installed {
            match source {
                Source::DenyList => rules.deny_list = Some(set),
                Source::Ssf => rules.ssf = Some(set),
            }
        }
        // A provider is unavailable when any of its fail_closed feeds is stale.
        let was = rules.unavailable;
        let other_stale = self.feeds.iter().enumerate().any(|(j, g)| {
            j != i
                && g.provider == provider
                && g.settings.fail_closed
                && read_meta(host, &g.settings.fetch.shared_key)
                    .0
                    .fetched_ms
                    .max(self.started_ms)
                    .saturating_add(g.settings.staleness_ms)
                    < now
        });
        let Some(Some(rules)) = self.revocations.providers.get_mut(provider) else {
            return;
        };
        rules.unavailable = unavailable || other_stale;
        let entries = match source {
            Source::DenyList => rules.deny_list.as_ref().map_or(0, |s| s.len()),
            Source::Ssf => rules.ssf.as_ref().map_or(0, |s| s.len()),
        };
        if rules.unavailable && !was {
            host.log(
                Level::Warn,
                &format!(
                    "jwt_filter: provider {}: revocation {} not read for longer than its \
                     staleness and fail_closed is set: tokens of this provider are denied until \
                     a poll succeeds",
                    self.names.get(provider).map_or("?", String::as_str),
                    source.name()
                ),
            );
        }
        if let Some(id) = ids.entries {
            host.record(id, entries as u64);
        }
        if let Some(id) = ids.age_seconds {
            let age = if meta.has_keys() {
                now.saturating_sub(meta.fetched_ms) / 1000
            } else {
                0
            };
            host.record(id, age);
        }
    }
}

mod feed_metrics;
mod ssf_poll;

use feed_metrics::inc;
pub use feed_metrics::{metric_names, FeedIds};
use ssf_poll::poll_call;

#[cfg(test)]
mod tests;
