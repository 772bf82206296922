//! What one provider has in one VM: its keys as the request path sees them,
//! its verified-token cache, its metric ids, and the
//! fetch state the remote-key lifecycle ([`crate::keys::remote`]) keeps
//! beside them. One object per provider, indexed like `Config::providers`;
//! the policy reads it, the lifecycle writes it, and both count through its
//! metric ids.

pub mod history;
pub mod remote;
pub mod store;

use std::cell::RefCell;
use std::rc::Rc;

use crate::config::{Config, KeySource};
use crate::crypto::jwks::KeySet;
use crate::metrics::ProviderIds;
use crate::token_cache::{self, TokenCache};

/// What a remote-JWKS provider has right now (ignored for local keys).
#[derive(Clone, Debug, Default)]
pub enum RemoteKeys {
    Ready(Rc<KeySet>),
    /// Never fetched yet; the first fetch is under way.
    #[default]
    Pending,
    /// Fetching failed and no usable (non-stale) keys are left.
    Unavailable,
}

/// Why a request could be worth parking until a JWKS fetch completes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// The provider's keys have not been fetched yet.
    FirstFetch,
    /// The token's `kid` is not in the provider's current key set.
    UnknownKid,
}

/// What an in-flight call fetches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchKind {
    /// The OpenID discovery document (for its `jwks_uri`).
    Discovery,
    /// The JWKS itself.
    Jwks,
}

/// One provider's state in one VM.
pub struct ProviderState {
    /// Fetched keys (remote providers; `Pending` and unused for local keys).
    pub keys: RemoteKeys,
    /// Whether the keys come from a remote JWKS.
    pub remote: bool,
    /// Verified tokens, bound to the key set that verified them.
    pub cache: RefCell<TokenCache>,
    /// Shared-record version of the keys in `keys` (0: none installed).
    pub installed: u64,
    /// Calls this VM has in flight for the provider: (host token, kind).
    pub in_flight: Vec<(u32, FetchKind)>,
    /// This provider's metric ids (and the age of its oldest key).
    pub metrics: ProviderIds,
}

impl ProviderState {
    pub fn new(remote: bool, cache_entries: usize) -> Self {
        ProviderState {
            keys: RemoteKeys::Pending,
            remote,
            cache: RefCell::new(TokenCache::new(cache_entries, token_cache::MAX_BYTES)),
            installed: 0,
            in_flight: Vec::new(),
            metrics: ProviderIds::default(),
        }
    }

    /// The same, counting through `metrics`.
    pub fn with_metrics(mut self, metrics: ProviderIds) -> Self {
        self.metrics = metrics;
        self
    }

    /// One per configured provider, caches sized by `jwt_cache_config`;
    /// `metrics`: each provider's ids, indexed like `Config::providers`
    /// (from [`crate::metrics::Metrics::define`]; a provider without ids
    /// counts nothing).
    pub fn for_config(config: &Config, metrics: Vec<ProviderIds>) -> Vec<ProviderState> {
        let mut metrics = metrics.into_iter();
        config
            .providers
            .iter()
            .map(|p| {
                ProviderState::new(matches!(p.keys, KeySource::Remote(_)), p.jwt_cache_size)
                    .with_metrics(metrics.next().unwrap_or_default())
            })
            .collect()
    }

    /// Remote keys not fetched yet.
    pub fn pending(&self) -> bool {
        self.remote && matches!(self.keys, RemoteKeys::Pending)
    }
}

#[cfg(test)]
mod tests;
