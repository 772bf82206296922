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
//! The key is the exact token text (hashed by hashbrown's hasher, compared
//! in full), so two tokens can never share an entry.

use std::hash::{Hash, Hasher};
use std::rc::{Rc, Weak};

use hashbrown::{Equivalent, HashMap};
use serde_json::{Map, Value};

use crate::jwks::KeySet;

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

/// The cache key: the token text, shared with the slot that owns it.
#[derive(Clone, PartialEq, Eq)]
struct TokenKey(Rc<str>);

impl Hash for TokenKey {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.0.as_bytes().hash(h);
    }
}

/// A borrowed token to look up without allocating.
struct TokenRef<'a>(&'a str);

impl Hash for TokenRef<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.0.as_bytes().hash(h);
    }
}

impl Equivalent<TokenKey> for TokenRef<'_> {
    fn equivalent(&self, key: &TokenKey) -> bool {
        *key.0 == *self.0
    }
}

struct Slot {
    key: TokenKey,
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

/// One provider's cache.
pub struct TokenCache {
    map: HashMap<TokenKey, usize>,
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
            map: HashMap::new(),
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
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Estimated bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The verified claims of `token`, if it was verified with the same key
    /// set and has not expired (`now` in seconds). A stale entry is dropped.
    pub fn get(&mut self, token: &str, keys: Option<&Rc<KeySet>>, now: u64) -> Option<Rc<Cached>> {
        let idx = *self.map.get(&TokenRef(token))?;
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
        if let Some(&idx) = self.map.get(&TokenRef(token)) {
            self.remove(idx);
        }
        while self.map.len() >= self.max_entries
            || self.bytes.saturating_add(bytes) > self.max_bytes
        {
            if !self.evict_one() {
                break;
            }
        }
        let key = TokenKey(Rc::from(token));
        let slot = Slot {
            key: key.clone(),
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
            self.map.insert(key, idx);
        }
    }

    /// Drops every entry.
    pub fn clear(&mut self) {
        self.map.clear();
        self.slots.clear();
        self.free.clear();
        self.hand = 0;
        self.bytes = 0;
    }

    fn remove(&mut self, idx: usize) {
        if let Some(slot) = self.slots.get_mut(idx).and_then(Option::take) {
            self.map.remove(&slot.key);
            self.bytes = self.bytes.saturating_sub(slot.bytes);
            self.free.push(idx);
        }
    }

    /// CLOCK: clears reference bits until an unreferenced entry comes up,
    /// and evicts it. `false` when there is nothing to evict.
    fn evict_one(&mut self) -> bool {
        if self.map.is_empty() || self.slots.is_empty() {
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
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(sub: &str) -> Rc<Map<String, Value>> {
        match json!({ "sub": sub }) {
            Value::Object(m) => Rc::new(m),
            _ => unreachable!(),
        }
    }

    fn keyset() -> Rc<KeySet> {
        Rc::new(KeySet::default())
    }

    #[test]
    fn hit_and_miss() {
        let mut c = TokenCache::new(10, MAX_BYTES);
        assert!(c.get("a.b.c", None, 0).is_none());
        c.insert("a.b.c", None, claims("alice"), Some(100.0), 1, 0);
        let hit = c.get("a.b.c", None, 50).unwrap();
        assert_eq!(hit.claims["sub"], "alice");
        assert_eq!(hit.exp, Some(100.0));
        assert!(c.get("a.b.d", None, 50).is_none());
        assert!(c.get("a.b.", None, 50).is_none());
        assert!(c.get("a.b.cc", None, 50).is_none());
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn entries_never_outlive_exp() {
        let mut c = TokenCache::new(10, MAX_BYTES);
        c.insert("t", None, claims("a"), Some(100.0), 1, 90);
        assert!(c.get("t", None, 100).is_some());
        assert!(c.get("t", None, 101).is_none());
        assert!(c.is_empty(), "dropped on the stale lookup");
        assert_eq!(c.bytes(), 0);
        // Already expired: not stored. No exp: kept.
        c.insert("old", None, claims("a"), Some(10.0), 1, 11);
        assert!(c.is_empty());
        c.insert("forever", None, claims("a"), None, 1, 11);
        assert!(c.get("forever", None, u64::MAX / 2).is_some());
    }

    #[test]
    fn key_set_change_invalidates() {
        let mut c = TokenCache::new(10, MAX_BYTES);
        let v1 = keyset();
        c.insert("t", Some(&v1), claims("a"), None, 1, 0);
        assert!(c.get("t", Some(&v1), 0).is_some());
        let v2 = keyset();
        assert!(c.get("t", Some(&v2), 0).is_none());
        assert!(
            c.get("t", Some(&v1), 0).is_none(),
            "the stale entry is gone"
        );
        // Local (None) vs remote never mix.
        c.insert("t", None, claims("a"), None, 1, 0);
        assert!(c.get("t", Some(&v1), 0).is_none());
        c.insert("t", Some(&v1), claims("a"), None, 1, 0);
        assert!(c.get("t", None, 0).is_none());
        // Even after the old set is dropped and a new one allocated.
        c.insert("u", Some(&v1), claims("a"), None, 1, 0);
        drop(v1);
        let v3 = keyset();
        assert!(c.get("u", Some(&v3), 0).is_none());
    }

    #[test]
    fn bounded_by_entries_with_clock_eviction() {
        let mut c = TokenCache::new(3, MAX_BYTES);
        for t in ["t0", "t1", "t2"] {
            c.insert(t, None, claims(t), None, 1, 0);
        }
        // t0 and t2 are used: t1 is the victim.
        assert!(c.get("t0", None, 0).is_some());
        assert!(c.get("t2", None, 0).is_some());
        c.insert("t3", None, claims("t3"), None, 1, 0);
        assert_eq!(c.len(), 3);
        assert!(c.get("t1", None, 0).is_none());
        for t in ["t0", "t2", "t3"] {
            assert!(c.get(t, None, 0).is_some(), "{t}");
        }
        for i in 0..1000 {
            let t = format!("x{i}");
            c.insert(&t, None, claims("x"), None, 1, 0);
            assert!(c.len() <= 3);
            assert!(c.get(&t, None, 0).is_some());
        }
        assert!(c.slots.len() <= 3);
    }

    #[test]
    fn bounded_by_bytes() {
        let per = 100 + 2 * 10 + ENTRY_OVERHEAD;
        let mut c = TokenCache::new(100, per * 2);
        let token = |i: usize| format!("{i:0>100}");
        for i in 0..10 {
            c.insert(&token(i), None, claims("a"), None, 10, 0);
            assert!(c.bytes() <= per * 2);
        }
        assert_eq!(c.len(), 2);
        // Larger than the whole budget: not stored, nothing evicted.
        c.insert(&"y".repeat(per * 2), None, claims("a"), None, 10, 0);
        assert_eq!(c.len(), 2);
        assert!(c.get(&token(9), None, 0).is_some());
    }

    #[test]
    fn disabled_cache_never_stores() {
        let mut c = TokenCache::new(0, MAX_BYTES);
        assert!(!c.is_enabled());
        c.insert("t", None, claims("a"), None, 1, 0);
        assert!(c.get("t", None, 0).is_none());
    }

    #[test]
    fn reinsert_replaces_and_clear_empties() {
        let mut c = TokenCache::new(5, MAX_BYTES);
        c.insert("t", None, claims("a"), None, 1, 0);
        c.insert("t", None, claims("b"), None, 1, 0);
        assert_eq!(c.len(), 1);
        assert_eq!(c.get("t", None, 0).unwrap().claims["sub"], "b");
        c.clear();
        assert!(c.is_empty());
        assert_eq!(c.bytes(), 0);
    }
}

#[cfg(test)]
mod policy_tests;
