use super::*;

fn remote() -> RemoteJwks {
    RemoteJwks {
        uri: "https://idp.test/jwks".into(),
        oidc_discovery: false,
        cluster: "idp".into(),
        authority: "idp.test".into(),
        path: "/jwks".into(),
        timeout_ms: 1_000,
        cache_duration_ms: 600_000,
        fast_listener: true,
        failed_refetch_ms: 1_000,
        num_retries: 3,
        base_interval_ms: 100,
        max_interval_ms: 250,
        min_refetch_ms: 30_000,
        max_stale_ms: 3_600_000,
        shared_key: "k".into(),
    }
}

const T: u64 = 1_700_000_000_000;

#[test]
fn meta_round_trips_and_rejects_garbage() {
    let m = Meta {
        version: 3,
        fetched_ms: T,
        refresh_ms: T + 5,
        failures: 2,
        retry_ms: 9,
        lease_owner: 7,
        lease_until_ms: 11,
        kid_refetch_ms: 13,
        attempts: 4,
    };
    assert_eq!(Meta::decode(m.encode().as_bytes()), Some(m));
    for bad in [
        "",
        "2 1 2 3 4 5 6 7 8 9",
        "1 1 2",
        "1 a b c d e f g h i",
        "\u{0}",
    ] {
        assert_eq!(Meta::decode(bad.as_bytes()), None, "{bad:?}");
    }
}

#[test]
fn first_fetch_then_refresh_schedule() {
    let r = remote();
    let m = Meta::default();
    assert!(m.fetch_due(T));
    assert!(!m.usable(&r, T));
    let leased = m.with_lease(&r, 1, T, false);
    assert!(leased.leased(T) && !leased.fetch_due(T));
    // A lease expires: another VM may take over if the holder died.
    assert!(!leased.leased(T + r.timeout_ms + 1_000));
    let ok = leased.after_success(&r, T, None);
    assert_eq!(ok.version, 1);
    assert_eq!(ok.refresh_ms, T + 600_000);
    assert!(!ok.fetch_due(T + 599_999));
    assert!(ok.fetch_due(T + 600_000));
    assert!(ok.usable(&r, T + 600_000 + r.max_stale_ms));
    assert!(!ok.usable(&r, T + 600_000 + r.max_stale_ms + 1));
}

#[test]
fn max_age_overrides_cache_duration_within_bounds() {
    let r = remote();
    let m = Meta::default();
    assert_eq!(m.after_success(&r, T, Some(5_000)).refresh_ms, T + 5_000);
    assert_eq!(
        m.after_success(&r, T, Some(0)).refresh_ms,
        T + MIN_MAX_AGE_MS
    );
    assert_eq!(
        m.after_success(&r, T, Some(u64::MAX)).refresh_ms,
        T + MAX_MAX_AGE_MS
    );
    assert_eq!(parse_max_age("public, max-age=300"), Some(300_000));
    assert_eq!(parse_max_age("MAX-AGE = \"7\""), Some(7_000));
    assert_eq!(parse_max_age("no-store"), None);
    assert_eq!(parse_max_age("max-age=abc"), None);
}

#[test]
fn failures_back_off_then_settle() {
    let r = remote();
    assert_eq!(backoff_ms(&r, 1), 100);
    assert_eq!(backoff_ms(&r, 2), 200);
    assert_eq!(backoff_ms(&r, 3), 250);
    assert_eq!(backoff_ms(&r, 4), 1_000);
    assert_eq!(backoff_ms(&r, u32::MAX), 1_000);
    let good = Meta::default().after_success(&r, T, None);
    let bad = good
        .with_lease(&r, 1, T + 600_000, false)
        .after_failure(&r, T + 600_000);
    assert_eq!(bad.failures, 1);
    assert_eq!(bad.version, good.version, "last good keys kept");
    assert!(bad.usable(&r, T + 600_001));
    assert!(!bad.fetch_due(T + 600_099));
    assert!(bad.fetch_due(T + 600_100));
    let recovered = bad.after_success(&r, T + 700_000, None);
    assert_eq!(recovered.failures, 0);
    assert_eq!(recovered.attempts, bad.attempts + 1);
}

#[test]
fn kid_refetch_is_rate_limited() {
    let r = remote();
    let m = Meta::default().after_success(&r, T, None);
    assert!(m.kid_refetch_allowed(&r, T));
    let m = m.with_lease(&r, 1, T, true).after_success(&r, T + 10, None);
    assert!(!m.kid_refetch_allowed(&r, T + 29_999));
    assert!(m.kid_refetch_allowed(&r, T + 30_000));
}

#[test]
fn responses_are_validated() {
    let jwks = crate::testutil::FIXTURE_JWKS.as_bytes();
    assert!(validate_response(Some("200"), jwks, &Alg::ALL).is_ok());
    assert!(validate_response(Some("500"), jwks, &Alg::ALL)
        .unwrap_err()
        .contains("500"));
    assert!(validate_response(None, jwks, &Alg::ALL).is_err());
    assert!(validate_response(Some("200"), b"<html>", &Alg::ALL).is_err());
    assert!(validate_response(Some("200"), br#"{"keys":[]}"#, &Alg::ALL).is_err());
    let big = vec![b' '; MAX_JWKS_BYTES + 1];
    assert!(validate_response(Some("200"), &big, &Alg::ALL)
        .unwrap_err()
        .contains("limit"));
    // Only an HMAC key, but only asymmetric algorithms allowed.
    let hs = crate::testutil::hs_jwks();
    assert!(validate_response(Some("200"), hs.as_bytes(), &[Alg::RS256]).is_err());
}

#[test]
fn discovery_documents() {
    let doc = br#"{"issuer":"https://idp.test","jwks_uri":"https://idp.test/keys"}"#;
    assert_eq!(
        discovered_jwks_uri(Some("200"), doc, Some("https://idp.test")).unwrap(),
        "https://idp.test/keys"
    );
    assert!(discovered_jwks_uri(Some("200"), doc, Some("https://other")).is_err());
    assert!(discovered_jwks_uri(Some("404"), doc, None).is_err());
    assert!(discovered_jwks_uri(None, doc, None).is_err());
    assert!(discovered_jwks_uri(Some("200"), b"nope", None).is_err());
    assert!(discovered_jwks_uri(Some("200"), br#"{"jwks_uri":5}"#, None).is_err());
    assert!(discovered_jwks_uri(Some("200"), br#"{"jwks_uri":"ftp://x/k"}"#, None).is_err());
}

#[test]
fn uris_split() {
    assert_eq!(
        split_uri("https://idp.example.com/.well-known/jwks.json").unwrap(),
        ("idp.example.com".into(), "/.well-known/jwks.json".into())
    );
    assert_eq!(
        split_uri("http://h:8080").unwrap(),
        ("h:8080".into(), "/".into())
    );
    assert_eq!(
        split_uri("http://h?x=1").unwrap(),
        ("h".into(), "/?x=1".into())
    );
    assert!(split_uri("ftp://h/x").is_err());
    assert!(split_uri("https:///x").is_err());
}
