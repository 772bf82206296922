use super::*;

type Fake = crate::testutil::MetricRecorder;

fn layout() -> Layout<'static> {
    Layout {
        providers: vec![("a", KeySourceKind::Local), ("b", KeySourceKind::Remote)],
        rules: vec![
            None,
            Some(("api", Mode::Enforce)),
            Some(("shadow", Mode::Report)),
        ],
        ..Layout::default()
    }
}

fn decisions(decision: &str, reason: &str, mode: &str) -> String {
    format!(
        "jwt_filter.decision=.={decision};.;reason=.={reason};.;mode=.={mode};.;decisions_total"
    )
}

#[test]
fn stat_names_carry_labels_in_istio_form() {
    assert_eq!(
        stat_name(
            "jwt_filter",
            "decisions_total",
            &[("decision", "deny"), ("reason", "expired")]
        ),
        "jwt_filter.decision=.=deny;.;reason=.=expired;.;decisions_total"
    );
    assert_eq!(stat_name("edge.jwt", "x_total", &[]), "edge.jwt.x_total");
    // A value cannot end its segment, add a level, or grow without bound.
    assert_eq!(label_value("a.b;.;c=d é"), "a_b___c_d__");
    assert_eq!(label_value(&"x".repeat(100)).len(), MAX_LABEL_VALUE);
    assert_eq!(stats_tag_regex("reason"), r"(reason=\.=(.*?);\.;)");
}

#[test]
fn no_label_key_is_a_suffix_of_another() {
    // The stats_tags regexes are unanchored: `(mode=\.=...)` would also
    // match inside `xmode=.=`.
    for a in LABELS {
        for b in LABELS {
            assert!(a == b || !b.ends_with(a), "{a} / {b}");
        }
    }
}

#[test]
fn names_cover_every_reason_mode_provider_and_named_rule() {
    let names = metric_names("jwt_filter", &layout());
    let has = |n: &str| names.iter().any(|(_, x)| x == n);
    assert!(has(&decisions("allow", "none", "enforce")));
    assert!(has(&decisions("allow", "none", "report")));
    for e in AuthError::ALL {
        assert!(has(&decisions("deny", e.reason(), "enforce")));
        assert!(has(&decisions("would_deny", e.reason(), "report")));
    }
    for n in [
        "jwt_filter.cors_preflight_bypassed_total",
        "jwt_filter.result=.=hit;.;jwt_cache_lookups_total",
        "jwt_filter.result=.=miss;.;jwt_cache_lookups_total",
        "jwt_filter.outcome=.=verified;.;decision_duration_microseconds",
        "jwt_filter.outcome=.=denied;.;decision_duration_microseconds",
        "jwt_filter.provider=.=a;.;decision=.=allow;.;provider_decisions_total",
        "jwt_filter.provider=.=b;.;decision=.=deny;.;provider_decisions_total",
        "jwt_filter.provider=.=a;.;key_source=.=local;.;jwks_keys",
        "jwt_filter.provider=.=b;.;key_source=.=remote;.;jwks_oldest_key_age_seconds",
        "jwt_filter.provider=.=b;.;result=.=failure;.;jwks_fetches_total",
        "jwt_filter.provider=.=b;.;jwks_keys_added_total",
        "jwt_filter.provider=.=b;.;jwks_discovery_untrusted_total",
        "jwt_filter.rule=.=api;.;decision=.=deny;.;rule_decisions_total",
        "jwt_filter.rule=.=shadow;.;decision=.=would_deny;.;rule_decisions_total",
    ] {
        assert!(has(n), "{n}");
    }
    // Local providers never fetch; unnamed rules get no counters.
    assert!(!has(
        "jwt_filter.provider=.=a;.;result=.=success;.;jwks_fetches_total"
    ));
    assert!(!has(
        "jwt_filter.rule=.=api;.;decision=.=would_deny;.;rule_decisions_total"
    ));
    let hist: Vec<_> = names
        .iter()
        .filter(|(k, _)| *k == MetricKind::Histogram)
        .collect();
    assert_eq!(hist.len(), Timing::ALL.len());
    // 2 allow + one deny and one would-deny per reason + cors + 2 cache +
    // 4 histograms, 5 per provider + 5 per remote one, 2 per named rule.
    let reasons = crate::error::AuthError::ALL.len();
    assert_eq!(names.len(), 2 + 2 * reasons + 1 + 2 + 4 + 2 * 5 + 5 + 2 * 2);
    let unique: std::collections::HashSet<_> = names.iter().map(|(_, n)| n).collect();
    assert_eq!(unique.len(), names.len());
}

#[test]
fn define_matches_metric_names() {
    let mut host = Fake::default();
    let (m, providers) = Metrics::define(&mut host, "edge", &layout());
    assert!(m.failed.is_empty());
    assert_eq!(providers.len(), 2);
    assert_eq!(host.names, metric_names("edge", &layout()));
}

#[test]
fn prefix_check() {
    assert!(check_prefix("jwt_filter").is_ok());
    assert!(check_prefix("edge.jwt").is_ok());
    for bad in ["", ".x", "x.", "a..b", "a-b", "a b", &"x".repeat(65)] {
        assert!(check_prefix(bad).is_err(), "{bad}");
    }
}

#[test]
fn events_move_the_right_counters() {
    let mut host = Fake::default();
    let (m, p) = Metrics::define(&mut host, "jwt_filter", &layout());
    let [a, b] = &p[..] else {
        panic!("two providers")
    };
    m.on_allow(&host, [a, b], Some(1), Mode::Enforce);
    m.on_allow(&host, [], None, Mode::Enforce);
    m.on_allow(&host, [a], Some(2), Mode::Report);
    m.on_deny(&host, AuthError::Expired, Some(b), Some(1));
    m.on_deny(&host, AuthError::Missing, None, None);
    m.on_would_deny(&host, AuthError::InsufficientScope, Some(2));
    m.on_cors_bypass(&host);
    b.on_jwks_fetch(&host, true);
    b.on_jwks_fetch(&host, false);
    b.on_jwks_fetch(&host, false);
    a.on_jwks_fetch(&host, false); // local: no such counter, no effect
    b.on_keys_changed(&host, 2, 1);
    assert_eq!(host.get(&decisions("allow", "none", "enforce")), 2);
    assert_eq!(host.get(&decisions("allow", "none", "report")), 1);
    assert_eq!(host.get(&decisions("deny", "expired", "enforce")), 1);
    assert_eq!(host.get(&decisions("deny", "missing", "enforce")), 1);
    assert_eq!(
        host.get(&decisions("deny", "insufficient_scope", "enforce")),
        0
    );
    assert_eq!(
        host.get(&decisions("would_deny", "insufficient_scope", "report")),
        1
    );
    let prov = |p: &str, d: &str| {
        host.get(&format!(
            "jwt_filter.provider=.={p};.;decision=.={d};.;provider_decisions_total"
        ))
    };
    assert_eq!((prov("a", "allow"), prov("b", "allow")), (2, 1));
    assert_eq!((prov("a", "deny"), prov("b", "deny")), (0, 1));
    let rule = |r: &str, d: &str| {
        host.get(&format!(
            "jwt_filter.rule=.={r};.;decision=.={d};.;rule_decisions_total"
        ))
    };
    assert_eq!((rule("api", "allow"), rule("api", "deny")), (1, 1));
    assert_eq!(
        (rule("shadow", "allow"), rule("shadow", "would_deny")),
        (1, 1)
    );
    assert_eq!(host.get("jwt_filter.cors_preflight_bypassed_total"), 1);
    let fetch = |r: &str| {
        host.get(&format!(
            "jwt_filter.provider=.=b;.;result=.={r};.;jwks_fetches_total"
        ))
    };
    assert_eq!((fetch("success"), fetch("failure")), (1, 2));
    assert_eq!(
        host.get("jwt_filter.provider=.=b;.;jwks_keys_added_total"),
        2
    );
    assert_eq!(
        host.get("jwt_filter.provider=.=b;.;jwks_keys_removed_total"),
        1
    );
}

#[test]
fn key_gauges_and_oldest_key_age() {
    let mut host = Fake::default();
    let (_, p) = Metrics::define(&mut host, "jwt_filter", &layout());
    let b = &p[1];
    let g = |n: &str| {
        host.get(&format!(
            "jwt_filter.provider=.=b;.;key_source=.=remote;.;{n}"
        ))
    };
    b.record_jwks(&host, 3, 7, 100_000);
    assert_eq!((g("jwks_keys"), g("jwks_age_seconds")), (3, 7));
    assert_eq!(g("jwks_oldest_key_age_seconds"), 0); // not known yet
    b.set_oldest_key(Some(40_000));
    b.record_jwks(&host, 3, 8, 100_000);
    assert_eq!(g("jwks_oldest_key_age_seconds"), 60);
    // Ids of no provider (the default) count nothing.
    let before = host.values.borrow().clone();
    ProviderIds::default().record_jwks(&host, 1, 1, 1);
    ProviderIds::default().on_jwks_fetch(&host, true);
    assert_eq!(*host.values.borrow(), before);
}

#[test]
fn decision_time_goes_to_its_outcome() {
    let mut host = Fake::default();
    let (m, _) = Metrics::define(&mut host, "jwt_filter", &layout());
    m.on_decision_time(&host, Timing::CacheHit, 12);
    m.on_decision_time(&host, Timing::CacheHit, 30);
    m.on_decision_time(&host, Timing::Denied, 5);
    let samples = |o: &str| {
        let name = format!("jwt_filter.outcome=.={o};.;decision_duration_microseconds");
        let id = host
            .id(&name)
            .unwrap_or_else(|| panic!("{name} not defined"));
        host.samples.borrow().get(&id).cloned().unwrap_or_default()
    };
    assert_eq!(samples("cache_hit"), vec![12, 30]);
    assert_eq!(samples("denied"), vec![5]);
    assert!(samples("verified").is_empty());
}

#[test]
fn timing_classification() {
    assert_eq!(Timing::classify(false, 1, (1, 0)), Timing::Denied);
    assert_eq!(Timing::classify(true, 0, (0, 0)), Timing::NoToken);
    assert_eq!(Timing::classify(true, 1, (1, 0)), Timing::CacheHit);
    assert_eq!(Timing::classify(true, 2, (1, 1)), Timing::Verified);
    assert_eq!(Timing::classify(true, 1, (0, 1)), Timing::Verified);
    // Cache off: no lookups at all, the signature was checked.
    assert_eq!(Timing::classify(true, 1, (0, 0)), Timing::Verified);
}

#[test]
fn refused_definitions_are_reported_and_skipped() {
    let refused = decisions("deny", "expired", "enforce");
    let mut host = Fake {
        refuse: Some(refused.clone()),
        ..Fake::default()
    };
    let (m, _) = Metrics::define(&mut host, "jwt_filter", &Layout::default());
    assert_eq!(m.failed, vec![refused]);
    m.on_deny(&host, AuthError::Expired, None, None);
    m.on_deny(&host, AuthError::Missing, None, None);
    assert_eq!(host.get(&decisions("deny", "missing", "enforce")), 1);
}

#[test]
fn no_decision_histogram_when_turned_off() {
    let off = Layout {
        decision_histogram: false,
        ..layout()
    };
    let names = metric_names("jwt_filter", &off);
    assert!(!names.iter().any(|(_, n)| n.contains(DURATION)));
    assert!(names.iter().all(|(k, _)| *k != MetricKind::Histogram));
    // Everything else is defined as with the histogram on.
    let on = metric_names("jwt_filter", &layout());
    assert_eq!(on.len(), names.len() + Timing::ALL.len());

    let mut host = Fake::default();
    let (m, _) = Metrics::define(&mut host, "jwt_filter", &off);
    assert!(!m.times_decisions());
    m.on_decision_time(&host, Timing::CacheHit, 12);
    assert!(host.samples.borrow().is_empty());
    let mut host = Fake::default();
    let (m, _) = Metrics::define(&mut host, "jwt_filter", &layout());
    assert!(m.times_decisions());
}
