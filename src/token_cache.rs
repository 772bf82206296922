//! Verified-token cache, one per provider per VM (like `jwt_authn`'s
//! `jwt_cache`): the full token -> its verified claims, so a token seen
//! again skips parsing and the signature check.
//!
//! Rules:
//! - written only after full verification (structure, claims, signature);
//! - an entry never outlives the token's `exp` (dropped when `now > exp`);
//! - an entry is bound to the key set that verified it: a JWKS change (a new
//!   `Rc<KeySet>` installed for the provider) makes every older entry miss;
//! - the time and rule checks (`exp`, `nbf`, issuer, audience, scopes)
//!   still run on every hit, by the caller;
//! - bounded by entries (`jwt_cache_config.jwt_cache_size`, default
//!   [`DEFAULT_ENTRIES`] like Envoy) and by bytes ([`MAX_BYTES`] per
//!   provider, an estimate of token plus claims), with CLOCK eviction
//!   (second-chance: a hit sets the entry's bit; the hand clears bits and
//!   evicts the first entry found without one).
//!
//! The key is the exact token text (compared in full, so two tokens can
//! never share an entry), hashed once per lookup or insert: a slot keeps its
//! token's hash, so evicting or replacing never rehashes a token.

use std::hash::BuildHasher;
use std::rc::{Rc, Weak};

use hashbrown::{DefaultHashBuilder, HashTable};
use serde_json::{Map, Value};

use crate::crypto::jwks::KeySet;

/// Entries per provider when `jwt_cache_config` is absent (Envoy's default).
pub const DEFAULT_ENTRIES: usize = 100;
/// Largest `jwt_cache_size` accepted.
pub const MAX_ENTRIES: usize = 100_000;
/// Bytes (estimated) per provider cache.
pub const MAX_BYTES: usize = 4 * 1024 * 1024;
/// Fixed per-entry overhead counted on top of token and claims text.
const ENTRY_OVERHEAD: usize = 128;

/// What a hit gives back.
#[derive(Debug)]
pub struct Cached {
    /// The verified claims (shared, never copied on a hit).
    pub claims: Rc<Map<String, Value>>,
    /// `exp` in seconds, when the token had one.
    pub exp: Option<f64>,
}

struct Slot {
    token: Box<str>,
    hash: u64,
    value: Rc<Cached>,
    /// The key set that verified it (`None`: the provider's local keys).
    keys: Option<Weak<KeySet>>,
    bytes: usize,
    referenced: bool,
}

/// Which key set verified a token: `None` for a provider's local keys (fixed
/// for the life of the configuration), else the fetched set. Holding a
/// `Weak` keeps the allocation, so a new set can never reuse the address.
fn same_keys(stored: &Option<Weak<KeySet>>, current: Option<&Rc<KeySet>>) -> bool {
    match (stored, current) {
        (None, None) => true,
        (Some(w), Some(rc)) => std::ptr::eq(w.as_ptr(), Rc::as_ptr(rc)),
        _ => false,
    }
}

/// `a == b`, eight bytes at a time. Slice equality ends in libc's `memcmp`,
/// which wasi-libc runs a byte at a time: for a token of several hundred
/// bytes on every cache hit, this is measurably cheaper in wasm.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let word = |c: &[u8]| <[u8; 8]>::try_from(c).map(u64::from_ne_bytes).ok();
    let (wa, wb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tails_equal = wa.remainder() == wb.remainder();
    tails_equal && wa.zip(wb).all(|(x, y)| word(x) == word(y))
}

/// One provider's cache.
pub struct TokenCache {
    /// Slot indices, by token hash.
    table: HashTable<usize>,
    hasher: DefaultHashBuilder,
    slots: Vec<Option<Slot>>,
    /// Indices of empty slots.
    free: Vec<usize>,
    hand: usize,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
}

impl TokenCache {
    /// A cache of at most `max_entries` entries and `max_bytes` bytes
    /// (`max_entries == 0`: disabled, every lookup misses).
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        TokenCache {
            table: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            slots: Vec::new(),
            free: Vec::new(),
            hand: 0,
            bytes: 0,
            max_entries: max_entries.min(MAX_ENTRIES),
            max_bytes,
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.max_entries > 0
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    fn hash(&self, token: &str) -> u64 {
        self.hasher.hash_one(token)
    }

    /// The slot holding `token` (whose hash is `hash`).
    fn find(&self, hash: u64, token: &str) -> Option<usize> {
        let slots = &self.slots;
        self.table
            .find(
                hash,
                |&i| matches!(slots.get(i), Some(Some(s)) if same_bytes(s.token.as_bytes(), token.as_bytes())),
            )
            .copied()
    }

    /// Estimated bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The verified claims of `token`, if it was verified with the same key
    /// set and has not expired (`now` in seconds). A stale entry is dropped.
    pub fn get(&mut self, token: &str, keys: Option<&Rc<KeySet>>, now: u64) -> Option<Rc<Cached>> {
        let idx = self.find(self.hash(token), token)?;
        let fresh = match self.slots.get(idx) {
            Some(Some(slot)) => {
                same_keys(&slot.keys, keys) && slot.value.exp.is_none_or(|exp| now as f64 <= exp)
            }
            _ => false,
        };
        if !fresh {
            self.remove(idx);
            return None;
        }
        let slot = self.slots.get_mut(idx)?.as_mut()?;
        slot.referenced = true;
        Some(slot.value.clone())
    }

    /// Remembers a fully verified token. `payload_len`: the payload's text
    /// length, for the byte estimate. Tokens already expired, or too large
    /// for the whole budget, are not stored.
    pub fn insert(
        &mut self,
        token: &str,
        keys: Option<&Rc<KeySet>>,
        claims: Rc<Map<String, Value>>,
        exp: Option<f64>,
        payload_len: usize,
        now: u64,
    ) {
        if self.max_entries == 0 || exp.is_some_and(|e| now as f64 > e) {
            return;
        }
        let bytes = token
            .len()
            .saturating_add(payload_len.saturating_mul(2))
            .saturating_add(ENTRY_OVERHEAD);
        if bytes > self.max_bytes {
            return;
        }
        let hash = self.hash(token);
        if let Some(idx) = self.find(hash, token) {
            self.remove(idx);
        }
        while self.table.len() >= self.max_entries
            || self.bytes.saturating_add(bytes) > self.max_bytes
        {
            if !self.evict_one() {
                break;
            }
        }
        let slot = Slot {
            token: Box::from(token),
            hash,
            value: Rc::new(Cached { claims, exp }),
            keys: keys.map(Rc::downgrade),
            bytes,
            referenced: false,
        };
        let idx = match self.free.pop() {
            Some(free) => free,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        if let Some(s) = self.slots.get_mut(idx) {
            *s = Some(slot);
            self.bytes = self.bytes.saturating_add(bytes);
            let slots = &self.slots;
            self.table
                .insert_unique(hash, idx, |&i| match slots.get(i) {
                    Some(Some(s)) => s.hash,
                    _ => 0,
                });
        }
    }

    /// Drops every entry.
    pub fn clear(&mut self) {
        self.table.clear();
        self.slots.clear();
        self.free.clear();
        self.hand = 0;
        self.bytes = 0;
    }

    fn remove(&mut self, idx: usize) {
        if let Some(slot) = self.slots.get_mut(idx).and_then(Option::take) {
            if let Ok(entry) = self.table.find_entry(slot.hash, |&i| i == idx) {
                entry.remove();
            }
            self.bytes = self.bytes.saturating_sub(slot.bytes);
            self.free.push(idx);
        }
    }

    /// CLOCK: clears reference bits until an unreferenced entry comes up,
    /// and evicts it. `false` when there is nothing to evict.
    fn evict_one(&mut self) -> bool {
        if self.table.is_empty() || self.slots.is_empty() {
            return false;
        }
        // Two sweeps always find a victim (the first clears every bit).
        for _ in 0..self.slots.len().saturating_mul(2) {
            if self.hand >= self.slots.len() {
                self.hand = 0;
            }
            let idx = self.hand;
            self.hand += 1;
            match self.slots.get_mut(idx) {
                Some(Some(slot)) if slot.referenced => slot.referenced = false,
                Some(Some(_)) => {
                    self.remove(idx);
                    return true;
                }
                _ => {}
            }
        }
        false
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
#[path = "token_cache/policy_test.rs"]
mod policy_tests;
