use super::*;
use crate::config::Config;
use crate::keys::ProviderState;
use crate::metrics::Metrics;
use crate::policy::Evaluator;
use crate::testutil::{hs_jwks, mint, MetricRecorder};
use crate::token::native_verify;

const NOW: u64 = 1_700_000_000;

/// One provider `a` (HS256 keys, audience `api`, `x-sub` from `sub`), the
/// rules given, and `top` (more top-level members, each followed by a comma).
fn cfg(top: &str, rules: &str) -> Config {
    let jwks = serde_json::to_string(&hs_jwks()).unwrap();
    let json = format!(
        r#"{{{top}"providers":{{"a":{{"issuer":"iss-a","audiences":["api"],
            "local_jwks":{{"inline_string":{jwks}}},
            "claim_to_headers":[{{"header_name":"x-sub","claim_name":"sub"}}]}}}},
            "rules":[{rules}]}}"#
    );
    Config::parse(json.as_bytes()).unwrap()
}

const REQUIRE_A: &str = r#"{"match":{"prefix":"/"},"requires":{"provider_name":"a"}}"#;

fn req(headers: &[(&str, &str)]) -> RequestView {
    let mut h = vec![
        (":path".to_string(), "/p?q=1".to_string()),
        (":method".into(), "GET".into()),
        (":scheme".into(), "https".into()),
        (":authority".into(), "api.example".into()),
    ];
    h.extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    RequestView::new(h)
}

fn token(extra: &str) -> String {
    mint(&format!(
        r#"{{"iss":"iss-a","aud":"api","sub":"u1","exp":{}{extra}}}"#,
        NOW + 600
    ))
}

/// Decides `view` under `config` and plans the effects; returns them with
/// the metrics recorder.
fn run(config: &Config, view: &RequestView, log_denials: bool) -> (Effects, MetricRecorder) {
    let mut rec = MetricRecorder::default();
    let (metrics, ids) = Metrics::define(&mut rec, &config.stat_prefix, &layout(config));
    let providers = ProviderState::for_config(config, ids);
    let outcome = Evaluator::new(config, &providers, view, NOW, &native_verify).outcome();
    let fx = plan(
        config,
        &metrics,
        &providers,
        &rec,
        view,
        outcome,
        log_denials,
        NOW,
    );
    (fx, rec)
}

/// The sum of every counter whose name contains each of `parts`.
fn counted(rec: &MetricRecorder, parts: &[&str]) -> i64 {
    rec.names
        .iter()
        .filter(|(_, n)| parts.iter().all(|p| n.contains(p)))
        .map(|(_, n)| rec.get(n))
        .sum()
}

fn header<'a>(fx: &'a Effects, name: &str) -> Option<Option<&'a str>> {
    fx.headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_deref())
}

fn state<'a>(fx: &'a Effects, key: &str) -> Option<&'a str> {
    fx.state
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.as_str())
}

#[test]
fn an_enforced_denial_replies_with_a_challenge_and_is_counted() {
    let config = cfg(r#""status_header":"x-jwt-status","#, REQUIRE_A);
    let (fx, rec) = run(&config, &req(&[]), true);
    let reply = fx.reply.as_ref().expect("a reply");
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body, "Jwt is missing");
    let (_, challenge) = reply
        .headers
        .iter()
        .find(|(k, _)| *k == "www-authenticate")
        .expect("a challenge");
    assert!(
        challenge.starts_with(r#"Bearer realm="https://api.example/p""#),
        "{challenge}"
    );
    // Nothing is written upstream on a denial.
    assert_eq!(header(&fx, "x-jwt-status"), None);
    let line = fx.log.as_deref().expect("a log line");
    assert!(line.contains("decision=deny"), "{line}");
    assert!(counted(&rec, &["reason=.=missing"]) >= 1);
    assert_eq!(counted(&rec, &["would_deny"]), 0);
}

#[test]
fn the_log_line_is_built_only_when_it_is_kept() {
    let config = cfg("", REQUIRE_A);
    let (fx, _) = run(&config, &req(&[]), false);
    assert!(fx.reply.is_some());
    assert_eq!(fx.log, None);
}

#[test]
fn report_mode_lets_a_denial_through_with_its_status_and_state() {
    let config = cfg(
        r#""mode":"report","status_header":"x-jwt-status","filter_state":true,"#,
        REQUIRE_A,
    );
    let (fx, rec) = run(&config, &req(&[]), true);
    assert_eq!(fx.reply, None);
    assert_eq!(header(&fx, "x-jwt-status"), Some(Some("missing")));
    assert_eq!(state(&fx, STATE_DECISION), Some("would_deny"));
    assert_eq!(state(&fx, STATE_REASON), Some("missing"));
    assert!(fx.log.as_deref().unwrap().contains("decision=would_deny"));
    assert!(counted(&rec, &["would_deny", "reason=.=missing"]) >= 1);
}

#[test]
fn strip_failure_response_replies_with_the_status_alone() {
    let config = cfg(r#""strip_failure_response":true,"#, REQUIRE_A);
    let (fx, _) = run(&config, &req(&[]), false);
    assert_eq!(
        fx.reply,
        Some(Reply {
            status: 401,
            headers: Vec::new(),
            body: ""
        })
    );
}

#[test]
fn an_allowed_request_gets_its_headers_status_and_state() {
    let config = cfg(
        r#""status_header":"x-jwt-status","filter_state":true,"#,
        REQUIRE_A,
    );
    let bearer = format!("Bearer {}", token(""));
    let (fx, rec) = run(&config, &req(&[("authorization", &bearer)]), true);
    assert_eq!(fx.reply, None);
    assert_eq!(fx.log, None);
    assert_eq!(header(&fx, "x-sub"), Some(Some("u1")));
    assert_eq!(header(&fx, "x-jwt-status"), Some(Some("valid")));
    assert_eq!(state(&fx, STATE_DECISION), Some("allow"));
    assert_eq!(state(&fx, STATE_PROVIDER), Some("a"));
    assert!(state(&fx, STATE_PAYLOAD).unwrap().contains(r#""sub":"u1""#));
    assert!(counted(&rec, &["provider=.=a", "decision=.=allow"]) >= 1);
}

#[test]
fn filter_state_is_written_only_when_asked_for() {
    let config = cfg("", REQUIRE_A);
    let bearer = format!("Bearer {}", token(""));
    let (fx, _) = run(&config, &req(&[("authorization", &bearer)]), true);
    assert!(fx.state.is_empty());
}

#[test]
fn a_missing_scope_is_forbidden_and_names_the_rule_scopes() {
    let rule = r#"{"match":{"prefix":"/"},"requires":{"provider_name":"a"},"required_scopes":["admin","write"]}"#;
    let config = cfg("", rule);
    let bearer = format!("Bearer {}", token(r#","scope":"read""#));
    let (fx, _) = run(&config, &req(&[("authorization", &bearer)]), false);
    let reply = fx.reply.expect("a reply");
    assert_eq!(reply.status, 403);
    let challenge = &reply.headers.first().expect("a challenge").1;
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );
    assert!(challenge.contains(r#"scope="admin write""#), "{challenge}");
}

#[test]
fn a_request_without_a_rule_goes_on_untouched() {
    let config = cfg(
        r#""status_header":"x-jwt-status","#,
        r#"{"match":{"prefix":"/other"},"requires":{"provider_name":"a"}}"#,
    );
    let (fx, _) = run(&config, &req(&[]), true);
    assert_eq!(fx.reply, None);
    assert_eq!(header(&fx, "x-jwt-status"), Some(Some("not_required")));
    assert_eq!(fx.log, None);
}

#[test]
fn a_cors_preflight_bypass_is_counted_and_marked_not_required() {
    let config = cfg(
        r#""status_header":"x-jwt-status","bypass_cors_preflight":true,"#,
        REQUIRE_A,
    );
    let mut rec = MetricRecorder::default();
    let (metrics, _) = Metrics::define(&mut rec, &config.stat_prefix, &layout(&config));
    let preflight = RequestView::new(
        [
            (":path", "/p"),
            (":method", "OPTIONS"),
            ("origin", "https://app.example"),
            ("access-control-request-method", "POST"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    );
    let fx = cors_bypass(&config, &metrics, &rec, &preflight).expect("a preflight");
    assert_eq!(header(&fx, "x-jwt-status"), Some(Some("not_required")));
    assert_eq!(counted(&rec, &["cors"]), 1);
    // Any other request is decided.
    assert_eq!(cors_bypass(&config, &metrics, &rec, &req(&[])), None);
    assert_eq!(counted(&rec, &["cors"]), 1);
}

#[test]
fn a_denial_without_request_facts_still_has_a_realm() {
    let reply = denial(
        &RequestView::default(),
        AuthError::JwksUnavailable,
        None,
        None,
        NOW,
    );
    assert_eq!(reply.status, 401);
    let challenge = &reply.headers.first().expect("a challenge").1;
    assert!(
        challenge.starts_with(r#"Bearer realm="http:///""#),
        "{challenge}"
    );
}
