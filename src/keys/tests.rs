//! Each provider object carries its own metric ids: whatever holds a
//! provider counts under that provider's name, with no index into a
//! second collection.

use super::*;
use crate::authz::Mode;
use crate::error::AuthError;
use crate::metrics::{stat_name, KeySourceKind, Layout, Metrics};
use crate::testutil::hs_jwks;

type Recorder = crate::testutil::MetricRecorder;

/// The value of `name` with `labels` under the filter's prefix.
fn get(host: &Recorder, name: &str, labels: &[(&str, &str)]) -> i64 {
    host.get(&stat_name("jwt_filter", name, labels))
}

/// Provider `a` with local keys, `b` with a remote JWKS.
fn config() -> Config {
    let jwks = serde_json::to_string(&hs_jwks()).unwrap();
    let json = format!(
        r#"{{"providers":{{
            "a":{{"issuer":"iss-a","local_jwks":{{"inline_string":{jwks}}}}},
            "b":{{"issuer":"iss-b","remote_jwks":{{"http_uri":{{"uri":"http://idp.test/jwks",
                "cluster":"jwks","timeout":"1s"}}}}}}}},
           "rules":[{{"match":{{"prefix":"/"}}}}]}}"#
    );
    Config::parse(json.as_bytes()).unwrap()
}

fn layout(config: &Config) -> Layout<'_> {
    Layout {
        providers: config
            .providers
            .iter()
            .map(|p| {
                let source = match p.keys {
                    KeySource::Remote(_) => KeySourceKind::Remote,
                    _ => KeySourceKind::Local,
                };
                (p.name.as_str(), source)
            })
            .collect(),
        rules: vec![None],
        ..Layout::default()
    }
}

#[test]
fn each_provider_object_counts_under_its_own_name() {
    let config = config();
    let mut host = Recorder::default();
    let (metrics, ids) = Metrics::define(&mut host, "jwt_filter", &layout(&config));
    let providers = ProviderState::for_config(&config, ids);
    let (a, b) = match &providers[..] {
        [a, b] => (a, b),
        _ => panic!("one object per provider"),
    };
    assert!(!a.remote && b.remote);

    b.metrics.on_jwks_fetch(&host, true);
    b.metrics.on_jwks_fetch(&host, false);
    b.metrics.on_keys_changed(&host, 2, 1);
    b.metrics.record_jwks(&host, 2, 30, 0);
    a.metrics.record_jwks(&host, 1, 0, 0);
    metrics.on_allow(&host, [&a.metrics], None, Mode::Enforce);
    metrics.on_deny(&host, AuthError::Expired, Some(&b.metrics), None);

    let fetch = |r: &str| {
        get(
            &host,
            "jwks_fetches_total",
            &[("provider", "b"), ("result", r)],
        )
    };
    assert_eq!((fetch("success"), fetch("failure")), (1, 1));
    assert_eq!(get(&host, "jwks_keys_added_total", &[("provider", "b")]), 2);
    assert_eq!(
        get(&host, "jwks_keys_removed_total", &[("provider", "b")]),
        1
    );
    let gauge = |p: &str, s: &str, n: &str| get(&host, n, &[("provider", p), ("key_source", s)]);
    assert_eq!(gauge("a", "local", "jwks_keys"), 1);
    assert_eq!(gauge("b", "remote", "jwks_keys"), 2);
    assert_eq!(gauge("b", "remote", "jwks_age_seconds"), 30);
    let decided = |p: &str, d: &str| {
        get(
            &host,
            "provider_decisions_total",
            &[("provider", p), ("decision", d)],
        )
    };
    assert_eq!((decided("a", "allow"), decided("a", "deny")), (1, 0));
    assert_eq!((decided("b", "allow"), decided("b", "deny")), (0, 1));
    // Local keys are never fetched: no fetch counters for `a`.
    assert!(a.metrics.fetch_success.is_none() && a.metrics.keys_added.is_none());
}

#[test]
fn a_provider_without_ids_counts_nothing() {
    let config = config();
    let mut host = Recorder::default();
    let _ = Metrics::define(&mut host, "jwt_filter", &layout(&config));
    let providers = ProviderState::for_config(&config, Vec::new());
    assert_eq!(providers.len(), 2);
    for p in &providers {
        p.metrics.on_jwks_fetch(&host, true);
        p.metrics.record_jwks(&host, 3, 3, 0);
        assert!(p.metrics.allowed.is_none() && p.metrics.jwks_keys.is_none());
    }
    assert!(host.values.borrow().is_empty());
}
