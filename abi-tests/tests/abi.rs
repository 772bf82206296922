//! The built module under the fake host, driven as Envoy drives it: the
//! decisions a request gets, remote keys (parking, resuming, failing), host
//! crypto, a refused configuration. Hostile host answers are in hostile.rs.
//!
//! Every test skips (saying why) when there is no module and
//! `JWT_FILTER_WASM` is unset; `./build.sh test` sets it.

mod support;

use abi_tests::host::{CallResponse, ForeignCrypto, HostState};
use abi_tests::wire::headers;
use abi_tests::{available, Action, Filter};
use serde_json::json;
use support::*;

macro_rules! need_module {
    () => {
        if !available() {
            return;
        }
    };
}

#[test]
fn valid_token_continues_with_claim_and_payload_headers() {
    need_module!();
    let mut f = started(&local_config(json!({})));
    let token = rs256_token("user-1");
    let (id, action) = f
        .request(get(
            "/api?q=1",
            &[("authorization", &bearer(&token)), ("x-sub", "spoofed")],
        ))
        .unwrap();
    assert_eq!(action, Action::Continue, "{}", f.host().log_text());
    let s = f.stream(id);
    assert!(s.local_response.is_none());
    let h = &s.request_headers;
    // The spoofed copy was removed; the claim written once.
    let subs: Vec<_> = h.iter().filter(|(k, _)| k == "x-sub").collect();
    assert_eq!(subs.len(), 1, "{h:?}");
    assert_eq!(subs[0].1, b"user-1");
    let payload = token.split('.').nth(1).unwrap();
    assert_eq!(
        abi_tests::host::find(h, "x-jwt-payload").as_deref(),
        Some(payload)
    );
    assert_eq!(
        abi_tests::host::find(h, "x-jwt-status").as_deref(),
        Some("valid")
    );
    // forward is false: the token is gone from the request.
    assert_eq!(abi_tests::host::find(h, "authorization"), None);
    assert_eq!(
        counter(&f, "decisions_total", &[("decision", "allow")]),
        1,
        "{:#?}",
        f.host().metrics
    );
    f.end(id).unwrap();
}

#[test]
fn no_token_is_401_with_rfc6750_challenge() {
    need_module!();
    let mut f = started(&local_config(json!({})));
    let (id, action) = f.request(get("/api/x?token=secret", &[])).unwrap();
    assert_eq!(action, Action::Pause);
    let reply = f.stream(id).local_response.clone().expect("a local reply");
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body, b"Jwt is missing");
    // RFC 6750 section 3: no error code when the request had no credentials;
    // the realm without the query string.
    assert_eq!(
        reply.header("www-authenticate").as_deref(),
        Some(r#"Bearer realm="http://host.test/api/x""#)
    );
    assert!(f.stream(id).continued.is_empty());
    assert_eq!(
        counter(
            &f,
            "decisions_total",
            &[("decision", "deny"), ("reason", "missing")]
        ),
        1
    );
}

#[test]
fn bad_signature_is_401_invalid_token() {
    need_module!();
    let mut f = started(&local_config(json!({})));
    let (id, action) = f
        .request(get(
            "/api",
            &[("authorization", &bearer(&bad_signature_token()))],
        ))
        .unwrap();
    assert_eq!(action, Action::Pause);
    let reply = f.stream(id).local_response.clone().expect("a local reply");
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body, b"Jwt verification fails");
    let www = reply.header("www-authenticate").unwrap();
    assert!(
        www.starts_with(
            r#"Bearer realm="http://host.test/api", error="invalid_token", error_description=""#
        ),
        "{www}"
    );
    // No token content in the reply or the logs.
    let sig = bad_signature_token()
        .rsplit_once('.')
        .unwrap()
        .1
        .to_string();
    assert!(!www.contains(&sig));
    assert!(!f.host().log_text().contains(&sig));
}

#[test]
fn report_mode_continues_with_status_header() {
    need_module!();
    let mut f = started(&local_config(json!({"mode": "report"})));
    let (missing, a1) = f.request(get("/api", &[])).unwrap();
    let (invalid, a2) = f
        .request(get(
            "/api",
            &[("authorization", &bearer(&bad_signature_token()))],
        ))
        .unwrap();
    assert_eq!((a1, a2), (Action::Continue, Action::Continue));
    for (id, status) in [(missing, "missing"), (invalid, "invalid")] {
        let s = f.stream(id);
        assert!(s.local_response.is_none());
        assert_eq!(
            abi_tests::host::find(&s.request_headers, "x-jwt-status").as_deref(),
            Some(status)
        );
    }
    assert_eq!(
        counter(&f, "decisions_total", &[("decision", "would_deny")]),
        2
    );
}

#[test]
fn forward_keeps_the_token() {
    need_module!();
    let mut f = started(&local_config(json!({"provider": {"forward": true}})));
    let auth = bearer(&rs256_token("user-1"));
    let (id, action) = f.request(get("/api", &[("authorization", &auth)])).unwrap();
    assert_eq!(action, Action::Continue);
    assert_eq!(
        abi_tests::host::find(&f.stream(id).request_headers, "authorization"),
        Some(auth)
    );
}

#[test]
fn strip_failure_response_sends_the_status_only() {
    need_module!();
    let mut f = started(&local_config(json!({"strip_failure_response": true})));
    let (id, action) = f
        .request(get(
            "/api",
            &[("authorization", &bearer(&bad_signature_token()))],
        ))
        .unwrap();
    assert_eq!(action, Action::Pause);
    let reply = f.stream(id).local_response.clone().unwrap();
    assert_eq!(reply.status, 401);
    assert!(reply.body.is_empty());
    assert_eq!(reply.header("www-authenticate"), None);
}

#[test]
fn spoofed_headers_are_replaced_on_routes_without_requirement() {
    need_module!();
    let cfg = local_config(json!({"rules": [
        {"match": {"prefix": "/public"}},
        {"match": {"prefix": "/"}, "requires": {"provider_name": "idp"}},
    ]}));
    let mut f = started(&cfg);
    let (id, action) = f
        .request(get(
            "/public/a",
            &[("x-jwt-status", "valid"), ("x-sub", "admin")],
        ))
        .unwrap();
    assert_eq!(action, Action::Continue);
    let h = &f.stream(id).request_headers;
    // The client's copies are gone; the status says no JWT was needed.
    let statuses: Vec<_> = h.iter().filter(|(k, _)| k == "x-jwt-status").collect();
    assert_eq!(statuses.len(), 1, "{h:?}");
    assert_eq!(statuses[0].1, b"not_required");
    assert_eq!(abi_tests::host::find(h, "x-sub"), None);
}

// --- remote keys -----------------------------------------------------------

fn jwks_answer(jwks: &str) -> Option<CallResponse> {
    Some(CallResponse {
        headers: headers(&[(":status", "200"), ("content-type", "application/json")]),
        body: jwks.as_bytes().to_vec(),
        trailers: Vec::new(),
    })
}

fn status_answer(code: &str) -> Option<CallResponse> {
    Some(CallResponse {
        headers: headers(&[(":status", code)]),
        body: b"upstream error".to_vec(),
        trailers: Vec::new(),
    })
}

/// A request with a valid token arrives before any key: it parks and a
/// fetch goes out (at once, or on the first tick). Returns the stream and
/// the call's token.
fn park_first_request(f: &mut Filter) -> (u32, u32) {
    let auth = bearer(&rs256_token("user-1"));
    let (id, action) = f.request(get("/api", &[("authorization", &auth)])).unwrap();
    assert_eq!(action, Action::Pause, "{}", f.host().log_text());
    assert!(f.stream(id).local_response.is_none(), "parked, not denied");
    if f.host().pending_calls().is_empty() {
        f.advance_ms(u64::from(f.host().tick_period_ms));
        f.tick().unwrap();
    }
    let calls = f.host().pending_calls();
    assert_eq!(calls.len(), 1, "one JWKS fetch: {calls:#?}");
    let c = &calls[0];
    assert_eq!(c.upstream, "jwks");
    assert_eq!(c.header(":method").as_deref(), Some("GET"));
    assert_eq!(c.header(":path").as_deref(), Some("/jwks"));
    assert_eq!(c.header(":authority").as_deref(), Some("idp.test"));
    assert_eq!(c.timeout_ms, 1000);
    (id, c.token)
}

#[test]
fn remote_jwks_parks_the_request_and_resumes_it() {
    need_module!();
    let mut f = started(&remote_config(json!({})));
    assert!(
        f.host().tick_period_ms > 0,
        "a remote provider sets a timer"
    );
    let (id, token) = park_first_request(&mut f);
    f.advance_ms(20);
    f.answer_call(token, jwks_answer(&jwks_subset(&["rsa-a"])))
        .unwrap();
    let s = f.stream(id);
    assert!(s.local_response.is_none(), "{:?}", s.local_response);
    assert_eq!(s.continued, vec![0], "resumed once (stream type request)");
    assert_eq!(
        abi_tests::host::find(&s.request_headers, "x-sub").as_deref(),
        Some("user-1")
    );
    // The next request decides at once with the fetched keys.
    let (id2, action) = f
        .request(get(
            "/api",
            &[("authorization", &bearer(&rs256_token("u2")))],
        ))
        .unwrap();
    assert_eq!(action, Action::Continue);
    assert!(f.stream(id2).continued.is_empty());
    assert!(f.host().pending_calls().is_empty());
    assert_eq!(
        counter(&f, "jwks_fetches_total", &[("result", "success")]),
        1
    );
}

/// Delivers `answer` to every pending fetch, moving the clock and ticking,
/// until the stream has a reply or was resumed (at most 50 rounds).
fn fail_fetches_until_decided(f: &mut Filter, id: u32, answer: fn() -> Option<CallResponse>) {
    for _ in 0..50 {
        for call in f.host().pending_calls() {
            f.answer_call(call.token, answer()).unwrap();
        }
        let s = f.stream(id);
        if s.local_response.is_some() || !s.continued.is_empty() {
            return;
        }
        f.advance_ms(u64::from(f.host().tick_period_ms.max(100)));
        f.tick().unwrap();
    }
    panic!(
        "the parked request was never decided:\n{}",
        f.host().log_text()
    );
}

fn assert_fetch_failed_401(f: &Filter, id: u32) {
    let s = f.stream(id);
    let reply = s.local_response.as_ref().expect("a denial, not a pass");
    assert_eq!(reply.status, 401, "a key outage is 401, never 5xx");
    assert_eq!(reply.body, b"Jwks remote fetch is failed");
    assert!(s.continued.is_empty());
}

#[test]
fn remote_jwks_fetch_500_denies_with_401() {
    need_module!();
    let mut f = started(&remote_config(json!({})));
    let (id, _) = park_first_request(&mut f);
    fail_fetches_until_decided(&mut f, id, || status_answer("500"));
    assert_fetch_failed_401(&f, id);
    assert!(counter(&f, "jwks_fetches_total", &[("result", "failure")]) >= 1);
}

#[test]
fn remote_jwks_timeout_denies_with_401() {
    need_module!();
    let mut f = started(&remote_config(json!({})));
    let (id, _) = park_first_request(&mut f);
    // A timeout is the router's local reply: a 504 answer.
    fail_fetches_until_decided(&mut f, id, || status_answer("504"));
    assert_fetch_failed_401(&f, id);
}

#[test]
fn remote_jwks_reset_denies_with_401() {
    need_module!();
    let mut f = started(&remote_config(json!({})));
    let (id, _) = park_first_request(&mut f);
    // Envoy's onHttpCallFailure (a reset, or an answer over the buffer
    // limit): the callback comes with no headers and no body, and the
    // answer's header map is unavailable (proxy_get_header_map_value gives
    // BadArgument).
    fail_fetches_until_decided(&mut f, id, || None);
    assert_fetch_failed_401(&f, id);
}

#[test]
fn remote_jwks_garbage_answer_denies_with_401() {
    need_module!();
    let mut f = started(&remote_config(json!({})));
    let (id, _) = park_first_request(&mut f);
    fail_fetches_until_decided(&mut f, id, || {
        Some(CallResponse {
            headers: headers(&[(":status", "200")]),
            body: vec![0xff, 0xfe, b'{', 0, 0x80],
            trailers: Vec::new(),
        })
    });
    assert_fetch_failed_401(&f, id);
}

#[test]
fn a_parked_request_that_goes_away_cancels_its_fetch_and_keys_still_come() {
    need_module!();
    let mut f = started(&remote_config(json!({})));
    let (id, token) = park_first_request(&mut f);
    // Envoy cancels the fetch with the context that made it.
    f.end(id).unwrap();
    assert!(f
        .answer_call(token, jwks_answer(&jwks_subset(&["rsa-a"])))
        .is_err());
    assert!(f.host().pending_calls().is_empty());
    // A later request parks; the fetch is made again (at once, or once the
    // lost one's lease runs out) and the request resumes.
    let auth = bearer(&rs256_token("u"));
    let (id2, action) = f.request(get("/api", &[("authorization", &auth)])).unwrap();
    assert_eq!(action, Action::Pause);
    for _ in 0..60 {
        if let Some(call) = f.host().pending_calls().first().cloned() {
            f.answer_call(call.token, jwks_answer(&jwks_subset(&["rsa-a"])))
                .unwrap();
            break;
        }
        assert!(
            f.stream(id2).local_response.is_none(),
            "denied while a fetch could still come"
        );
        f.advance_ms(500);
        f.tick().unwrap();
    }
    let s = f.stream(id2);
    assert!(
        s.local_response.is_none(),
        "{:?}\n{}",
        s.local_response,
        f.host().log_text()
    );
    assert_eq!(s.continued, vec![0], "{}", f.host().log_text());
}

#[test]
fn two_workers_fetch_once_and_share_the_keys() {
    need_module!();
    let mut w1 = started(&remote_config(json!({})));
    let mut w2 = started_with(HostState::sharing_with(w1.host()));
    let (id1, token) = park_first_request(&mut w1);
    // The second worker parks too, but the first holds the fetch lease
    // (a compare-and-swap on shared data): it makes no call of its own.
    let auth = bearer(&rs256_token("u2"));
    let (id2, action) = w2
        .request(get("/api", &[("authorization", &auth)]))
        .unwrap();
    assert_eq!(action, Action::Pause);
    w2.advance_ms(10);
    w2.tick().unwrap();
    assert!(w2.host().calls.is_empty(), "{:#?}", w2.host().calls);
    w1.answer_call(token, jwks_answer(&jwks_subset(&["rsa-a"])))
        .unwrap();
    assert_eq!(w1.stream(id1).continued, vec![0]);
    // The second worker takes the keys from shared data on its next tick.
    for _ in 0..20 {
        if !w2.stream(id2).continued.is_empty() {
            break;
        }
        w2.advance_ms(100);
        w2.tick().unwrap();
    }
    let s = w2.stream(id2);
    assert!(s.local_response.is_none(), "{:?}", s.local_response);
    assert_eq!(s.continued, vec![0], "{}", w2.host().log_text());
    assert!(w2.host().calls.is_empty(), "one fetch for the whole Envoy");
}

// --- host crypto --------------------------------------------------------------

#[test]
fn host_crypto_offloads_rsa_and_keeps_ecdsa_in_wasm() {
    need_module!();
    let mut host = HostState::new(local_config(json!({})));
    host.foreign = ForeignCrypto::Rsa;
    let mut f = started_with(host);
    let probes = f.host().foreign_calls;
    assert!(probes > 0, "the start-up probe asks the host");
    let gauge = |f: &Filter, alg: &str| {
        f.host()
            .metrics
            .iter()
            .find(|m| {
                m.name.contains(&format!("alg=.={alg};.;")) && m.name.ends_with(";.;host_crypto")
            })
            .map(|m| m.value)
    };
    assert_eq!(gauge(&f, "RS256"), Some(1), "{:#?}", f.host().metrics);
    assert_eq!(
        gauge(&f, "ES256"),
        Some(0),
        "this host answers false for ECDSA"
    );

    let (rs, a1) = f
        .request(get("/a", &[("authorization", &bearer(&rs256_token("u")))]))
        .unwrap();
    assert_eq!(a1, Action::Continue, "{}", f.host().log_text());
    assert!(
        f.host().foreign_calls > probes,
        "RS256 verified by the host"
    );
    let after_rs = f.host().foreign_calls;
    let (_, a2) = f
        .request(get("/a", &[("authorization", &bearer(&es256_token("u")))]))
        .unwrap();
    assert_eq!(a2, Action::Continue);
    assert_eq!(f.host().foreign_calls, after_rs, "ES256 stays in wasm");
    let (bad, a3) = f
        .request(get(
            "/a",
            &[("authorization", &bearer(&bad_signature_token()))],
        ))
        .unwrap();
    assert_eq!(a3, Action::Pause);
    assert_eq!(f.stream(bad).local_response.as_ref().unwrap().status, 401);
    assert!(f.stream(rs).local_response.is_none());
}

#[test]
fn without_the_foreign_function_everything_verifies_in_wasm() {
    need_module!();
    let mut f = started(&local_config(json!({})));
    assert!(
        f.host().log_text().contains("verify_signature"),
        "{}",
        f.host().log_text()
    );
    let (_, action) = f
        .request(get("/a", &[("authorization", &bearer(&rs256_token("u")))]))
        .unwrap();
    assert_eq!(action, Action::Continue);
}

// --- configuration -------------------------------------------------------------

#[test]
fn a_broken_configuration_is_refused_without_a_trap() {
    need_module!();
    let cases: Vec<Vec<u8>> =
        vec![
        b"{not json".to_vec(),
        b"[]".to_vec(),
        vec![0xff, 0xfe, 0x00, 0x7b],
        json!({"providers": {"idp": {"issuer": ISSUER}}}).to_string().into_bytes(),
        json!({"providers": {"idp": {"issuer": ISSUER, "local_jwks": {"inline_string": "{}"}}}})
            .to_string()
            .into_bytes(),
        json!({"rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "nope"}}]})
            .to_string()
            .into_bytes(),
        local_config(json!({"unknown_field": 1})).into_bytes(),
    ];
    for cfg in cases {
        let mut f = Filter::new(HostState::new(cfg.clone())).unwrap();
        let ok = f.start().unwrap_or_else(|e| panic!("{e}"));
        assert!(!ok, "accepted {:?}", String::from_utf8_lossy(&cfg));
        assert!(
            f.host()
                .log_text()
                .contains("invalid plugin configuration, refusing to start"),
            "{}",
            f.host().log_text()
        );
        // Were a request to reach this VM anyway, it is denied, not passed.
        let (id, action) = f.request(get("/", &[])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(action, Action::Pause);
        assert_eq!(
            f.stream(id).local_response.as_ref().map(|r| r.status),
            Some(401)
        );
    }
}

#[test]
fn the_module_speaks_abi_0_2_1() {
    need_module!();
    let mut f = Filter::new(HostState::new("{}")).unwrap();
    // The callbacks Envoy needs from this filter (the others are stripped
    // from the module on purpose: Envoy skips a callback that is not there).
    for name in [
        "proxy_on_memory_allocate",
        "proxy_on_context_create",
        "proxy_on_vm_start",
        "proxy_on_configure",
        "proxy_on_request_headers",
        "proxy_on_http_call_response",
        "proxy_on_tick",
        "proxy_on_delete",
    ] {
        assert!(f.exports(name), "{name} is not exported");
    }
    let a = f.allocate(64).unwrap();
    let b = f.allocate(64).unwrap();
    assert!(a != 0 && b != 0 && (a - b).abs() >= 64, "{a} {b}");
    assert!(f.start().unwrap(), "an empty configuration is valid");
    // No rule: a request needs no token.
    let (_, action) = f.request(get("/", &[])).unwrap();
    assert_eq!(action, Action::Continue);
}
