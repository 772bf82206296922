//! The JSON form of a provider's `dpop` settings and their builder, which
//! reports every problem (with its JSON path) into the configuration's
//! diagnostics list.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::Deserialize;

use crate::crypto::jwks::Alg;
use crate::diag::{self, ConfigError, OneOf};

use super::{
    BindingMode, DpopPolicy, DpopSettings, NonceIssuer, ReplayScope, DEFAULT_MAX_AGE_SECS,
    DEFAULT_NONCE_LIFETIME_SECS, DEFAULT_PER_KEY_DIVISOR, DEFAULT_REPLAY_ENTRIES,
    MAX_REPLAY_ENTRIES, MIN_NONCE_SECRET_BYTES,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDpop {
    #[serde(default)]
    mode: Option<OneOf<BindingMode>>,
    #[serde(default)]
    algorithms: Option<Vec<OneOf<Alg>>>,
    #[serde(default, alias = "maxAge")]
    max_age: Option<String>,
    #[serde(default, alias = "publicBaseUrl")]
    public_base_url: Option<String>,
    #[serde(default, alias = "replayCache")]
    replay_cache: Option<OneOf<ReplayScope>>,
    #[serde(default, alias = "replayCacheSize")]
    replay_cache_size: Option<u32>,
    #[serde(default, alias = "replayCachePerKey")]
    replay_cache_per_key: Option<u32>,
    #[serde(default)]
    nonce: Option<RawNonce>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNonce {
    secret: String,
    #[serde(default)]
    lifetime: Option<String>,
}

/// A provider's `dpop` settings; `None` when off or on error.
#[inline(never)] // configuration time: keeps the caller's compiled size (V8 compile memory) down
pub(crate) fn settings(
    path: &str,
    raw: RawDpop,
    skew: Option<u32>,
    errors: &mut Vec<ConfigError>,
) -> Option<DpopSettings> {
    let mode = raw.mode.map_or(BindingMode::Required, |m| m.0);
    let replay = raw.replay_cache.map_or(ReplayScope::Shared, |r| r.0);
    if mode == BindingMode::Off {
        return None;
    }
    let algs = match raw.algorithms {
        None => Alg::ALL.iter().copied().filter(|a| !a.is_hmac()).collect(),
        Some(list) => {
            if list.is_empty() {
                diag::report(errors, format!("{path}.algorithms"), "list is empty");
            }
            let mut algs = Vec::new();
            for (i, OneOf(alg)) in list.into_iter().enumerate() {
                if alg.is_hmac() {
                    diag::report(
                        errors,
                        format!("{path}.algorithms[{i}]"),
                        "a DPoP proof is signed with an asymmetric key; HS* is not allowed",
                    );
                } else {
                    algs.push(alg);
                }
            }
            algs
        }
    };
    let max_age_ms = diag::duration(
        errors,
        &format!("{path}.max_age"),
        raw.max_age.as_deref(),
        DEFAULT_MAX_AGE_SECS * 1000,
        1000,
    );
    let public_base_url = raw.public_base_url.filter(|u| {
        let ok = (u.starts_with("https://") || u.starts_with("http://"))
            && u.split_once("://")
                .is_some_and(|(_, rest)| !rest.is_empty())
            && !u.contains(['?', '#', ' ']);
        if !ok {
            diag::report(
                errors,
                format!("{path}.public_base_url"),
                "must be http(s)://host[:port][/path], without query or fragment",
            );
        }
        ok
    });
    let capacity = match raw.replay_cache_size {
        None => DEFAULT_REPLAY_ENTRIES,
        Some(n) if n == 0 || n as usize > MAX_REPLAY_ENTRIES => {
            diag::report(
                errors,
                format!("{path}.replay_cache_size"),
                format!("between 1 and {}", MAX_REPLAY_ENTRIES),
            );
            DEFAULT_REPLAY_ENTRIES
        }
        Some(n) => n as usize,
    };
    let per_key = match raw.replay_cache_per_key {
        None => (capacity / DEFAULT_PER_KEY_DIVISOR).max(1),
        Some(n) if n == 0 || n as usize > capacity => {
            diag::report(
                errors,
                format!("{path}.replay_cache_per_key"),
                format!("between 1 and replay_cache_size ({capacity})"),
            );
            (capacity / DEFAULT_PER_KEY_DIVISOR).max(1)
        }
        Some(n) => n as usize,
    };
    let nonce = raw.nonce.and_then(|n| {
        let secret = STANDARD
            .decode(n.secret.trim())
            .or_else(|_| URL_SAFE_NO_PAD.decode(n.secret.trim()))
            .ok();
        let lifetime_ms = diag::duration(
            errors,
            &format!("{path}.nonce.lifetime"),
            n.lifetime.as_deref(),
            DEFAULT_NONCE_LIFETIME_SECS * 1000,
            1000,
        );
        match secret {
            Some(s) if s.len() >= MIN_NONCE_SECRET_BYTES => NonceIssuer::new(s, lifetime_ms / 1000),
            _ => {
                diag::report(
                    errors,
                    format!("{path}.nonce.secret"),
                    format!("base64 of at least {} random bytes", MIN_NONCE_SECRET_BYTES),
                );
                None
            }
        }
    });
    Some(DpopSettings {
        policy: DpopPolicy {
            mode,
            algs,
            max_age_secs: max_age_ms / 1000,
            future_skew_secs: u64::from(skew.unwrap_or(60)),
            nonce,
        },
        public_base_url,
        replay,
        replay_capacity: capacity,
        replay_per_key: per_key,
    })
}
