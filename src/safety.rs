//! Setups the filter accepts but that are unsafe, found in a parsed
//! [`Config`]: one [`Warning`] per problem. Pure, so the filter logs the list
//! at configure time (one line each) and the `jwt-filter-check` tool prints
//! the same list. Keys that cannot be used safely at all are not here: the
//! JWKS parser refuses them ([`crate::jwks`]: `key_ops` without `verify`,
//! duplicate members, HMAC secrets under 16 bytes).

use std::fmt;

use crate::config::{Config, KeySource};
use crate::jwks::Alg;

/// One unsafe setup, with the JSON path of the field at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Output size of the hash behind an HMAC algorithm, in bytes.
fn hmac_output_len(alg: Alg) -> Option<usize> {
    match alg {
        Alg::HS256 => Some(32),
        Alg::HS384 => Some(48),
        Alg::HS512 => Some(64),
        _ => None,
    }
}

/// Every unsafe setup in `cfg`, in provider order.
pub fn warnings(cfg: &Config) -> Vec<Warning> {
    let mut out = Vec::new();
    for p in &cfg.providers {
        let path = format!("providers.{}", p.name);
        match &p.keys {
            KeySource::Remote(remote) => {
                if remote.uri.starts_with("http://") {
                    out.push(Warning {
                        path: format!("{path}.remote_jwks.http_uri.uri"),
                        message:
                            "the JWKS is downloaded over plain HTTP: whoever can alter it can \
                                  mint tokens (use https, or a cluster with TLS)"
                                .into(),
                    });
                }
            }
            KeySource::Local(set) => {
                for (i, key) in set.keys().iter().enumerate() {
                    let Some(len) = key.secret_len() else {
                        continue;
                    };
                    let short: Vec<String> = p
                        .allowed_algs
                        .iter()
                        .copied()
                        .filter(|a| key.fits(*a))
                        .filter_map(|a| hmac_output_len(a).filter(|h| len < *h).map(|h| (a, h)))
                        .map(|(a, h)| format!("{} needs {h}", a.name()))
                        .collect();
                    if short.is_empty() {
                        continue;
                    }
                    let who = match &key.kid {
                        Some(kid) => format!("key {kid:?}"),
                        None => format!("key #{i}"),
                    };
                    out.push(Warning {
                        path: format!("{path}.local_jwks.inline_string"),
                        message: format!(
                            "{who}: {len}-byte HMAC secret is shorter than the hash output \
                             ({}; RFC 7518 3.2): use a longer random secret, or pin the JWK's \
                             \"alg\"",
                            short.join(", ")
                        ),
                    });
                }
            }
        }
        if let Some(d) = &p.dpop {
            if d.replay == crate::dpop::ReplayScope::Worker {
                out.push(Warning {
                    path: format!("{path}.dpop.replay_cache"),
                    message: "a per-worker replay record misses a proof replayed to another                               worker: use it only with one Envoy worker (--concurrency 1)"
                        .into(),
                });
            }
            if p.forward {
                out.push(Warning {
                    path: format!("{path}.forward"),
                    message: "the DPoP-bound token goes upstream: a backend that accepts it                               as a bearer token makes the binding moot"
                        .into(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
