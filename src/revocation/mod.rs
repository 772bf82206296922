//! Token revocation: per-provider rules that deny a token that is otherwise
//! valid, by `jti`, by `sub` or `email` (optionally only tokens issued before
//! a cutoff), or by session id (`sid`). Each rule carries an expiry, and a
//! set of rules is bounded in entries and bytes.
//!
//! The rules come from two feeds, fetched through Envoy clusters and shared
//! by every worker (the lifecycle is in `crate::revocation_feeds`): a
//! deny-list document ([`denylist`]) and a Shared Signals receiver with poll
//! delivery ([`ssf`]). This module and its submodules are pure: time is an
//! argument (seconds since the epoch for rules, milliseconds for schedules).
//!
//! On the request path a provider without revocation costs one branch; with
//! rules, a lookup is at most four hash lookups (no allocation).

pub mod build;
pub mod denylist;
pub mod ssf;

use std::collections::HashMap;
use std::rc::Rc;

use serde_json::{Map, Value};

use crate::error::AuthError;
use crate::remote_jwks::RemoteJwks;

/// Default most rules per feed of a provider.
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;
/// Default most bytes of rule values per feed of a provider.
pub const DEFAULT_MAX_BYTES: usize = 8 * 1024 * 1024;
/// Upper bound of `max_entries`.
pub const MAX_ENTRIES_LIMIT: usize = 1_000_000;
/// Upper bound of `max_bytes`.
pub const MAX_BYTES_LIMIT: usize = 64 * 1024 * 1024;
/// Bytes counted per rule beside its value (map slot, expiry, cutoff).
pub const ENTRY_OVERHEAD: usize = 48;
/// Longest rule value accepted (a `jti`, `sub`, `sid` or `email`).
pub const MAX_VALUE_BYTES: usize = 1024;

/// What a rule matches in a token's claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The token's `jti`.
    Jti,
    /// The token's `sub`.
    Sub,
    /// The token's `sid` (session id).
    Sid,
    /// The token's `email`.
    Email,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Jti, Kind::Sub, Kind::Sid, Kind::Email];

    /// The name in the deny-list document, and the claim it matches.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Jti => "jti",
            Kind::Sub => "sub",
            Kind::Sid => "sid",
            Kind::Email => "email",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    fn index(self) -> usize {
        match self {
            Kind::Jti => 0,
            Kind::Sub => 1,
            Kind::Sid => 2,
            Kind::Email => 3,
        }
    }
}

/// One rule's times (seconds since the epoch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The rule no longer applies from this time on.
    pub expires: u64,
    /// The rule applies from this time on (0: at once).
    pub not_before: u64,
    /// Only tokens whose `iat` is before this are revoked (a token without
    /// `iat` is revoked too); `None`: every token that matches.
    pub issued_before: Option<u64>,
}

impl Entry {
    /// Two rules for the same value as one: the wider of both.
    fn merge(self, other: Entry) -> Entry {
        Entry {
            expires: self.expires.max(other.expires),
            not_before: self.not_before.min(other.not_before),
            issued_before: match (self.issued_before, other.issued_before) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            },
        }
    }

    fn applies(&self, iat: Option<u64>, now: u64) -> bool {
        now < self.expires
            && now >= self.not_before
            && match (self.issued_before, iat) {
                (None, _) | (Some(_), None) => true,
                (Some(cutoff), Some(iat)) => iat < cutoff,
            }
    }
}

/// Why a rule was not added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The set holds `max_entries` rules or `max_bytes` bytes.
    Full,
    /// Empty or longer than [`MAX_VALUE_BYTES`].
    BadValue,
    /// Already expired.
    Expired,
}

/// A bounded set of revocation rules.
#[derive(Clone, Debug)]
pub struct RuleSet {
    maps: [HashMap<String, Entry>; 4],
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
}

impl RuleSet {
    pub fn new(max_entries: usize, max_bytes: usize) -> RuleSet {
        RuleSet {
            maps: Default::default(),
            bytes: 0,
            max_entries,
            max_bytes,
        }
    }

    pub fn len(&self) -> usize {
        self.maps.iter().map(HashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.maps.iter().all(HashMap::is_empty)
    }

    /// Bytes counted against `max_bytes`.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Adds a rule (merged with an existing one for the same value), unless
    /// it is expired at `now` or the bounds are reached.
    pub fn insert(
        &mut self,
        kind: Kind,
        value: &str,
        entry: Entry,
        now: u64,
    ) -> Result<(), Refused> {
        if value.is_empty() || value.len() > MAX_VALUE_BYTES {
            return Err(Refused::BadValue);
        }
        if entry.expires <= now {
            return Err(Refused::Expired);
        }
        let (len, bytes, max_entries, max_bytes) =
            (self.len(), self.bytes, self.max_entries, self.max_bytes);
        let Some(map) = self.maps.get_mut(kind.index()) else {
            return Err(Refused::BadValue);
        };
        if let Some(old) = map.get_mut(value) {
            *old = old.merge(entry);
            return Ok(());
        }
        let cost = value.len().saturating_add(ENTRY_OVERHEAD);
        if len >= max_entries || bytes.saturating_add(cost) > max_bytes {
            return Err(Refused::Full);
        }
        map.insert(value.to_string(), entry);
        self.bytes = bytes.saturating_add(cost);
        Ok(())
    }

    /// Drops the rules expired at `now`; returns how many.
    pub fn prune(&mut self, now: u64) -> usize {
        let mut dropped = 0;
        let mut freed = 0usize;
        for map in &mut self.maps {
            map.retain(|v, e| {
                let keep = e.expires > now;
                if !keep {
                    dropped += 1;
                    freed = freed.saturating_add(v.len().saturating_add(ENTRY_OVERHEAD));
                }
                keep
            });
        }
        self.bytes = self.bytes.saturating_sub(freed);
        dropped
    }

    /// Every rule, for writing the set out (order unspecified).
    pub fn entries(&self) -> impl Iterator<Item = (Kind, &str, &Entry)> {
        Kind::ALL.into_iter().flat_map(move |k| {
            self.maps
                .get(k.index())
                .into_iter()
                .flat_map(move |m| m.iter().map(move |(v, e)| (k, v.as_str(), e)))
        })
    }

    /// Whether a rule revokes a token with these claims at `now`.
    pub fn revokes(&self, claims: &Map<String, Value>, now: u64) -> bool {
        let mut iat: Option<Option<u64>> = None;
        for kind in Kind::ALL {
            let Some(map) = self.maps.get(kind.index()) else {
                continue;
            };
            if map.is_empty() {
                continue;
            }
            let Some(value) = claims.get(kind.name()).and_then(Value::as_str) else {
                continue;
            };
            if let Some(entry) = map.get(value) {
                let iat = *iat.get_or_insert_with(|| token_iat(claims));
                if entry.applies(iat, now) {
                    return true;
                }
            }
        }
        false
    }
}

/// The token's `iat` in whole seconds (a fraction is cut), when a
/// non-negative number.
fn token_iat(claims: &Map<String, Value>) -> Option<u64> {
    let v = claims.get("iat")?;
    v.as_u64().or_else(|| {
        v.as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(|f| f as u64)
    })
}

/// How a feed is fetched and what happens when it cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedSettings {
    /// Where and how often (`cache_duration_ms` is the poll interval); the
    /// shared schedule of remote JWKS ([`crate::keys::store::Meta`]) runs it.
    pub fetch: RemoteJwks,
    /// How long the feed may go unread before `fail_closed` applies.
    pub staleness_ms: u64,
    /// Past `staleness`: deny every token of the provider (`true`), or keep
    /// using the last good rules (`false`, the default).
    pub fail_closed: bool,
}

/// A provider's `revocation` settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationSettings {
    pub deny_list: Option<FeedSettings>,
    pub ssf: Option<ssf::SsfSettings>,
    /// Bounds of each feed's rule set.
    pub max_entries: usize,
    pub max_bytes: usize,
}

/// What one provider's requests check, in one VM: the rules each feed has
/// installed, and whether a `fail_closed` feed has gone stale.
#[derive(Clone, Debug, Default)]
pub struct ProviderRules {
    pub deny_list: Option<Rc<RuleSet>>,
    pub ssf: Option<Rc<RuleSet>>,
    /// A `fail_closed` feed has not been read for longer than its staleness.
    pub unavailable: bool,
}

impl ProviderRules {
    /// The token's verdict: `Revoked`, `RevocationUnavailable`, or Ok.
    pub fn check(&self, claims: &Map<String, Value>, now: u64) -> Result<(), AuthError> {
        if self.unavailable {
            return Err(AuthError::RevocationUnavailable);
        }
        let revoked = [&self.deny_list, &self.ssf]
            .into_iter()
            .flatten()
            .any(|set| set.revokes(claims, now));
        if revoked {
            Err(AuthError::Revoked)
        } else {
            Ok(())
        }
    }
}

/// The rules of every provider in one VM, indexed like `Config::providers`
/// (`None`: the provider has no revocation).
#[derive(Clone, Debug, Default)]
pub struct Revocations {
    pub providers: Vec<Option<ProviderRules>>,
}

impl Revocations {
    /// The verdict for provider `idx`'s verified token.
    pub fn check(
        &self,
        idx: usize,
        claims: &Map<String, Value>,
        now: u64,
    ) -> Result<(), AuthError> {
        match self.providers.get(idx) {
            Some(Some(rules)) => rules.check(claims, now),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
