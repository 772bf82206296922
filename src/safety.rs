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
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(provider: serde_json::Value) -> Config {
        let doc = json!({"providers": {"p": provider},
                         "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}]});
        Config::parse(doc.to_string().as_bytes()).unwrap()
    }

    fn oct(secret: &[u8], alg: Option<&str>) -> serde_json::Value {
        let mut k = json!({"kty": "oct", "kid": "hs", "k": crate::testutil::b64(secret)});
        if let Some(a) = alg {
            k["alg"] = json!(a);
        }
        json!({"issuer": "i", "local_jwks": {"inline_string": json!({"keys": [k]}).to_string()}})
    }

    #[test]
    fn plain_http_jwks() {
        let remote = |uri: &str| {
            cfg(json!({"issuer": "i", "remote_jwks": {"http_uri": {"uri": uri, "cluster": "c"}}}))
        };
        let w = warnings(&remote("http://idp/jwks"));
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].path, "providers.p.remote_jwks.http_uri.uri");
        assert!(w[0].to_string().contains("plain HTTP"));
        assert!(warnings(&remote("https://idp/jwks")).is_empty());
    }

    #[test]
    fn short_hmac_secrets() {
        let w = warnings(&cfg(oct(&[7u8; 16], None)));
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].path, "providers.p.local_jwks.inline_string");
        assert!(w[0].message.contains("16-byte"), "{}", w[0].message);
        assert!(w[0].message.contains("HS256 needs 32"));
        assert!(w[0].message.contains("\"hs\""));
        assert!(warnings(&cfg(oct(&[7u8; 32], Some("HS256")))).is_empty());
        assert!(warnings(&cfg(oct(&[7u8; 64], None))).is_empty());
        let w = warnings(&cfg(oct(&[7u8; 48], Some("HS512"))));
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn dpop_replay_per_worker_and_forwarded_bound_tokens() {
        let with = |dpop: serde_json::Value, forward: bool| {
            let mut p = oct(&[7u8; 64], Some("HS256"));
            p["dpop"] = dpop;
            p["forward"] = json!(forward);
            warnings(&cfg(p))
        };
        assert!(with(json!({}), false).is_empty());
        let w = with(json!({"replay_cache": "worker"}), true);
        let paths: Vec<&str> = w.iter().map(|w| w.path.as_str()).collect();
        assert_eq!(
            paths,
            ["providers.p.dpop.replay_cache", "providers.p.forward"]
        );
    }
}
