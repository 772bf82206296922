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
    let ok = leased.after_success(&r, T, None, Schedule::Fixed, 0);
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
    assert_eq!(
        m.after_success(&r, T, Some(5_000), Schedule::Fixed, 0)
            .refresh_ms,
        T + 5_000
    );
    assert_eq!(
        m.after_success(&r, T, Some(0), Schedule::Fixed, 0)
            .refresh_ms,
        T + MIN_MAX_AGE_MS
    );
    assert_eq!(
        m.after_success(&r, T, Some(u64::MAX), Schedule::Fixed, 0)
            .refresh_ms,
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
    let good = Meta::default().after_success(&r, T, None, Schedule::Fixed, 0);
    let bad = good.with_lease(&r, 1, T + 600_000, false).after_failure(
        &r,
        T + 600_000,
        None,
        Schedule::Fixed,
        0,
    );
    assert_eq!(bad.failures, 1);
    assert_eq!(bad.version, good.version, "last good keys kept");
    assert!(bad.usable(&r, T + 600_001));
    assert!(!bad.fetch_due(T + 600_099));
    assert!(bad.fetch_due(T + 600_100));
    let recovered = bad.after_success(&r, T + 700_000, None, Schedule::Fixed, 0);
    assert_eq!(recovered.failures, 0);
    assert_eq!(recovered.attempts, bad.attempts + 1);
}

#[test]
fn kid_refetch_is_rate_limited() {
    let r = remote();
    let m = Meta::default().after_success(&r, T, None, Schedule::Fixed, 0);
    assert!(m.kid_refetch_allowed(&r, T, Schedule::Fixed));
    let m = m
        .with_lease(&r, 1, T, true)
        .after_success(&r, T + 10, None, Schedule::Fixed, 0);
    assert!(!m.kid_refetch_allowed(&r, T + 29_999, Schedule::Fixed));
    assert!(m.kid_refetch_allowed(&r, T + 30_000, Schedule::Fixed));
}

/// Refreshes spread over a window that ends at the cache duration: the last
/// tenth after an on-time refresh, all but the first tenth after a first
/// fetch, the last half after a refetch or a recovery; the draws cover the
/// window.
#[test]
fn spread_refreshes_stay_within_the_cache_window() {
    let r = remote(); // cache_duration 600 s
    let first = |random| {
        Meta::default()
            .after_success(&r, T, None, Schedule::Spread, random)
            .refresh_ms
    };
    assert_eq!(first(0), T + 600_000);
    assert_eq!(first(540_000), T + 60_000);
    assert_eq!(first(540_001), T + 600_000, "wraps within the window");
    let draws: Vec<u64> = (0..2_000).map(|i| first(mix(7, i)) - T).collect();
    assert!(draws.iter().all(|d| (60_000..=600_000).contains(d)));
    let low = draws.iter().filter(|d| **d < 330_000).count();
    assert!((800..1_200).contains(&low), "not uniform: {low}");

    // On time, from a proxy on its own schedule: the last tenth.
    let good = Meta::default().after_success(&r, T, None, Schedule::Fixed, 0);
    let on_time = |random| {
        good.after_success(&r, T + 600_000, None, Schedule::Spread, random)
            .refresh_ms
            - (T + 600_000)
    };
    assert_eq!(on_time(0), 600_000);
    assert_eq!(on_time(60_000), 540_000);
    assert_eq!(on_time(60_001), 600_000);
    // An unknown-kid refetch (before the refresh was due) and a recovery
    // after failures are spread over the last half of the window: spread
    // again, but clear of the refetches other proxies may still be making.
    let early = |random| {
        good.after_success(&r, T + 100_000, None, Schedule::Spread, random)
            .refresh_ms
            - (T + 100_000)
    };
    assert_eq!(early(0), 600_000);
    assert_eq!(early(300_000), 300_000);
    assert_eq!(early(300_001), 600_000, "wraps within the last half");
    let failed = good.after_failure(&r, T + 600_000, None, Schedule::Fixed, 0);
    let back = |random| {
        failed
            .after_success(&r, T + 700_000, None, Schedule::Spread, random)
            .refresh_ms
            - (T + 700_000)
    };
    assert_eq!(back(150_000), 450_000);
    let draws: Vec<u64> = (0..2_000).map(|i| back(mix(9, i))).collect();
    assert!(draws.iter().all(|d| (300_000..=600_000).contains(d)));
    let low = draws.iter().filter(|d| **d < 450_000).count();
    assert!((800..1_200).contains(&low), "not uniform: {low}");
    // A max-age period is spread the same way; Fixed never is.
    let short = Meta::default().after_success(&r, T, Some(10_000), Schedule::Spread, 5_000);
    assert_eq!(short.refresh_ms, T + 5_000);
    assert_eq!(
        Meta::default()
            .after_success(&r, T, None, Schedule::Fixed, 12_345)
            .refresh_ms,
        T + 600_000
    );
}

/// Back-off under `Spread`: between half and all of the nominal delay; past
/// `num_retries` it keeps doubling from `failed_refetch_duration` up to
/// `MAX_STALE_RETRY_MS` while the last good keys are usable, and stays at
/// `failed_refetch_duration` when there are none.
#[test]
fn spread_back_off_is_jittered_and_grows_while_keys_are_stale() {
    let r = remote(); // base 100 ms, max 250 ms, 3 retries, then 1 s
    let good = Meta::default().after_success(&r, T, None, Schedule::Fixed, 0);
    let now = T + 600_000;
    let fail_n = |m: Meta, n: u32, random: u64| {
        (0..n).fold(m, |m, _| {
            m.after_failure(&r, now, None, Schedule::Spread, random)
        })
    };
    // random 0: half the nominal delay; random = half + 1 wraps to half.
    assert_eq!(fail_n(good, 1, 0).retry_ms, now + 50);
    assert_eq!(fail_n(good, 1, 50).retry_ms, now + 100);
    assert_eq!(fail_n(good, 1, 51).retry_ms, now + 50);
    assert_eq!(fail_n(good, 3, 125).retry_ms, now + 250);
    // Stale keys in use: 1 s, 2 s, 4 s ... capped at 60 s.
    assert_eq!(fail_n(good, 4, 500).retry_ms, now + 1_000);
    assert_eq!(fail_n(good, 5, 1_000).retry_ms, now + 2_000);
    assert_eq!(fail_n(good, 6, 2_000).retry_ms, now + 4_000);
    assert_eq!(fail_n(good, 20, 30_000).retry_ms, now + 60_000);
    assert_eq!(fail_n(good, 20, 0).retry_ms, now + 30_000);
    // No keys yet: every failed_refetch_duration (jittered), to get keys soon.
    assert_eq!(fail_n(Meta::default(), 20, 500).retry_ms, now + 1_000);
    // Keys past max_stale count as none.
    let late = T + 600_000 + r.max_stale_ms + 1;
    let stale = (0..20).fold(good, |m, _| {
        m.after_failure(&r, late, None, Schedule::Spread, 500)
    });
    assert_eq!(stale.retry_ms, late + 1_000);
    // Fixed: exactly the nominal delays.
    assert_eq!(
        (0..20)
            .fold(good, |m, _| m.after_failure(
                &r,
                now,
                None,
                Schedule::Fixed,
                77
            ))
            .retry_ms,
        now + 1_000
    );
}

/// `Retry-After` (429/503) sets the earliest retry (plus up to half of it
/// again), capped at an hour; unknown-kid refetches wait for it too.
#[test]
fn retry_after_is_honoured() {
    let r = remote();
    let good = Meta::default().after_success(&r, T, None, Schedule::Fixed, 0);
    let now = T + 600_000;
    let ra = |ms, random| {
        good.after_failure(&r, now, Some(ms), Schedule::Spread, random)
            .retry_ms
            - now
    };
    assert_eq!(ra(30_000, 0), 30_000);
    assert_eq!(ra(30_000, 15_000 << 32), 45_000);
    assert_eq!(ra(30_000, 15_001 << 32), 30_000);
    assert_eq!(ra(u64::MAX, 0), MAX_RETRY_AFTER_MS);
    // Shorter than the back-off: the back-off wins.
    assert_eq!(ra(10, 0), 50);
    // After many failures with stale keys in use, the server's time rather
    // than the grown back-off (which would be 30..60 s here).
    let many = (0..10).fold(good, |m, _| {
        m.after_failure(&r, now, None, Schedule::Spread, 0)
    });
    let after = many.after_failure(&r, now, Some(10_000), Schedule::Spread, 0);
    assert_eq!(after.retry_ms, now + 10_000);
    // Fixed ignores it.
    let fixed = good.after_failure(&r, now, Some(30_000), Schedule::Fixed, 0);
    assert_eq!(fixed.retry_ms, now + 100);
    // An unknown kid waits for the retry time under Spread only.
    let throttled = good.after_failure(&r, now, Some(30_000), Schedule::Spread, 0);
    assert!(!throttled.kid_refetch_allowed(&r, now + 29_999, Schedule::Spread));
    assert!(throttled.kid_refetch_allowed(&r, now + 30_000, Schedule::Spread));
    assert!(throttled.kid_refetch_allowed(&r, now + 1, Schedule::Fixed));
    assert!(!throttled.fetch_due(now + 29_999));
    assert!(throttled.fetch_due(now + 30_000));
}

#[test]
fn retry_after_values() {
    assert_eq!(parse_retry_after("120", T), Some(120_000));
    assert_eq!(parse_retry_after(" 0 ", T), Some(0));
    // 1_700_000_000 s is Tue, 14 Nov 2023 22:13:20 GMT.
    assert_eq!(
        parse_retry_after("Tue, 14 Nov 2023 22:13:50 GMT", T),
        Some(30_000)
    );
    assert_eq!(
        parse_retry_after("Tue, 14 Nov 2023 22:13:00 GMT", T),
        Some(0)
    );
    assert_eq!(parse_retry_after("soon", T), None);
    assert_eq!(parse_retry_after("-5", T), None);
    assert!(is_throttled(Some("429")) && is_throttled(Some("503")));
    assert!(!is_throttled(Some("500")) && !is_throttled(None));
}

#[test]
fn mix_is_deterministic_and_spread() {
    assert_eq!(mix(1, 2), mix(1, 2));
    assert_ne!(mix(1, 2), mix(1, 3));
    assert_ne!(mix(1, 2), mix(2, 2));
    let high = (0..1_000).filter(|i| mix(42, *i) >> 63 == 1).count();
    assert!((400..600).contains(&high), "{high}");
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
    // A member name given twice refuses the document, at any depth.
    let twice = br#"{"issuer":"https://idp.test","jwks_uri":"https://evil.test/keys","jwks_uri":"https://idp.test/keys"}"#;
    assert!(discovered_jwks_uri(Some("200"), twice, Some("https://idp.test")).is_err());
    let nested = br#"{"issuer":"https://idp.test","jwks_uri":"https://idp.test/keys","mtls":{"a":"x","a":"y"}}"#;
    assert!(discovered_jwks_uri(Some("200"), nested, Some("https://idp.test")).is_err());
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
