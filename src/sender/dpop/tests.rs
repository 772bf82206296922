use super::*;
use crate::sender::binding::*;
use crate::sender::replay::*;
use crate::token::native_verify;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::json;

const NOW: u64 = 1_800_000_000;
const HTU: &str = "https://api.example.com/orders";
const TOKEN: &str = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln";

fn signing_key(seed: u8) -> SigningKey {
    let mut bytes = [seed; 32];
    bytes[0] = 1;
    SigningKey::from_slice(&bytes).expect("test key")
}

fn public_jwk(sk: &SigningKey) -> Value {
    let point = sk.verifying_key().to_sec1_point(false);
    json!({
        "kty": "EC",
        "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(point.x().expect("x")),
        "y": URL_SAFE_NO_PAD.encode(point.y().expect("y")),
    })
}

fn sign(sk: &SigningKey, header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig: Signature = sk.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
}

fn header(sk: &SigningKey) -> Value {
    json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": public_jwk(sk)})
}

fn claims() -> Value {
    json!({
        "jti": "e1j3V_bKic8-LAEB",
        "htm": "GET",
        "htu": HTU,
        "iat": NOW,
        "ath": access_token_hash(TOKEN),
    })
}

fn policy() -> DpopPolicy {
    DpopPolicy {
        mode: BindingMode::Required,
        algs: vec![Alg::ES256, Alg::RS256, Alg::EdDSA],
        max_age_secs: 60,
        future_skew_secs: 5,
        nonce: None,
    }
}

fn ctx() -> ProofContext<'static> {
    ProofContext {
        method: "GET",
        htu: HTU,
        access_token: TOKEN,
        now: NOW,
    }
}

fn check(proof: &str) -> Result<CheckedProof, AuthError> {
    check_proof(proof, &policy(), &ctx(), native_verify)
}

fn with(mut v: Value, key: &str, value: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        if value.is_null() {
            o.remove(key);
        } else {
            o.insert(key.to_string(), value);
        }
    }
    v
}

#[test]
fn a_valid_proof_passes_and_names_its_key() {
    let sk = signing_key(7);
    let got = check(&sign(&sk, &header(&sk), &claims())).expect("valid proof");
    let jwk = public_jwk(&sk);
    assert_eq!(
        got.jkt,
        thumbprint(jwk.as_object().expect("object")).expect("jkt")
    );
    assert_eq!(got.jti, "e1j3V_bKic8-LAEB");
    assert_eq!(got.iat, NOW);
}

#[test]
fn rfc7638_thumbprint_example() {
    // RFC 7638 section 3.1: the RSA key and its thumbprint.
    let jwk = json!({
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29"
    });
    assert_eq!(
        thumbprint(jwk.as_object().expect("object")).as_deref(),
        Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
    );
}

#[test]
fn rfc9449_ath_example() {
    // RFC 9449 section 7.1: the access token and its `ath`.
    assert_eq!(
        access_token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
        "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
    );
}

#[test]
fn each_failed_check_has_its_own_reason() {
    let sk = signing_key(7);
    let other = signing_key(9);
    let h = header(&sk);
    let c = claims();
    let cases: Vec<(&str, String, AuthError)> = vec![
        ("not a JWT", "abc".into(), AuthError::DpopMalformed),
        (
            "typ JWT",
            sign(&sk, &with(h.clone(), "typ", json!("JWT")), &c),
            AuthError::DpopMalformed,
        ),
        (
            "no typ",
            sign(&sk, &with(h.clone(), "typ", Value::Null), &c),
            AuthError::DpopMalformed,
        ),
        (
            "no jwk",
            sign(&sk, &with(h.clone(), "jwk", Value::Null), &c),
            AuthError::DpopMalformed,
        ),
        (
            "private jwk",
            sign(
                &sk,
                &with(h.clone(), "jwk", with(public_jwk(&sk), "d", json!("AAAA"))),
                &c,
            ),
            AuthError::DpopMalformed,
        ),
        (
            "crit",
            sign(&sk, &with(h.clone(), "crit", json!(["x"])), &c),
            AuthError::DpopMalformed,
        ),
        (
            "alg none",
            sign(&sk, &with(h.clone(), "alg", json!("none")), &c),
            AuthError::DpopAlg,
        ),
        (
            "alg HS256",
            sign(&sk, &with(h.clone(), "alg", json!("HS256")), &c),
            AuthError::DpopAlg,
        ),
        (
            "alg ES384 on P-256",
            sign(&sk, &with(h.clone(), "alg", json!("ES384")), &c),
            AuthError::DpopAlg,
        ),
        (
            "no jti",
            sign(&sk, &h, &with(c.clone(), "jti", Value::Null)),
            AuthError::DpopMalformed,
        ),
        (
            "no htm",
            sign(&sk, &h, &with(c.clone(), "htm", Value::Null)),
            AuthError::DpopMalformed,
        ),
        (
            "no iat",
            sign(&sk, &h, &with(c.clone(), "iat", Value::Null)),
            AuthError::DpopMalformed,
        ),
        (
            "iat string",
            sign(&sk, &h, &with(c.clone(), "iat", json!("1"))),
            AuthError::DpopMalformed,
        ),
        (
            "POST",
            sign(&sk, &h, &with(c.clone(), "htm", json!("POST"))),
            AuthError::DpopMethod,
        ),
        (
            "get",
            sign(&sk, &h, &with(c.clone(), "htm", json!("get"))),
            AuthError::DpopMethod,
        ),
        (
            "other path",
            sign(
                &sk,
                &h,
                &with(c.clone(), "htu", json!("https://api.example.com/admin")),
            ),
            AuthError::DpopUri,
        ),
        (
            "other host",
            sign(
                &sk,
                &h,
                &with(c.clone(), "htu", json!("https://evil.example.com/orders")),
            ),
            AuthError::DpopUri,
        ),
        (
            "http",
            sign(
                &sk,
                &h,
                &with(c.clone(), "htu", json!("http://api.example.com/orders")),
            ),
            AuthError::DpopUri,
        ),
        (
            "too old",
            sign(&sk, &h, &with(c.clone(), "iat", json!(NOW - 61))),
            AuthError::DpopStale,
        ),
        (
            "future",
            sign(&sk, &h, &with(c.clone(), "iat", json!(NOW + 6))),
            AuthError::DpopStale,
        ),
        (
            "no ath",
            sign(&sk, &h, &with(c.clone(), "ath", Value::Null)),
            AuthError::DpopAth,
        ),
        (
            "ath of another token",
            sign(
                &sk,
                &h,
                &with(c.clone(), "ath", json!(access_token_hash("other"))),
            ),
            AuthError::DpopAth,
        ),
        (
            "signed by another key",
            sign(&other, &h, &c),
            AuthError::DpopSignature,
        ),
    ];
    for (name, proof, want) in cases {
        assert_eq!(check(&proof), Err(want), "{name}");
    }
    // Window edges are inclusive.
    assert!(check(&sign(&sk, &h, &with(c.clone(), "iat", json!(NOW - 60)))).is_ok());
    assert!(check(&sign(&sk, &h, &with(c, "iat", json!(NOW + 5)))).is_ok());
}

#[test]
fn a_header_array_or_oversized_proof_is_refused() {
    let arr = format!(
        "{}.{}.c2ln",
        URL_SAFE_NO_PAD.encode(r#"["dpop+jwt","ES256"]"#),
        URL_SAFE_NO_PAD.encode(claims().to_string())
    );
    assert_eq!(check(&arr), Err(AuthError::DpopMalformed));
    let big = "a".repeat(MAX_PROOF_BYTES + 1);
    assert_eq!(check(&big), Err(AuthError::DpopMalformed));
}

#[test]
fn htu_is_compared_after_normalisation_and_without_query() {
    let sk = signing_key(7);
    for htu in [
        "HTTPS://API.example.com/orders",
        "https://api.example.com:443/orders",
        "https://api.example.com/orders?x=1",
        "https://api.example.com/orders#frag",
        "https://api.example.com/%6Frders",
    ] {
        let proof = sign(&sk, &header(&sk), &with(claims(), "htu", json!(htu)));
        assert!(check(&proof).is_ok(), "{htu}");
    }
    for htu in [
        "https://api.example.com:8443/orders",
        "https://api.example.com/Orders",
        "https://api.example.com/orders/",
        "api.example.com/orders",
        "https://user@api.example.com/orders",
        "https://api.example.com/%zzorders",
    ] {
        let proof = sign(&sk, &header(&sk), &with(claims(), "htu", json!(htu)));
        assert_eq!(check(&proof), Err(AuthError::DpopUri), "{htu}");
    }
}

#[test]
fn target_uri_drops_query_and_prefers_the_public_base_url() {
    assert_eq!(
        target_uri("http", "10.0.0.1:8080", "/orders?access_token=x", None),
        "http://10.0.0.1:8080/orders"
    );
    assert_eq!(
        target_uri(
            "http",
            "10.0.0.1:8080",
            "/orders",
            Some("https://api.example.com/")
        ),
        "https://api.example.com/orders"
    );
}

#[test]
fn nonces_are_required_when_configured() {
    let sk = signing_key(7);
    let issuer = NonceIssuer::new(b"nonce-secret".to_vec(), 30).expect("issuer");
    let mut p = policy();
    p.nonce = Some(issuer.clone());
    let run = |c: Value| check_proof(&sign(&sk, &header(&sk), &c), &p, &ctx(), native_verify);
    assert_eq!(run(claims()), Err(AuthError::DpopNonce));
    assert!(run(with(claims(), "nonce", json!(issuer.issue(NOW)))).is_ok());
    // The window before is still good, two windows back is not.
    assert!(run(with(claims(), "nonce", json!(issuer.issue(NOW - 30)))).is_ok());
    assert_eq!(
        run(with(claims(), "nonce", json!(issuer.issue(NOW - 60)))),
        Err(AuthError::DpopNonce)
    );
    // A nonce from another secret, or garbage.
    let other = NonceIssuer::new(b"other".to_vec(), 30).expect("issuer");
    assert_eq!(
        run(with(claims(), "nonce", json!(other.issue(NOW)))),
        Err(AuthError::DpopNonce)
    );
    assert_eq!(
        run(with(claims(), "nonce", json!("!!"))),
        Err(AuthError::DpopNonce)
    );
    assert!(NonceIssuer::new(Vec::new(), 30).is_none());
    assert!(NonceIssuer::new(b"s".to_vec(), 0).is_none());
}

#[test]
fn binding_rules() {
    let bound = json!({"cnf": {"jkt": "abc"}});
    let bound = bound.as_object().expect("object");
    let unbound = Map::new();
    let proof = CheckedProof {
        jkt: "abc".into(),
        jti: "j".into(),
        iat: NOW,
    };
    let other = CheckedProof {
        jkt: "xyz".into(),
        ..proof.clone()
    };
    use BindingMode::*;
    use Scheme::*;
    let b = |c, m, s, p| check_dpop_binding(c, m, s, p);
    assert_eq!(b(bound, Off, Bearer, None), Ok(()));
    assert_eq!(b(bound, Optional, Dpop, Some(&proof)), Ok(()));
    assert_eq!(b(bound, Required, Dpop, Some(&proof)), Ok(()));
    assert_eq!(
        b(bound, Optional, Dpop, Some(&other)),
        Err(AuthError::DpopKeyMismatch)
    );
    assert_eq!(
        b(bound, Optional, Bearer, None),
        Err(AuthError::DpopRequired)
    );
    assert_eq!(b(bound, Required, Dpop, None), Err(AuthError::DpopMissing));
    assert_eq!(b(&unbound, Optional, Bearer, None), Ok(()));
    assert_eq!(
        b(&unbound, Required, Bearer, None),
        Err(AuthError::DpopRequired)
    );
    assert_eq!(
        b(&unbound, Optional, Dpop, Some(&proof)),
        Err(AuthError::DpopKeyMismatch)
    );
}

#[test]
fn certificate_binding_rules() {
    let digest = [0xabu8; 32];
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let x5t = URL_SAFE_NO_PAD.encode(digest);
    let bound = json!({"cnf": {"x5t#S256": x5t}});
    let bound = bound.as_object().expect("object");
    let unbound = Map::new();
    use BindingMode::*;
    assert_eq!(check_cert_binding(bound, Off, None), Ok(()));
    assert_eq!(check_cert_binding(bound, Optional, Some(&hex)), Ok(()));
    assert_eq!(
        check_cert_binding(bound, Required, Some(&hex.to_uppercase())),
        Ok(())
    );
    assert_eq!(
        check_cert_binding(bound, Optional, None),
        Err(AuthError::CertMissing)
    );
    assert_eq!(
        check_cert_binding(bound, Optional, Some("")),
        Err(AuthError::CertMissing)
    );
    assert_eq!(
        check_cert_binding(bound, Optional, Some(&"cd".repeat(32))),
        Err(AuthError::CertMismatch)
    );
    for wrong in [
        "zz".to_string(),
        hex[1..].to_string(),
        format!("{hex}ab"),
        hex[2..].to_string(),
        format!("+{}", &hex[1..]),
    ] {
        assert_eq!(
            check_cert_binding(bound, Optional, Some(&wrong)),
            Err(AuthError::CertMismatch),
            "{wrong}"
        );
    }
    assert_eq!(check_cert_binding(&unbound, Optional, Some(&hex)), Ok(()));
    assert_eq!(
        check_cert_binding(&unbound, Required, Some(&hex)),
        Err(AuthError::CertUnbound)
    );
}

#[test]
fn access_token_type() {
    assert!(is_access_token_type(Some("at+jwt")));
    assert!(is_access_token_type(Some("AT+JWT")));
    assert!(is_access_token_type(Some("application/at+jwt")));
    assert!(!is_access_token_type(Some("JWT")));
    assert!(!is_access_token_type(None));
}

#[test]
fn replay_cache_detects_reuse_expires_and_fails_closed_when_full() {
    let mut cache = ReplayCache::new(2, 2);
    let p = |jti: &str, jkt: &str| CheckedProof {
        jkt: jkt.into(),
        jti: jti.into(),
        iat: NOW,
    };
    assert_eq!(
        cache.check_and_record(&p("a", "k"), NOW + 60, NOW),
        ReplayVerdict::Fresh
    );
    assert_eq!(
        cache.check_and_record(&p("a", "k"), NOW + 60, NOW + 1),
        ReplayVerdict::Replayed
    );
    // The same jti under another key is another proof.
    assert_eq!(
        cache.check_and_record(&p("a", "k2"), NOW + 70, NOW + 1),
        ReplayVerdict::Fresh
    );
    assert_eq!(
        cache.check_and_record(&p("b", "k"), NOW + 60, NOW + 2),
        ReplayVerdict::Full
    );
    // Once the first window has closed its slot is free again.
    assert_eq!(
        cache.check_and_record(&p("b", "k"), NOW + 120, NOW + 60),
        ReplayVerdict::Fresh
    );
    assert_eq!(cache.len(), 2);
}

#[test]
fn dpop_challenge() {
    use crate::error::www_authenticate_dpop;
    assert_eq!(
        www_authenticate_dpop("https://a/b", AuthError::DpopAth, "ES256 RS256"),
        "DPoP realm=\"https://a/b\", error=\"invalid_dpop_proof\", error_description=\"DPoP proof ath mismatch\", algs=\"ES256 RS256\""
    );
    assert_eq!(
        www_authenticate_dpop("r", AuthError::DpopNonce, "ES256"),
        "DPoP realm=\"r\", error=\"use_dpop_nonce\", error_description=\"use the DPoP-Nonce header\", algs=\"ES256\""
    );
    assert_eq!(
        www_authenticate_dpop("r", AuthError::Missing, "ES256"),
        "DPoP realm=\"r\", algs=\"ES256\""
    );
    assert_eq!(
        www_authenticate_dpop("r", AuthError::Expired, "ES256"),
        "DPoP realm=\"r\", error=\"invalid_token\", error_description=\"token expired\", algs=\"ES256\""
    );
}

fn proof_of(jkt: &str, jti: &str) -> CheckedProof {
    CheckedProof {
        jkt: jkt.into(),
        jti: jti.into(),
        iat: NOW,
    }
}

/// An early proof whose window closes late must not keep later proofs whose
/// windows closed counted: expiry goes by time, not by arrival.
#[test]
fn worker_record_expires_by_time_not_by_arrival() {
    let mut cache = ReplayCache::new(2, 2);
    let fresh = ReplayVerdict::Fresh;
    assert_eq!(
        cache.check_and_record(&proof_of("k", "late"), NOW + 120, NOW),
        fresh
    );
    assert_eq!(
        cache.check_and_record(&proof_of("k2", "soon"), NOW + 10, NOW),
        fresh
    );
    // At NOW + 11 "soon" has expired: its slot is free although "late",
    // recorded before it, is still live.
    assert_eq!(
        cache.check_and_record(&proof_of("k3", "next"), NOW + 70, NOW + 11),
        fresh
    );
    assert_eq!(cache.len(), 2);
    assert_eq!(
        cache.check_and_record(&proof_of("k", "late"), NOW + 120, NOW + 12),
        ReplayVerdict::Replayed
    );
    assert_eq!(
        cache.check_and_record(&proof_of("k4", "x"), NOW + 90, NOW + 12),
        ReplayVerdict::Full
    );
}

/// One key holding its share of the record is refused alone; other keys'
/// proofs still pass, and the key gets room again as its entries expire.
#[test]
fn one_key_cannot_take_more_than_its_share_of_the_worker_record() {
    let mut cache = ReplayCache::new(10, 3);
    for i in 0..3 {
        let p = proof_of("greedy", &format!("j{i}"));
        assert_eq!(
            cache.check_and_record(&p, NOW + 60 + i, NOW),
            ReplayVerdict::Fresh
        );
    }
    assert_eq!(
        cache.check_and_record(&proof_of("greedy", "j3"), NOW + 60, NOW),
        ReplayVerdict::Full
    );
    for i in 0..7 {
        let p = proof_of(&format!("other{i}"), "j0");
        assert_eq!(
            cache.check_and_record(&p, NOW + 60, NOW),
            ReplayVerdict::Fresh
        );
    }
    assert_eq!(cache.len(), 10);
    // The greedy key's first entry expires at NOW + 60: one more slot.
    assert_eq!(
        cache.check_and_record(&proof_of("greedy", "j3"), NOW + 200, NOW + 60),
        ReplayVerdict::Fresh
    );
    assert_eq!(
        cache.check_and_record(&proof_of("greedy", "j4"), NOW + 200, NOW + 60),
        ReplayVerdict::Full
    );
}

#[test]
fn shared_bucket_records_refuses_replays_and_drops_expired_entries() {
    let (a, b, c) = (
        replay_id(&proof_of("k", "a")),
        replay_id(&proof_of("k", "b")),
        replay_id(&proof_of("k", "c")),
    );
    let key = key_tag(&proof_of("k", "a"));
    let e = |id, forget_at| SharedEntry { id, key, forget_at };
    let one = shared_record(&[], &e(&a, NOW + 60), NOW, 2, 2).expect("fresh");
    assert_eq!(one.len(), 32);
    assert_eq!(
        shared_record(&one, &e(&a, NOW + 60), NOW + 1, 2, 2),
        Err(ReplayVerdict::Replayed)
    );
    let two = shared_record(&one, &e(&b, NOW + 90), NOW + 1, 2, 2).expect("fresh");
    assert_eq!(
        shared_record(&two, &e(&c, NOW + 90), NOW + 2, 2, 2),
        Err(ReplayVerdict::Full)
    );
    // After a's time, its slot is reused and a may be recorded again.
    let three = shared_record(&two, &e(&c, NOW + 120), NOW + 60, 2, 2).expect("fresh");
    assert_eq!(three.len(), 64);
    assert!(shared_record(&three, &e(&a, NOW + 130), NOW + 61, 3, 3).is_ok());
    // Garbage from shared data (a torn or foreign value) is read as entries or ignored.
    assert!(shared_record(&[0xff; 7], &e(&a, NOW + 60), NOW, 2, 2).is_ok());
}

/// In a shared bucket too, one key holding its share is refused alone, and
/// an entry expired anywhere in the bucket frees its slot.
#[test]
fn shared_bucket_limits_each_key_and_expires_by_time() {
    let greedy = key_tag(&proof_of("greedy", "x"));
    let other = key_tag(&proof_of("other", "x"));
    let ids: Vec<[u8; 32]> = (0..5)
        .map(|i| replay_id(&proof_of("greedy", &format!("j{i}"))))
        .collect();
    let mut bucket = Vec::new();
    for (i, id) in ids.iter().take(2).enumerate() {
        let e = SharedEntry {
            id,
            key: greedy,
            forget_at: NOW + 100 - i as u64 * 90,
        };
        bucket = shared_record(&bucket, &e, NOW, 10, 2).expect("fresh");
    }
    let e = |id, key, forget_at| SharedEntry { id, key, forget_at };
    assert_eq!(
        shared_record(&bucket, &e(&ids[2], greedy, NOW + 60), NOW, 10, 2),
        Err(ReplayVerdict::Full)
    );
    let other_id = replay_id(&proof_of("other", "j0"));
    assert!(shared_record(&bucket, &e(&other_id, other, NOW + 60), NOW, 10, 2).is_ok());
    // The second entry (recorded last, expiring first at NOW + 10) is gone
    // at NOW + 11: the key has room again.
    assert!(shared_record(&bucket, &e(&ids[2], greedy, NOW + 70), NOW + 11, 10, 2).is_ok());
}

/// The shared record does not exist until it is prepared (at configure
/// time): a proof is then refused, never written without compare-and-swap.
/// Once prepared, a proof is fresh once; preparing again keeps the secret
/// and the entries.
#[test]
fn shared_record_refuses_proofs_until_prepared_and_survives_preparing_again() {
    let store = crate::fake_shared::FakeSharedData::default();
    let settings = ReplaySettings {
        scope: ReplayScope::Shared,
        capacity: 640,
        per_key: 64,
        max_age_secs: 60,
    };
    let p = proof_of("k", "a");
    assert_eq!(
        record_shared(&store, &p, NOW + 60, NOW, &settings),
        ReplayVerdict::Unavailable
    );
    assert_eq!(store.get(SHARED_SECRET_KEY), (None, None));
    assert!(prepare_shared(&store, &[7; 32]));
    let secret = store.get(SHARED_SECRET_KEY).0;
    assert_eq!(secret.as_deref(), Some(&[7u8; 32][..]));
    assert_eq!(
        record_shared(&store, &p, NOW + 60, NOW, &settings),
        ReplayVerdict::Fresh
    );
    // Another VM configuring later, with its own random: nothing changes.
    assert!(prepare_shared(&store, &[9; 32]));
    assert_eq!(store.get(SHARED_SECRET_KEY).0, secret);
    assert_eq!(
        record_shared(&store, &p, NOW + 60, NOW + 1, &settings),
        ReplayVerdict::Replayed
    );
    // A bucket gone missing (never created) refuses, it does not write.
    let other = crate::fake_shared::FakeSharedData::default();
    other.set(SHARED_SECRET_KEY, &[7; 32], None);
    assert_eq!(
        record_shared(&other, &p, NOW + 60, NOW, &settings),
        ReplayVerdict::Unavailable
    );
}

/// The bucket comes from a keyed hash under the record's secret: the same
/// proofs land in other buckets under another secret, so a client cannot
/// pick `jti`s that all fall into one bucket. Every bucket gets used.
#[test]
fn the_bucket_depends_on_the_secret_and_spreads() {
    let ids: Vec<[u8; 32]> = (0..2000)
        .map(|i| replay_id(&proof_of("k", &format!("j{i}"))))
        .collect();
    let buckets = |secret: &[u8]| -> Vec<usize> {
        ids.iter()
            .map(|id| shared_bucket(secret, id).expect("bucket"))
            .collect()
    };
    let one = buckets(&[1; 32]);
    let two = buckets(&[2; 32]);
    let same = one.iter().zip(&two).filter(|(a, b)| a == b).count();
    // Independent choices agree about 1 time in 64 (31 of 2000 expected).
    assert!(same < 100, "{same} of 2000 in the same bucket");
    let mut counts = [0usize; SHARED_BUCKETS];
    for b in one {
        counts[b] += 1;
    }
    assert!(counts.iter().all(|&c| c > 0), "{counts:?}");
    // The first byte of the replay id (which a client can compute) no
    // longer names the bucket.
    let first_byte = ids
        .iter()
        .zip(buckets(&[1; 32]))
        .filter(|(id, b)| usize::from(id[0]) % SHARED_BUCKETS == *b)
        .count();
    assert!(first_byte < 100, "{first_byte}");
}

#[test]
fn proof_iat_of_any_other_type_is_refused() {
    let sk = signing_key(7);
    let h = header(&sk);
    for value in [
        json!(NOW.to_string()),
        json!(""),
        json!(true),
        json!(false),
        json!([NOW]),
        json!({"v": NOW}),
        json!(-1),
        json!(NOW as f64 + 0.5),
    ] {
        let proof = sign(&sk, &h, &with(claims(), "iat", value.clone()));
        assert_eq!(check(&proof), Err(AuthError::DpopMalformed), "{value}");
    }
    // `null` written out (not absent): the claims are built by hand, since
    // `with` drops a member set to null.
    let mut c = claims();
    if let Some(o) = c.as_object_mut() {
        o.insert("iat".into(), Value::Null);
    }
    assert_eq!(check(&sign(&sk, &h, &c)), Err(AuthError::DpopMalformed));
}

#[test]
fn a_binding_that_is_present_but_not_a_string_is_refused() {
    use BindingMode::*;
    use Scheme::*;
    let proof = CheckedProof {
        jkt: "abc".into(),
        jti: "j".into(),
        iat: NOW,
    };
    for cnf in [
        json!({"jkt": 1}),
        json!({"jkt": null}),
        json!({"jkt": ["abc"]}),
        json!({"jkt": {"v": "abc"}}),
        json!({"jkt": true}),
        json!("abc"),
        json!(["abc"]),
        json!(null),
    ] {
        let claims = json!({ "cnf": cnf });
        let claims = claims.as_object().expect("object");
        for mode in [Optional, Required] {
            for (scheme, p) in [(Bearer, None), (Dpop, Some(&proof)), (Dpop, None)] {
                assert!(
                    check_dpop_binding(claims, mode, scheme, p).is_err(),
                    "{cnf} {mode:?} {scheme:?}"
                );
            }
        }
        // A provider that checks no binding does not look at it.
        assert_eq!(check_dpop_binding(claims, Off, Bearer, None), Ok(()));
    }
    let digest = [0xabu8; 32];
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    for cnf in [
        json!({"x5t#S256": 1}),
        json!({"x5t#S256": null}),
        json!({"x5t#S256": [URL_SAFE_NO_PAD.encode(digest)]}),
        json!({"x5t#S256": false}),
        json!(7),
    ] {
        let claims = json!({ "cnf": cnf });
        let claims = claims.as_object().expect("object");
        for mode in [Optional, Required] {
            for peer in [Some(hex.as_str()), None] {
                assert_eq!(
                    check_cert_binding(claims, mode, peer),
                    Err(AuthError::CertMismatch),
                    "{cnf} {mode:?}"
                );
            }
        }
        assert_eq!(check_cert_binding(claims, Off, Some(&hex)), Ok(()));
    }
}

/// Signs a proof from raw JSON texts (to write what `json!` cannot: a
/// member name given twice).
fn sign_raw(sk: &SigningKey, header: &str, claims: &str) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let sig: Signature = sk.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
}

#[test]
fn a_member_name_given_twice_refuses_the_proof() {
    let sk = signing_key(7);
    let h = header(&sk).to_string();
    let c = claims().to_string();
    // The proof as written passes: only the repeated member makes it fail.
    assert!(check(&sign_raw(&sk, &h, &c)).is_ok());
    let twice = |doc: &str, member: &str| format!("{{{member},{}", &doc[1..]);
    let cases = [
        // In the claims: the last `htm` would be GET (the request's method).
        (h.clone(), twice(&c, r#""htm":"POST""#)),
        (h.clone(), twice(&c, r#""jti":"other""#)),
        // In the header, and inside the header's jwk.
        (twice(&h, r#""typ":"dpop+jwt""#), c.clone()),
        (
            h.replacen(r#""kty":"EC""#, r#""kty":"EC","kty":"EC""#, 1),
            c.clone(),
        ),
    ];
    for (hd, cl) in cases {
        assert_eq!(
            check(&sign_raw(&sk, &hd, &cl)).err(),
            Some(AuthError::DpopMalformed),
            "header {hd} claims {cl}"
        );
    }
}

/// Tokens and proofs are split and decoded by the same reader: every
/// malformed compact form refuses both (an empty signature included).
#[test]
fn tokens_and_proofs_refuse_the_same_malformed_compact_forms() {
    let sk = signing_key(7);
    let proof = sign(&sk, &header(&sk), &claims());
    let token = crate::testutil::mint(r#"{"sub":"a","exp":4000000000}"#);
    assert!(check(&proof).is_ok());
    assert!(crate::token::parse(&token).is_ok());
    let variants = |text: &str| -> Vec<(String, String)> {
        let mut it = text.split('.');
        let (h, p, s) = (
            it.next().unwrap().to_string(),
            it.next().unwrap().to_string(),
            it.next().unwrap().to_string(),
        );
        vec![
            ("empty".into(), String::new()),
            ("one part".into(), h.clone()),
            ("two parts".into(), format!("{h}.{p}")),
            ("four parts".into(), format!("{h}.{p}.{s}.{s}")),
            ("four parts, last empty".into(), format!("{h}.{p}.{s}.")),
            ("empty header".into(), format!(".{p}.{s}")),
            ("empty payload".into(), format!("{h}..{s}")),
            ("empty signature".into(), format!("{h}.{p}.")),
            ("padded header".into(), format!("{h}=.{p}.{s}")),
            ("padded payload".into(), format!("{h}.{p}==.{s}")),
            ("padded signature".into(), format!("{h}.{p}.{s}=")),
            (
                "standard alphabet".into(),
                format!("{h}.{p}.{}", s.replace(['-', '_'], "+") + "+/"),
            ),
            ("whitespace".into(), format!("{h} .{p}.{s}")),
            ("dots only".into(), "..".into()),
        ]
    };
    for (what, bad) in variants(&proof) {
        assert!(check(&bad).is_err(), "proof: {what}");
    }
    for (what, bad) in variants(&token) {
        assert_eq!(
            crate::token::parse(&bad).err(),
            Some(AuthError::Malformed),
            "token: {what}"
        );
    }
    // The same texts through the one splitter and reader both use.
    for (what, bad) in variants(&proof) {
        let split = crate::token::split_compact(&bad);
        let decoded = split.and_then(|c| {
            Some((
                crate::token::json_object(c.header)?,
                crate::token::json_object(c.payload)?,
                crate::token::segment_bytes(c.signature).filter(|s| !s.is_empty())?,
            ))
        });
        assert!(decoded.is_none(), "{what}");
    }
}

/// A member name given twice in a token's header is refused as in a proof's
/// (the header is read by the same strict reader).
#[test]
fn a_token_header_with_a_member_given_twice_is_refused() {
    let secret = crate::testutil::hs_secret();
    let claims = r#"{"sub":"a","exp":4000000000}"#;
    let ok = crate::testutil::mint_raw(r#"{"alg":"HS256","kid":"hs-1"}"#, claims, &secret);
    assert!(crate::token::parse(&ok).is_ok());
    for header in [
        r#"{"alg":"HS256","kid":"hs-1","kid":"other"}"#,
        r#"{"alg":"HS256","kid":"hs-1","x5u":"a","x5u":"b"}"#,
        r#"{"alg":"HS256","kid":"hs-1","typ":"JWT","typ":"at+jwt"}"#,
    ] {
        let t = crate::testutil::mint_raw(header, claims, &secret);
        assert_eq!(
            crate::token::parse(&t).err(),
            Some(AuthError::Malformed),
            "{header}"
        );
    }
}

#[test]
fn the_configured_record_creates_shared_buckets_only_when_shared() {
    let settings = |scope| ReplaySettings {
        scope,
        capacity: 100,
        per_key: 10,
        max_age_secs: 60,
    };
    let store = crate::fake_shared::FakeSharedData::default();
    let (_, ready) = replay_record(Some(settings(ReplayScope::Worker)), &store, &[7; 32]);
    assert!(ready);
    assert_eq!(
        store.get(SHARED_SECRET_KEY).0,
        None,
        "nothing shared for a worker record"
    );
    let (_, ready) = replay_record(Some(settings(ReplayScope::Shared)), &store, &[7; 32]);
    assert!(ready);
    assert!(store.get(SHARED_SECRET_KEY).0.is_some());
    let (_, ready) = replay_record(
        None,
        &crate::fake_shared::FakeSharedData::default(),
        &[7; 32],
    );
    assert!(ready);
}

#[test]
fn the_dpop_location_is_authorization_with_the_dpop_scheme() {
    use crate::extract::Location;
    let header = |name: &str, prefix: &str| Location::Header {
        name: name.into(),
        prefix: prefix.into(),
    };
    assert!(is_dpop_location(&dpop_location()));
    assert!(is_dpop_location(&header("authorization", "dpop ")));
    assert!(is_dpop_location(&header("authorization", "DPOP ")));
    assert!(!is_dpop_location(&header("authorization", "Bearer ")));
    assert!(!is_dpop_location(&header("authorization", "DPoP")));
    assert!(!is_dpop_location(&header("authorization", "")));
    assert!(!is_dpop_location(&header("x-token", "DPoP ")));
    assert!(!is_dpop_location(&Location::Param("authorization".into())));
    assert!(!is_dpop_location(&Location::Cookie("DPoP ".into())));
}
