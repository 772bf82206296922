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
