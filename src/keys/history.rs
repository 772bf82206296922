//! When each signing key a provider serves was first seen, for the
//! key-rotation metrics: the age of the oldest key still served, and how
//! many keys a new key set added and removed.
//!
//! A JWKS carries no key creation time, so "first seen" is when this Envoy
//! first got a key set with that key (the record lives in proxy-wasm shared
//! data, so every worker VM agrees; it starts over when Envoy restarts).
//! Keys are told apart by `kid`; a key without one by its position
//! (`#<index>`).

use crate::crypto::jwks::KeySet;

/// Most keys remembered (a JWKS holds at most `jwks::MAX_KEYS`).
pub const MAX_ENTRIES: usize = 256;

/// Key id -> first-seen time (ms since the epoch), for the keys served now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyHistory {
    entries: Vec<(String, u64)>,
}

/// What a new key set changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Change {
    pub added: usize,
    pub removed: usize,
}

/// The identities of a key set's keys, in order.
pub fn key_ids(set: &KeySet) -> Vec<String> {
    set.keys()
        .iter()
        .enumerate()
        .map(|(i, k)| k.kid.clone().unwrap_or_else(|| format!("#{i}")))
        .collect()
}

impl KeyHistory {
    /// Reads the shared-data form: `<ms> <id>` lines. Lines that do not
    /// parse are skipped (the record is only ever written by [`encode`]).
    ///
    /// [`encode`]: KeyHistory::encode
    pub fn decode(bytes: &[u8]) -> KeyHistory {
        let text = String::from_utf8_lossy(bytes);
        let entries = text
            .lines()
            .filter_map(|l| {
                let (ms, id) = l.split_once(' ')?;
                Some((id.to_string(), ms.parse().ok()?))
            })
            .take(MAX_ENTRIES)
            .collect();
        KeyHistory { entries }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        for (id, ms) in &self.entries {
            // Ids are single-line in the record.
            let id: String = id.chars().filter(|c| *c != '\n' && *c != '\r').collect();
            out.push_str(&format!("{ms} {id}\n"));
        }
        out
    }

    /// The history after key set `ids` was installed at `now_ms`: ids seen
    /// before keep their time, new ones get `now_ms`, gone ones are dropped.
    /// The very first set (empty history) counts as no change.
    pub fn update(&self, ids: &[String], now_ms: u64) -> (KeyHistory, Change) {
        let mut entries = Vec::with_capacity(ids.len());
        let mut added = 0;
        for id in ids.iter().take(MAX_ENTRIES) {
            if entries.iter().any(|(e, _): &(String, u64)| e == id) {
                continue;
            }
            match self.entries.iter().find(|(e, _)| e == id) {
                Some((_, ms)) => entries.push((id.clone(), *ms)),
                None => {
                    added += 1;
                    entries.push((id.clone(), now_ms));
                }
            }
        }
        let removed = self
            .entries
            .iter()
            .filter(|(e, _)| !entries.iter().any(|(n, _)| n == e))
            .count();
        let change = if self.entries.is_empty() {
            Change::default()
        } else {
            Change { added, removed }
        };
        (KeyHistory { entries }, change)
    }

    /// First-seen time of the oldest key.
    pub fn oldest(&self) -> Option<u64> {
        self.entries.iter().map(|(_, ms)| *ms).min()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests;
