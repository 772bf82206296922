//! The DPoP replay record: one per filter, per worker or shared by every
//! worker of an Envoy (buckets in proxy-wasm shared data, chosen by a keyed
//! hash), bounded in entries and per proof key, expiring by time.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use hashbrown::HashMap;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::dpop::{CheckedProof, DpopSettings};
use crate::diag::OneOf;
use crate::json_read::{one_of, Read};
use crate::shared_data::SharedData;

/// Where seen proofs are remembered: in shared data, for every worker of
/// the Envoy (the default: a proof replayed to another worker is caught),
/// or per worker (cheaper; sound only with one worker).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReplayScope {
    #[default]
    Shared,
    Worker,
}

impl ReplayScope {
    /// `"shared"` or `"worker"`, at `path`.
    pub(crate) fn read(v: &serde_json::Value, path: &str) -> Read<OneOf<ReplayScope>> {
        let names = &["shared", "worker"];
        one_of(v, path, names, &[ReplayScope::Shared, ReplayScope::Worker]).map(OneOf)
    }
}

/// Compare-and-swap attempts before a contended record gives up (and the
/// proof is refused: fail closed).
const SHARED_ATTEMPTS: usize = 8;

/// The filter's one replay record, for all its providers: a proof is
/// accepted at most once whichever provider checks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplaySettings {
    /// `Shared` unless every DPoP provider asks for `worker`.
    pub scope: ReplayScope,
    /// Entries in the record: the largest `replay_cache_size`.
    pub capacity: usize,
    /// Entries one proof key (`jkt`) may hold: the largest
    /// `replay_cache_per_key`.
    pub per_key: usize,
    /// The longest `max_age`: an entry is kept until its proof could pass
    /// no provider's `iat` check.
    pub max_age_secs: u64,
}

impl ReplaySettings {
    /// The record of a filter whose DPoP providers have these settings;
    /// `None` without any.
    pub fn for_providers<'a>(
        settings: impl IntoIterator<Item = &'a DpopSettings>,
    ) -> Option<ReplaySettings> {
        let mut out: Option<ReplaySettings> = None;
        for d in settings {
            out = Some(match out {
                None => ReplaySettings {
                    scope: d.replay,
                    capacity: d.replay_capacity,
                    per_key: d.replay_per_key,
                    max_age_secs: d.policy.max_age_secs,
                },
                Some(r) => ReplaySettings {
                    scope: if r.scope == ReplayScope::Worker && d.replay == ReplayScope::Worker {
                        ReplayScope::Worker
                    } else {
                        ReplayScope::Shared
                    },
                    capacity: r.capacity.max(d.replay_capacity),
                    per_key: r.per_key.max(d.replay_per_key),
                    max_age_secs: r.max_age_secs.max(d.policy.max_age_secs),
                },
            });
        }
        out.map(|r| ReplaySettings {
            per_key: r.per_key.clamp(1, r.capacity.max(1)),
            ..r
        })
    }

    /// Entries one shared bucket holds.
    fn per_bucket(&self) -> usize {
        self.capacity.div_ceil(SHARED_BUCKETS).max(1)
    }

    /// Entries one key may hold in one shared bucket.
    fn per_key_per_bucket(&self) -> usize {
        self.per_key.div_ceil(SHARED_BUCKETS).max(1)
    }
}

/// Shared-data key of the replay record's bucket `i`.
pub fn bucket_key(i: usize) -> String {
    format!("{SHARED_NAMESPACE}{i}")
}

/// The filter's DPoP replay record as configured: this worker's record, and
/// for a shared record, whether it could be created in `store`
/// ([`prepare_shared`]; `false`: proofs are refused until it exists). No
/// DPoP provider: an empty record, nothing shared.
pub fn replay_record(
    settings: Option<ReplaySettings>,
    store: &dyn SharedData,
    random: &[u8; 32],
) -> (ReplayCache, bool) {
    match settings {
        Some(r) => {
            let ready = r.scope != ReplayScope::Shared || prepare_shared(store, random);
            (ReplayCache::new(r.capacity, r.per_key), ready)
        }
        None => (ReplayCache::new(0, 0), true),
    }
}

/// Creates the shared replay record when it does not exist yet: the secret
/// that picks a proof's bucket and the (empty) buckets. Run at configure time,
/// before any request: at request time a missing bucket or secret refuses the
/// proof instead of writing without compare-and-swap. `random`: 32 bytes the
/// clients cannot know (the host's random). Returns whether the record is
/// complete afterwards.
pub fn prepare_shared(store: &dyn SharedData, random: &[u8; 32]) -> bool {
    let valid = |v: &Option<Vec<u8>>| v.as_ref().is_some_and(|v| v.len() == SECRET_BYTES);
    let (value, cas) = store.shared_get(SHARED_SECRET_KEY);
    if !valid(&value) {
        // An empty placeholder first, so that the secret itself is written
        // with compare-and-swap: when VMs start together one secret wins and
        // every VM reads that one.
        let cas = match cas {
            Some(c) => Some(c),
            None => {
                store.shared_set(SHARED_SECRET_KEY, b"", None);
                store.shared_get(SHARED_SECRET_KEY).1
            }
        };
        if cas.is_some() && !valid(&store.shared_get(SHARED_SECRET_KEY).0) {
            store.shared_set(SHARED_SECRET_KEY, random, cas);
        }
    }
    let mut complete = valid(&store.shared_get(SHARED_SECRET_KEY).0);
    for i in 0..SHARED_BUCKETS {
        let key = bucket_key(i);
        if store.shared_get(&key).1.is_none() {
            store.shared_set(&key, b"", None);
            complete &= store.shared_get(&key).1.is_some();
        }
    }
    complete
}

/// Records a proof in the replay record shared by all workers of the Envoy
/// ([`prepare_shared`] made it). The bucket is chosen by a keyed hash of the
/// replay id under the record's secret, so a client cannot aim its proofs
/// at one bucket. A missing secret or bucket refuses the proof
/// ([`ReplayVerdict::Unavailable`]): a write to an absent key cannot be a
/// compare-and-swap, and two workers could then both take a proof as fresh.
pub fn record_shared(
    store: &dyn SharedData,
    proof: &CheckedProof,
    forget_at: u64,
    now: u64,
    settings: &ReplaySettings,
) -> ReplayVerdict {
    let Some(secret) = store
        .shared_get(SHARED_SECRET_KEY)
        .0
        .filter(|s| s.len() == SECRET_BYTES)
    else {
        return ReplayVerdict::Unavailable;
    };
    let id = replay_id(proof);
    let Some(bucket) = shared_bucket(&secret, &id) else {
        return ReplayVerdict::Unavailable;
    };
    let key = bucket_key(bucket);
    let entry = SharedEntry {
        id: &id,
        key: key_tag(proof),
        forget_at,
    };
    for _ in 0..SHARED_ATTEMPTS {
        // An empty bucket reads as no bytes with a tag (the SDK's answer for
        // an empty value); no tag: the bucket does not exist.
        let (bytes, cas) = store.shared_get(&key);
        let Some(cas) = cas else {
            return ReplayVerdict::Unavailable;
        };
        match shared_record(
            bytes.as_deref().unwrap_or_default(),
            &entry,
            now,
            settings.per_bucket(),
            settings.per_key_per_bucket(),
        ) {
            Ok(new) => {
                if store.shared_set(&key, &new, Some(cas)) {
                    return ReplayVerdict::Fresh;
                }
            }
            Err(verdict) => return verdict,
        }
    }
    ReplayVerdict::Full
}

/// Proofs seen recently, per worker: bounded by entries, each kept until
/// its proof could no longer pass the `iat` window, and expired by time (the
/// soonest to expire first, whatever the order they came in). When every
/// slot holds a proof still inside its window, a new proof is refused rather
/// than an old one forgotten (forgetting would let that one be replayed);
/// one proof key may hold at most `per_key` entries, so a single client
/// filling the record is refused alone.
#[derive(Debug)]
pub struct ReplayCache {
    capacity: usize,
    per_key: usize,
    /// Replay id -> (the time it may be forgotten, its key's tag).
    seen: HashMap<[u8; 32], (u64, [u8; 8])>,
    /// Every entry of `seen`, soonest to expire on top.
    expiry: BinaryHeap<Reverse<(u64, [u8; 32])>>,
    /// Entries each key holds (only keys holding some).
    per_key_count: HashMap<[u8; 8], usize>,
}

/// What the replay record says about a proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayVerdict {
    /// First use: recorded.
    Fresh,
    /// Seen before within its window.
    Replayed,
    /// Every slot holds a live proof, or the proof's key holds its share;
    /// refused (fail closed).
    Full,
    /// The shared record is missing (its secret or bucket was never
    /// created); refused (fail closed).
    Unavailable,
}

impl ReplayCache {
    /// A record of `capacity` entries, at most `per_key` of them for one key.
    pub fn new(capacity: usize, per_key: usize) -> ReplayCache {
        ReplayCache {
            capacity,
            per_key,
            seen: HashMap::new(),
            expiry: BinaryHeap::new(),
            per_key_count: HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Records `proof` unless it was seen; `forget_at` is when its `iat`
    /// window closes (so a replay after it fails the `iat` check instead).
    pub fn check_and_record(
        &mut self,
        proof: &CheckedProof,
        forget_at: u64,
        now: u64,
    ) -> ReplayVerdict {
        while let Some(Reverse((at, id))) = self.expiry.peek().copied() {
            if at > now {
                break;
            }
            self.expiry.pop();
            if let Some((_, key)) = self.seen.remove(&id) {
                if let Some(n) = self.per_key_count.get_mut(&key) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.per_key_count.remove(&key);
                    }
                }
            }
        }
        let id = replay_id(proof);
        if self.seen.contains_key(&id) {
            return ReplayVerdict::Replayed;
        }
        let key = key_tag(proof);
        let held = self.per_key_count.get(&key).copied().unwrap_or(0);
        if self.seen.len() >= self.capacity || held >= self.per_key {
            return ReplayVerdict::Full;
        }
        self.seen.insert(id, (forget_at, key));
        self.expiry.push(Reverse((forget_at, id)));
        self.per_key_count.insert(key, held + 1);
        ReplayVerdict::Fresh
    }
}

/// Buckets of the replay record shared by all workers of one Envoy (proxy-wasm
/// shared data): a proof's bucket is chosen by a keyed hash of its replay id,
/// so concurrent workers rarely contend for one compare-and-swap and no
/// client can choose the bucket its proofs land in.
pub const SHARED_BUCKETS: usize = 64;
/// Prefix of the shared replay record's keys (one record per Envoy for the
/// filter: every provider, every worker).
pub const SHARED_NAMESPACE: &str = "jwt_filter.dpop_replay|";
/// Shared-data key of the secret that picks buckets.
pub const SHARED_SECRET_KEY: &str = "jwt_filter.dpop_replay|secret";
/// Bytes of that secret.
pub const SECRET_BYTES: usize = 32;
/// Bytes per entry in a shared bucket: 16 bytes of the replay id (128 bits
/// keep collisions out of reach), 8 bytes naming the proof's key (for the
/// per-key share) and the time it may be forgotten.
const SHARED_ENTRY: usize = 32;

/// The shared bucket of a replay id: HMAC-SHA-256 under the record's secret.
pub fn shared_bucket(secret: &[u8], id: &[u8; 32]) -> Option<usize> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).ok()?;
    mac.update(id);
    let tag = mac.finalize().into_bytes();
    let first = <[u8; 8]>::try_from(tag.get(..8)?).ok()?;
    usize::try_from(u64::from_be_bytes(first) % SHARED_BUCKETS as u64).ok()
}

/// A proof as a shared bucket stores it.
#[derive(Debug, Clone, Copy)]
pub struct SharedEntry<'a> {
    /// [`replay_id`] of the proof.
    pub id: &'a [u8; 32],
    /// [`key_tag`] of its key.
    pub key: [u8; 8],
    /// When it may be forgotten.
    pub forget_at: u64,
}

/// Records `entry` in a shared bucket's bytes (as read from shared data):
/// `Ok(new bytes)` to write back with the compare-and-swap token that was
/// read, or the verdict when the proof must be refused. Entries past their
/// time are dropped while rewriting (by time, wherever they sit); a bucket
/// never holds more than `capacity` entries, nor more than `per_key` of one
/// key.
pub fn shared_record(
    bucket: &[u8],
    entry: &SharedEntry<'_>,
    now: u64,
    capacity: usize,
    per_key: usize,
) -> Result<Vec<u8>, ReplayVerdict> {
    let prefix = entry.id.get(..16).unwrap_or_default();
    let mut out = Vec::with_capacity(bucket.len() + SHARED_ENTRY);
    let mut held = 0usize;
    for e in bucket.chunks_exact(SHARED_ENTRY) {
        let (eid, rest) = e.split_at(16);
        let (key, at) = rest.split_at(8);
        let at = <[u8; 8]>::try_from(at).map(u64::from_be_bytes).unwrap_or(0);
        if at <= now {
            continue;
        }
        if eid == prefix {
            return Err(ReplayVerdict::Replayed);
        }
        if key == entry.key {
            held += 1;
        }
        out.extend_from_slice(e);
    }
    if out.len() / SHARED_ENTRY >= capacity || held >= per_key {
        return Err(ReplayVerdict::Full);
    }
    out.extend_from_slice(prefix);
    out.extend_from_slice(&entry.key);
    out.extend_from_slice(&entry.forget_at.to_be_bytes());
    Ok(out)
}

/// The replay key of a proof: its `jti` is unique per key (RFC 9449 11.1), so
/// two clients choosing the same `jti` do not collide.
pub fn replay_id(proof: &CheckedProof) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(proof.jkt.as_bytes());
    h.update([0]);
    h.update(proof.jti.as_bytes());
    h.finalize().into()
}

/// 8 bytes naming a proof's key (SHA-256 of its thumbprint), for the
/// per-key share of the replay record.
pub fn key_tag(proof: &CheckedProof) -> [u8; 8] {
    let digest = Sha256::digest(proof.jkt.as_bytes());
    <[u8; 8]>::try_from(digest.get(..8).unwrap_or_default()).unwrap_or_default()
}
