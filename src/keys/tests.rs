//! Each provider object carries its own metric ids: whatever holds a
//! provider counts under that provider's name, with no index into a
//! second collection.

use std::cell::RefCell;
use std::collections::HashMap;

use super::*;
use crate::authz::Mode;
use crate::error::AuthError;
use crate::metrics::{stat_name, KeySourceKind, Layout, MetricHost, MetricKind, Metrics};
use crate::testutil::hs_jwks;

#[derive(Default)]
struct Recorder {
    names: Vec<String>,
    values: RefCell<HashMap<u32, i64>>,
}

impl MetricHost for Recorder {
    fn define(&mut self, _kind: MetricKind, name: &str) -> Option<u32> {
        if let Some(i) = self.names.iter().position(|n| n == name) {
            return u32::try_from(i).ok();
        }
        self.names.push(name.to_string());
        u32::try_from(self.names.len() - 1).ok()
    }
    fn increment(&self, id: u32, delta: i64) {
        *self.values.borrow_mut().entry(id).or_default() += delta;
    }
    fn record(&self, id: u32, value: u64) {
        self.values.borrow_mut().insert(id, value as i64);
    }
}

impl Recorder {
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> i64 {
        let full = stat_name("jwt_filter", name, labels);
        let id = self.names.iter().position(|n| *n == full);
        let id = id.unwrap_or_else(|| panic!("{full} not defined"));
        self.values.borrow().get(&(id as u32)).copied().unwrap_or(0)
    }
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
    let providers = ProviderKeys::for_config(&config, ids);
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

    let fetch = |r: &str| host.get("jwks_fetches_total", &[("provider", "b"), ("result", r)]);
    assert_eq!((fetch("success"), fetch("failure")), (1, 1));
    assert_eq!(host.get("jwks_keys_added_total", &[("provider", "b")]), 2);
    assert_eq!(host.get("jwks_keys_removed_total", &[("provider", "b")]), 1);
    let gauge = |p: &str, s: &str, n: &str| host.get(n, &[("provider", p), ("key_source", s)]);
    assert_eq!(gauge("a", "local", "jwks_keys"), 1);
    assert_eq!(gauge("b", "remote", "jwks_keys"), 2);
    assert_eq!(gauge("b", "remote", "jwks_age_seconds"), 30);
    let decided = |p: &str, d: &str| {
        host.get(
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
    let providers = ProviderKeys::for_config(&config, Vec::new());
    assert_eq!(providers.len(), 2);
    for p in &providers {
        p.metrics.on_jwks_fetch(&host, true);
        p.metrics.record_jwks(&host, 3, 3, 0);
        assert!(p.metrics.allowed.is_none() && p.metrics.jwks_keys.is_none());
    }
    assert!(host.values.borrow().is_empty());
}
