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

/// One feed's metric ids.
#[derive(Clone, Debug, Default)]
pub struct FeedIds {
    pub age_seconds: Option<u32>,
    pub entries: Option<u32>,
    pub poll_success: Option<u32>,
    pub poll_not_modified: Option<u32>,
    pub poll_failure: Option<u32>,
    pub poll_refused: Option<u32>,
    pub rules_refused: Option<u32>,
    /// SSF only.
    pub events_applied: Option<u32>,
    pub events_ignored: Option<u32>,
    pub sets_rejected: Vec<Option<u32>>,
}

fn inc(host: &dyn MetricHost, id: Option<u32>, n: usize) {
    if let (Some(id), true) = (id, n > 0) {
        host.increment(id, i64::try_from(n).unwrap_or(i64::MAX));
    }
}

impl FeedIds {
    fn define(host: &mut dyn MetricHost, prefix: &str, provider: &str, source: Source) -> FeedIds {
        let f = source.name();
        let p = [("provider", provider)];
        let mut def = |kind, name: &str, labels: &[(&str, &str)]| {
            host.define(kind, &stat_name(prefix, name, labels))
        };
        use MetricKind::{Counter as C, Gauge as G};
        let polls = format!("revocation_{f}_polls_total");
        let result = |r| [("provider", provider), ("result", r)];
        let mut ids = FeedIds {
            age_seconds: def(G, &format!("revocation_{f}_age_seconds"), &p),
            entries: def(G, &format!("revocation_{f}_entries"), &p),
            poll_success: def(C, &polls, &result("success")),
            poll_not_modified: def(C, &polls, &result("not_modified")),
            poll_failure: def(C, &polls, &result("failure")),
            poll_refused: def(C, &polls, &result("refused")),
            rules_refused: def(C, &format!("revocation_{f}_rules_refused_total"), &p),
            ..FeedIds::default()
        };
        if source == Source::Ssf {
            let events = "revocation_ssf_events_total";
            ids.events_applied = def(C, events, &result("applied"));
            ids.events_ignored = def(C, events, &result("ignored"));
            for r in Reject::ALL {
                ids.sets_rejected.push(def(
                    C,
                    "revocation_ssf_sets_rejected_total",
                    &[("provider", provider), ("reason", r.reason())],
                ));
            }
        }
        ids
    }
}

/// Every revocation metric name of a configuration (for docs and tests).
pub fn metric_names(config: &Config) -> Vec<(MetricKind, String)> {
    struct Names(Vec<(MetricKind, String)>);
    impl MetricHost for Names {
        fn define(&mut self, kind: MetricKind, name: &str) -> Option<u32> {
            self.0.push((kind, name.to_string()));
            None
        }
        fn increment(&self, _: u32, _: i64) {}
        fn record(&self, _: u32, _: u64) {}
    }
    let mut host = Names(Vec::new());
    let _ = RevocationFeeds::new(config, &mut host, 1, 0);
    host.0
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

    /// A call of these feeds answered.
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

    fn jwks_answered(
        &mut self,
        host: &mut impl FeedHost,
        i: usize,
        now: u64,
        status: Option<&str>,
        body: Option<Vec<u8>>,
        size: usize,
    ) {
        let Some(s) = self.feeds.get(i).and_then(|f| f.ssf.clone()) else {
            return;
        };
        let checked = match &body {
            Some(b) => store::validate_response(status, b, &ssf::set_algorithms()),
            None => store::jwks_status(status).and(Err(store::too_large(size))),
        };
        match checked {
            Ok(_) => {
                let mut stored = format!("{now} ").into_bytes();
                stored.extend_from_slice(body.as_deref().unwrap_or_default());
                host.shared_set(&s.jwks.shared_key, &stored, None);
                let call = poll_call(host, &s);
                self.dispatch(host, i, now, (CallKind::Poll, call));
            }
            Err(e) => {
                let msg = format!(
                    "{}: transmitter JWKS from {} failed: {e}",
                    self.name(i),
                    s.jwks.uri
                );
                host.log(Level::Warn, &msg);
                self.failed(host, i, now);
            }
        }
    }

    /// The transmitter's keys, parsed once per fetch.
    fn transmitter_keys(&mut self, host: &impl KeyHost, i: usize) -> Option<(u64, Rc<KeySet>)> {
        let f = self.feeds.get_mut(i)?;
        let s = f.ssf.as_ref()?;
        let (at, text) = read_jwks(host, &s.jwks.shared_key)?;
        if let Some((cached_at, keys)) = &f.jwks {
            if *cached_at == at {
                return Some((at, keys.clone()));
            }
        }
        let (set, _) = KeySet::parse(&text).ok()?;
        let keys = Rc::new(set);
        f.jwks = Some((at, keys.clone()));
        Some((at, keys))
    }

    fn poll_answered(
        &mut self,
        host: &mut impl FeedHost,
        i: usize,
        now: u64,
        status: Option<&str>,
        body: Option<Vec<u8>>,
        size: usize,
    ) {
        let Some(f) = self.feeds.get(i) else { return };
        let Some(s) = f.ssf.clone() else { return };
        let (ids, provider) = (f.ids.clone(), f.provider);
        let response = match (status, body) {
            (Some("200"), Some(b)) => ssf::parse_poll_response(&b),
            (Some("200"), None) => Err(format!(
                "poll response of {size} bytes exceeds the {} byte limit",
                ssf::MAX_POLL_RESPONSE_BYTES
            )),
            (Some(s), _) => Err(format!("HTTP {s}")),
            (None, _) => Err("no response (timeout, reset, or unknown cluster)".into()),
        };
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                let msg = format!(
                    "{}: poll of {} failed: {e}; keeping the last good rules",
                    self.name(i),
                    s.poll.fetch.uri
                );
                host.log(Level::Warn, &msg);
                self.failed(host, i, now);
                return;
            }
        };
        let keys = self.transmitter_keys(host, i);
        let issuer = self.issuers.get(provider).cloned().flatten();
        let mut pending = Pending::default();
        let mut rules = Vec::new();
        let (mut applied, mut ignored) = (0usize, 0usize);
        let mut refetch_keys = false;
        let max = usize::try_from(s.max_events).unwrap_or(usize::MAX);
        for (jti, text) in response.sets.iter().take(max) {
            let verdict = match &keys {
                Some((_, k)) => ssf::verify_set(jti, text, &s, k, &token::native_verify),
                None => Err(Reject::UnknownKey),
            };
            match verdict {
                Ok(v) => {
                    for (event_type, payload) in &v.events {
                        let r = ssf::rules_for_event(
                            event_type,
                            payload,
                            v.sub_id.as_ref(),
                            v.iat,
                            issuer.as_deref(),
                            s.rule_lifetime_secs,
                        );
                        if r.is_empty() {
                            ignored += 1;
                        } else {
                            applied += 1;
                            rules.extend(r);
                        }
                    }
                    pending.ack.push(jti.clone());
                }
                Err(Reject::UnknownKey)
                    if keys
                        .as_ref()
                        .is_none_or(|(at, _)| now >= at.saturating_add(s.jwks.min_refetch_ms)) =>
                {
                    // Not acknowledged: delivered again after the keys are refetched.
                    refetch_keys = true;
                }
                Err(r) => {
                    let idx = Reject::ALL.iter().position(|x| *x == r).unwrap_or(0);
                    inc(host, ids.sets_rejected.get(idx).copied().flatten(), 1);
                    let msg = format!(
                        "{}: SET {:.64} refused ({}): not applied",
                        self.name(i),
                        jti,
                        r.reason()
                    );
                    host.log(Level::Warn, &msg);
                    pending.errs.push((jti.clone(), r.code()));
                }
            }
        }
        if refetch_keys {
            // Fetched again before the next poll.
            host.shared_set(&s.jwks.shared_key, b"0 {}", None);
        }
        inc(host, ids.events_applied, applied);
        inc(host, ids.events_ignored, ignored);
        let changed = !rules.is_empty() && self.merge(host, i, &rules, now);
        pending.ack.truncate(ssf::MAX_PENDING_ACKS);
        pending.errs.truncate(ssf::MAX_PENDING_ACKS);
        host.shared_set(
            &format!("{}|pending", s.poll.fetch.shared_key),
            pending.encode().as_bytes(),
            None,
        );
        inc(host, ids.poll_success, 1);
        if !response.sets.is_empty() {
            let msg = format!(
                "{}: {} SET(s) received, {applied} event(s) applied, {ignored} ignored",
                self.name(i),
                response.sets.len()
            );
            host.log(Level::Info, &msg);
        }
        let more = response.more_available || response.sets.len() > max || refetch_keys;
        self.succeeded(host, i, now, changed, more);
    }

    /// Adds rules to the shared SSF rule set (compare-and-swap); returns
    /// whether it changed.
    fn merge(&mut self, host: &mut impl FeedHost, i: usize, rules: &[ssf::Rule], now: u64) -> bool {
        let Some(f) = self.feeds.get(i) else {
            return false;
        };
        let (base, ids) = (f.settings.fetch.shared_key.clone(), f.ids.clone());
        let (max_entries, max_bytes) = self.bounds(f.provider);
        let secs = now / 1000;
        for _ in 0..8 {
            let (bytes, cas) = host.shared_get(&base);
            let mut set = bytes
                .and_then(|b| denylist::parse(&b, max_entries, max_bytes, secs).ok())
                .map(|p| p.set)
                .unwrap_or_else(|| RuleSet::new(max_entries, max_bytes));
            set.prune(secs);
            let mut refused = 0;
            for r in rules {
                if set.insert(r.kind, &r.value, r.entry, secs) == Err(Refused::Full) {
                    refused += 1;
                }
            }
            if host.shared_set(&base, denylist::encode(&set).as_bytes(), cas) {
                if refused > 0 {
                    inc(host, ids.rules_refused, refused);
                    let msg = format!(
                        "{}: {refused} rule(s) refused: the rule set is full ({max_entries} \
                         entries / {max_bytes} bytes)",
                        self.name(i)
                    );
                    host.log(Level::Warn, &msg);
                }
                return true;
            }
        }
        false
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

/// The poll request of an SSF stream, acknowledging what is pending.
fn poll_call(host: &impl KeyHost, s: &SsfSettings) -> FeedCall {
    let pending = host
        .shared_get(&format!("{}|pending", s.poll.fetch.shared_key))
        .0
        .map(|b| Pending::decode(&b))
        .unwrap_or_default();
    let mut headers = vec![
        ("content-type", "application/json".to_string()),
        ("accept", "application/json".to_string()),
    ];
    if let Some(a) = &s.authorization {
        headers.push(("authorization", a.clone()));
    }
    FeedCall {
        request: request_of(&s.poll.fetch),
        method: "POST",
        headers,
        body: pending.poll_body(s.max_events).into_bytes(),
    }
}

#[cfg(test)]
mod tests;
