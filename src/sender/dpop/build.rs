//! The JSON form of a provider's `dpop` settings and their builder, which
//! reports every problem (with its JSON path) into the configuration's
//! diagnostics list.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::Value;

use crate::crypto::jwks::Alg;
use crate::diag::{self, ConfigError, OneOf};
use crate::json_read::{self as read, Obj, Read};

use super::{
    BindingMode, DpopPolicy, DpopSettings, NonceIssuer, ReplayScope, DEFAULT_MAX_AGE_SECS,
    DEFAULT_NONCE_LIFETIME_SECS, DEFAULT_PER_KEY_DIVISOR, DEFAULT_REPLAY_ENTRIES,
    MAX_REPLAY_ENTRIES, MIN_NONCE_SECRET_BYTES,
};

#[derive(Default)]
pub(crate) struct RawDpop {
    mode: Option<OneOf<BindingMode>>,
    algorithms: Option<Vec<OneOf<Alg>>>,
    max_age: Option<String>,
    public_base_url: Option<String>,
    replay_cache: Option<OneOf<ReplayScope>>,
    replay_cache_size: Option<u32>,
    replay_cache_per_key: Option<u32>,
    nonce: Option<RawNonce>,
}

struct RawNonce {
    secret: String,
    lifetime: Option<String>,
}

const DPOP_FIELDS: &[&str] = &[
    "mode",
    "algorithms",
    "max_age",
    "public_base_url",
    "replay_cache",
    "replay_cache_size",
    "replay_cache_per_key",
    "nonce",
];

impl RawDpop {
    /// A provider's `dpop` as written, at `path`.
    // Configuration time: one copy, called from its readers; filled field
    // by field, so an error drops `r` once (not each field read so far).
    #[inline(never)]
    #[allow(clippy::field_reassign_with_default)]
    pub(crate) fn read(v: &Value, path: &str) -> Read<Self> {
        let o = Obj::new(v, path, DPOP_FIELDS)?;
        let mut r = RawDpop::default();
        r.mode = o.opt("mode", BindingMode::read)?;
        r.algorithms = o.opt("algorithms", |v, p| read::list(v, p, Alg::read))?;
        r.max_age = o.opt("max_age", read::string)?;
        r.public_base_url = o.opt("public_base_url", read::string)?;
        r.replay_cache = o.opt("replay_cache", ReplayScope::read)?;
        r.replay_cache_size = o.opt("replay_cache_size", read::u32)?;
        r.replay_cache_per_key = o.opt("replay_cache_per_key", read::u32)?;
        r.nonce = o.opt("nonce", RawNonce::read)?;
        Ok(r)
    }
}

impl RawNonce {
    #[inline(never)] // configuration time: one copy, called from its readers
    fn read(v: &Value, path: &str) -> Read<Self> {
        let o = Obj::new(v, path, &["secret", "lifetime"])?;
        Ok(RawNonce {
            secret: o.req("secret", read::string)?,
            lifetime: o.opt("lifetime", read::string)?,
        })
    }
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
