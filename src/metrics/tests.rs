use super::*;
use std::cell::RefCell;
use std::collections::HashMap;

#[derive(Default)]
struct Fake {
    names: Vec<(MetricKind, String)>,
    values: RefCell<HashMap<u32, i64>>,
    refuse: Option<String>,
}

impl MetricHost for Fake {
    fn define(&mut self, kind: MetricKind, name: &str) -> Option<u32> {
        if self.refuse.as_deref() == Some(name) {
            return None;
        }
        if let Some(i) = self.names.iter().position(|(_, n)| n == name) {
            return Some(i as u32);
        }
        self.names.push((kind, name.to_string()));
        Some(self.names.len() as u32 - 1)
    }
    fn increment(&self, id: u32, delta: i64) {
        *self.values.borrow_mut().entry(id).or_default() += delta;
    }
    fn record(&self, id: u32, value: u64) {
        self.values.borrow_mut().insert(id, value as i64);
    }
}

impl Fake {
    fn get(&self, name: &str) -> i64 {
        let id = self.names.iter().position(|(_, n)| n == name).unwrap() as u32;
        self.values.borrow().get(&id).copied().unwrap_or(0)
    }
}

#[test]
fn names_cover_envoy_reasons_report_and_providers() {
    let names = metric_names("jwt_filter", &["a", "b"]);
    let has = |n: &str| names.iter().any(|(_, x)| x == n);
    for n in [
        "jwt_filter.allowed",
        "jwt_filter.denied",
        "jwt_filter.cors_preflight_bypassed",
        "jwt_filter.jwks_fetch_success",
        "jwt_filter.jwks_fetch_failed",
        "jwt_filter.jwt_cache_hit",
        "jwt_filter.jwt_cache_miss",
        "jwt_filter.denied_missing",
        "jwt_filter.denied_expired",
        "jwt_filter.denied_insufficient_scope",
        "jwt_filter.denied_jwks_unavailable",
        "jwt_filter.denied_too_large",
        "jwt_filter.report_would_deny",
        "jwt_filter.report_would_deny_expired",
        "jwt_filter.provider.a.allowed",
        "jwt_filter.provider.b.denied",
    ] {
        assert!(has(n), "{n}");
    }
    let gauges: Vec<&String> = names
        .iter()
        .filter(|(k, _)| *k == MetricKind::Gauge)
        .map(|(_, n)| n)
        .collect();
    assert_eq!(
        gauges,
        [
            "jwt_filter.provider.a.jwks_keys",
            "jwt_filter.provider.a.jwks_age_seconds",
            "jwt_filter.provider.b.jwks_keys",
            "jwt_filter.provider.b.jwks_age_seconds"
        ]
    );
    // 7 + reasons + 1 + reasons + 2 providers * 4
    let reasons = crate::error::AuthError::ALL.len();
    assert_eq!(names.len(), 7 + reasons + 1 + reasons + 8);
    let unique: std::collections::HashSet<_> = names.iter().map(|(_, n)| n).collect();
    assert_eq!(unique.len(), names.len());
}

#[test]
fn define_matches_metric_names() {
    let mut host = Fake::default();
    let m = Metrics::define(&mut host, "edge", &["okta"]);
    assert!(m.failed.is_empty());
    assert_eq!(host.names, metric_names("edge", &["okta"]));
}

#[test]
fn prefix_and_provider_names_are_sanitized() {
    assert!(check_prefix("jwt_filter").is_ok());
    assert!(check_prefix("edge.jwt").is_ok());
    for bad in ["", ".x", "x.", "a..b", "a-b", "a b", &"x".repeat(65)] {
        assert!(check_prefix(bad).is_err(), "{bad}");
    }
    assert_eq!(
        provider_metric("p", "a.b c", "allowed"),
        "p.provider.a_b_c.allowed"
    );
}

#[test]
fn prometheus_rendering() {
    assert_eq!(
        prometheus_name("jwt_filter.provider.my-idp.allowed"),
        "jwt_filter_provider_my_idp_allowed"
    );
    assert_eq!(
        prometheus_name("jwt_filter.denied_expired"),
        "jwt_filter_denied_expired"
    );
}

#[test]
fn events_move_the_right_counters() {
    let mut host = Fake::default();
    let m = Metrics::define(&mut host, "jwt_filter", &["a", "b"]);
    m.on_allow(&host, &[0, 1]);
    m.on_allow(&host, &[]);
    m.on_deny(&host, AuthError::Expired, Some(1));
    m.on_deny(&host, AuthError::Missing, None);
    m.on_would_deny(&host, AuthError::InsufficientScope);
    m.on_cors_bypass(&host);
    m.on_jwks_fetch(&host, true);
    m.on_jwks_fetch(&host, false);
    m.on_jwks_fetch(&host, false);
    m.record_jwks(&host, 0, 3, 0);
    assert_eq!(host.get("jwt_filter.allowed"), 2);
    assert_eq!(host.get("jwt_filter.provider.a.allowed"), 1);
    assert_eq!(host.get("jwt_filter.provider.b.allowed"), 1);
    assert_eq!(host.get("jwt_filter.denied"), 2);
    assert_eq!(host.get("jwt_filter.denied_expired"), 1);
    assert_eq!(host.get("jwt_filter.denied_missing"), 1);
    assert_eq!(host.get("jwt_filter.provider.b.denied"), 1);
    assert_eq!(host.get("jwt_filter.provider.a.denied"), 0);
    assert_eq!(host.get("jwt_filter.report_would_deny"), 1);
    assert_eq!(
        host.get("jwt_filter.report_would_deny_insufficient_scope"),
        1
    );
    assert_eq!(host.get("jwt_filter.denied_insufficient_scope"), 0);
    assert_eq!(host.get("jwt_filter.cors_preflight_bypassed"), 1);
    assert_eq!(host.get("jwt_filter.provider.a.jwks_keys"), 3);
    assert_eq!(host.get("jwt_filter.jwks_fetch_success"), 1);
    assert_eq!(host.get("jwt_filter.jwks_fetch_failed"), 2);
}

#[test]
fn refused_definitions_are_reported_and_skipped() {
    let mut host = Fake {
        refuse: Some("jwt_filter.denied".into()),
        ..Fake::default()
    };
    let m = Metrics::define(&mut host, "jwt_filter", &[]);
    assert_eq!(m.failed, vec!["jwt_filter.denied".to_string()]);
    m.on_deny(&host, AuthError::Expired, None);
    assert_eq!(host.get("jwt_filter.denied_expired"), 1);
}
