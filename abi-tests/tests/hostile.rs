//! A hostile or broken host: error statuses, malformed header-map bytes,
//! invalid UTF-8, huge values, garbage JWKS, foreign-function and shared-data
//! answers. The module must never trap (a trap is a panic: the VM dies and
//! Envoy fails every request of the worker), and a request that needs a token
//! must never pass without a valid one.

mod support;

use abi_tests::host::{status, CallResponse, Faults, ForeignCrypto, HostState};
use abi_tests::wire::{headers, serialize_map};
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

/// What the usual traffic got under a faulty host.
#[derive(Debug)]
struct Run {
    configured: bool,
    /// (request, action, local reply status) for: a valid token, no token,
    /// a bad signature.
    replies: Vec<(&'static str, Action, Option<u32>)>,
}

/// Configures and sends the usual traffic; for remote keys also ticks and
/// answers every fetch with `answer`. `Err` is a trap.
fn drive(
    config: &str,
    faults: Faults,
    foreign: ForeignCrypto,
    answer: Option<CallResponse>,
) -> Result<Run, String> {
    let mut host = HostState::new(config);
    host.faults = faults;
    host.foreign = foreign;
    let mut f = Filter::new(host)?;
    let configured = f.start()?;
    let mut replies = Vec::new();
    let requests = [
        ("valid", Some(bearer(&rs256_token("user-1")))),
        ("none", None),
        ("bad", Some(bearer(&bad_signature_token()))),
    ];
    for (what, auth) in requests {
        let extra: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("authorization", a)])
            .unwrap_or_default();
        let (id, action) = f.request(get("/api", &extra))?;
        for _ in 0..3 {
            for call in f.host().pending_calls() {
                f.answer_call(call.token, answer.clone())?;
            }
            f.advance_ms(1000);
            f.tick()?;
        }
        let s = f.stream(id);
        let status = s.local_response.as_ref().map(|r| r.status);
        let action = if s.continued.is_empty() {
            action
        } else {
            Action::Continue
        };
        replies.push((what, action, status));
        f.end(id)?;
    }
    Ok(Run {
        configured,
        replies,
    })
}

/// No trap; the requests without a valid token never pass (a host that
/// fails `proxy_send_local_response` leaves them paused without a reply).
fn assert_safe(what: &str, r: Result<Run, String>) -> Run {
    let run = r.unwrap_or_else(|e| panic!("{what}: {e}"));
    for (req, action, status) in &run.replies {
        if *req != "valid" {
            assert_ne!(
                *action,
                Action::Continue,
                "{what}: request {req} passed: {run:?}"
            );
        }
        if let Some(s) = status {
            assert!((400..500).contains(s), "{what}: {req} got {s}: {run:?}");
        }
    }
    run
}

fn faults_status(name: &str, code: u32) -> Faults {
    let mut f = Faults::default();
    f.status.insert(name.to_string(), code);
    f
}

fn ok_jwks() -> Option<CallResponse> {
    Some(CallResponse {
        headers: headers(&[(":status", "200")]),
        body: jwks_subset(&["rsa-a"]).into_bytes(),
        trailers: Vec::new(),
    })
}

/// The configurations the traffic runs under: local keys (with route
/// metadata, filter state rules and filter state on, so properties are
/// read and written) and remote keys.
fn configs() -> Vec<(&'static str, String)> {
    let props = json!({
        "route_metadata_namespace": "jwt",
        "filter_state": true,
        "requirement_map": {"r": {"provider_name": "idp"}},
        "filter_state_rules": {"name": "pick", "requires": {"x": {"provider_name": "idp"}}},
    });
    vec![
        ("local", local_config(props)),
        ("remote", remote_config(json!({}))),
    ]
}

/// The error statuses Envoy itself returns from each call (unknown
/// cluster, missing key, CAS race, ...). (`proxy_set_effective_context`
/// fails only for a context that is gone, as the fake host does; a host
/// failing it for a live context is in the matrix below.)
#[test]
fn error_statuses_a_real_envoy_returns_never_trap() {
    need_module!();
    let cases: &[(&str, &[u32])] = &[
        ("proxy_get_header_map_pairs", &[1, 2, 3, 10, 12, 99]),
        ("proxy_get_property", &[1, 2, 3, 10, 12, 99]),
        ("proxy_call_foreign_function", &[1, 2, 3, 10, 12, 99]),
        ("proxy_get_log_level", &[1, 10, 12, 99]),
        ("proxy_get_buffer_bytes", &[status::NOT_FOUND]),
        (
            "proxy_get_header_map_value",
            &[status::NOT_FOUND, status::BAD_ARGUMENT],
        ),
        ("proxy_get_shared_data", &[status::NOT_FOUND]),
        ("proxy_set_shared_data", &[status::CAS_MISMATCH]),
        (
            "proxy_http_call",
            &[status::BAD_ARGUMENT, status::INTERNAL_FAILURE],
        ),
        (
            "proxy_increment_metric",
            &[status::NOT_FOUND, status::BAD_ARGUMENT],
        ),
        ("proxy_record_metric", &[status::NOT_FOUND]),
    ];
    for (config_name, config) in configs() {
        for (name, codes) in cases {
            for &code in *codes {
                let what = format!("{config_name}: {name} -> {code}");
                let run = assert_safe(
                    &what,
                    drive(
                        &config,
                        faults_status(name, code),
                        ForeignCrypto::Rsa,
                        ok_jwks(),
                    ),
                );
                // Without its configuration buffer the plugin refuses to
                // start (and a request that reaches it anyway is denied).
                let unconfigured = *name == "proxy_get_buffer_bytes";
                assert_eq!(run.configured, !unconfigured, "{what}");
            }
        }
    }
}

/// Every `env.proxy_*` call the module imports, made to fail with each of
/// NotFound, BadArgument and InternalFailure in turn, whatever the call.
/// Lists every (call, status) that traps.
#[test]
fn any_error_status_from_any_call_never_traps() {
    need_module!();
    let names = [
        "proxy_log",
        "proxy_get_log_level",
        "proxy_get_current_time_nanoseconds",
        "proxy_set_tick_period_milliseconds",
        "proxy_get_buffer_bytes",
        "proxy_get_header_map_pairs",
        "proxy_get_header_map_value",
        "proxy_replace_header_map_value",
        "proxy_add_header_map_value",
        "proxy_remove_header_map_value",
        "proxy_get_property",
        "proxy_set_property",
        "proxy_get_shared_data",
        "proxy_set_shared_data",
        "proxy_continue_stream",
        "proxy_send_local_response",
        "proxy_set_effective_context",
        "proxy_http_call",
        "proxy_call_foreign_function",
        "proxy_define_metric",
        "proxy_increment_metric",
        "proxy_record_metric",
    ];
    let mut traps = Vec::new();
    for (config_name, config) in configs() {
        for name in names {
            for code in [
                status::NOT_FOUND,
                status::BAD_ARGUMENT,
                status::INTERNAL_FAILURE,
            ] {
                let r = drive(
                    &config,
                    faults_status(name, code),
                    ForeignCrypto::Rsa,
                    ok_jwks(),
                );
                if let Err(e) = r {
                    let first = e.lines().next().unwrap_or("").to_string();
                    let panic = e
                        .lines()
                        .find(|l| l.contains("panic"))
                        .unwrap_or("")
                        .to_string();
                    traps.push(format!("{config_name}: {name} -> {code}: {first} {panic}"));
                }
            }
        }
    }
    assert!(
        traps.is_empty(),
        "{} traps:\n{}",
        traps.len(),
        traps.join("\n")
    );
}

/// A deterministic byte generator (no randomness in tests).
fn noise(seed: u32, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn malformed_maps() -> Vec<(&'static str, Vec<u8>)> {
    let good = serialize_map(&get("/api", &[("authorization", "Bearer a.b.c")]));
    let mut no_nuls = good.clone();
    no_nuls.retain(|b| *b != 0);
    let mut huge_len = vec![1, 0, 0, 0];
    huge_len.extend_from_slice(&u32::MAX.to_le_bytes());
    huge_len.extend_from_slice(&u32::MAX.to_le_bytes());
    huge_len.extend_from_slice(b"a\0b\0");
    let mut wrapping = vec![2, 0, 0, 0];
    wrapping.extend_from_slice(&0xffff_fff0u32.to_le_bytes());
    wrapping.extend_from_slice(&0x20u32.to_le_bytes());
    wrapping.extend_from_slice(&[0; 8]);
    let mut bad_utf8 = vec![1, 0, 0, 0, 13, 0, 0, 0, 9, 0, 0, 0];
    bad_utf8.extend_from_slice(b"authorization\0Bearer \xff\xfe\0");
    let mut cases = vec![
        ("empty", Vec::new()),
        ("count only", vec![1, 0, 0, 0]),
        ("three bytes", vec![1, 0, 0]),
        ("huge count", vec![0xff, 0xff, 0xff, 0xff]),
        ("count bigger than entries", {
            let mut g = good.clone();
            g[0] = 200;
            g
        }),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("every zero byte removed", no_nuls),
        ("length u32::MAX", huge_len),
        ("lengths that wrap", wrapping),
        ("invalid UTF-8 value", bad_utf8),
    ];
    for seed in 0..20 {
        cases.push(("noise", noise(seed, (seed as usize * 37) % 300)));
    }
    cases
}

/// Request headers the host serialized wrongly: no trap, and nothing passes
/// (the token cannot be read, so every request is denied).
#[test]
fn malformed_request_header_maps_deny() {
    need_module!();
    let config = local_config(json!({}));
    for (name, bytes) in malformed_maps() {
        let faults = Faults {
            header_map_pairs: Some(bytes),
            ..Faults::default()
        };
        let run = assert_safe(name, drive(&config, faults, ForeignCrypto::Absent, None));
        for (req, action, status) in &run.replies {
            assert_eq!(*action, Action::Pause, "{name}: {req} passed");
            assert_eq!(*status, Some(401), "{name}: {req}");
        }
    }
}

#[test]
fn invalid_utf8_and_huge_request_headers() {
    need_module!();
    let mut f = started(&local_config(json!({})));
    let huge = "a".repeat(1 << 20);
    let cases: Vec<abi_tests::host::HeaderMap> = vec![
        vec![
            (":path".into(), b"/api/\xff\xfe?x=\xc3".to_vec()),
            (
                "authorization".into(),
                b"Bearer \xff\xfe.\x80.\x00".to_vec(),
            ),
        ],
        get("/api", &[("authorization", &format!("Bearer {huge}"))]),
        get(&format!("/{huge}"), &[]),
        get("/api", &[("cookie", &huge), ("x-jwt-payload", &huge)]),
        {
            let mut h = get("/api", &[]);
            for i in 0..10_000 {
                h.push((format!("x-h{i}"), b"v".to_vec()));
            }
            h
        },
    ];
    for (i, h) in cases.into_iter().enumerate() {
        let (id, action) = f.request(h).unwrap_or_else(|e| panic!("case {i}: {e}"));
        assert_eq!(action, Action::Pause, "case {i}");
        let status = f.stream(id).local_response.as_ref().map(|r| r.status);
        assert_eq!(status, Some(401), "case {i}");
        f.end(id).unwrap();
    }
}

/// Property answers that are not what Envoy sends: invalid UTF-8, huge,
/// empty, noise. Route metadata then names an unknown requirement (a 403)
/// or nothing: no trap, no pass.
#[test]
fn garbage_properties() {
    need_module!();
    let config = &configs()[0].1;
    let mut values = vec![
        Vec::new(),
        vec![0xff, 0xfe, 0xfd],
        vec![1],
        vec![0; 1 << 20],
    ];
    values.extend((0..5).map(|s| noise(s, 64)));
    for v in values {
        let faults = Faults {
            property: Some(v.clone()),
            ..Faults::default()
        };
        assert_safe(
            &format!("property {:?}", &v[..v.len().min(8)]),
            drive(config, faults, ForeignCrypto::Absent, None),
        );
    }
}

/// JWKS answers that are not JWKS: a key outage (401), never a trap or 5xx.
#[test]
fn garbage_jwks_answers() {
    need_module!();
    let config = remote_config(json!({}));
    let deep = "[".repeat(100_000);
    let bodies: Vec<Vec<u8>> = vec![
        Vec::new(),
        vec![0xff; 100],
        deep.into_bytes(),
        format!("{{\"keys\": [{}]}}", "{},".repeat(50_000) + "{}").into_bytes(),
        vec![b'a'; 8 << 20],
        noise(7, 4096),
    ];
    for body in bodies {
        let answer = Some(CallResponse {
            headers: vec![
                (":status".into(), b"200".to_vec()),
                ("cache-control".into(), b"max-age=\xff\xff".to_vec()),
                ("expires".into(), vec![0xc3; 10_000]),
            ],
            body,
            trailers: Vec::new(),
        });
        let run = assert_safe(
            "jwks body",
            drive(&config, Faults::default(), ForeignCrypto::Absent, answer),
        );
        assert_ne!(run.replies[0].1, Action::Continue, "no keys, no pass");
    }
    // Garbage response headers from proxy_get_header_map_value.
    for v in [vec![0xff, 0xfe], vec![b'9'; 1 << 16], Vec::new()] {
        let faults = Faults {
            header_map_value: Some(v),
            ..Faults::default()
        };
        assert_safe(
            "jwks header",
            drive(&config, faults, ForeignCrypto::Absent, ok_jwks()),
        );
    }
}

/// A foreign function that answers garbage, or "valid" to everything: the
/// start-up probe refuses it, and verification stays in wasm (a bad
/// signature is still a 401).
#[test]
fn lying_or_garbage_host_crypto() {
    need_module!();
    let config = local_config(json!({}));
    let answers: Vec<Vec<u8>> = vec![
        vec![0x08, 0x01], // result: true, always
        vec![0x08],
        vec![0xff; 32],
        Vec::new(),
        vec![0x12, 0xff, 0xff, 0xff, 0xff, 0x0f],
        noise(3, 1 << 16),
    ];
    for a in answers {
        let faults = Faults {
            foreign_result: Some(a.clone()),
            ..Faults::default()
        };
        let run = assert_safe(
            &format!("foreign {:?}", &a[..a.len().min(6)]),
            drive(&config, faults, ForeignCrypto::Rsa, None),
        );
        assert_eq!(run.replies[0].1, Action::Continue, "valid token: {run:?}");
        assert_eq!(run.replies[2].2, Some(401), "bad signature: {run:?}");
    }
}

/// Shared data another VM supposedly wrote, as garbage: no trap, no pass.
#[test]
fn garbage_shared_data() {
    need_module!();
    for (config_name, config) in configs() {
        for (i, v) in [
            Vec::new(),
            vec![0xff; 10],
            noise(1, 1 << 16),
            b"{\"keys\":[]}".to_vec(),
        ]
        .into_iter()
        .enumerate()
        {
            for cas in [0, 1, u32::MAX] {
                let faults = Faults {
                    shared_data: Some((v.clone(), cas)),
                    ..Faults::default()
                };
                assert_safe(
                    &format!("{config_name}: shared data {i}, cas {cas}"),
                    drive(&config, faults, ForeignCrypto::Absent, ok_jwks()),
                );
            }
        }
    }
}

/// A clock at the epoch or at the end of time.
#[test]
fn extreme_clocks() {
    need_module!();
    for (config_name, config) in configs() {
        for t in [0, 1, u64::MAX, i64::MAX as u64 + 1] {
            let faults = Faults {
                time: Some(t),
                ..Faults::default()
            };
            let run = assert_safe(
                &format!("{config_name}: time {t}"),
                drive(&config, faults, ForeignCrypto::Absent, ok_jwks()),
            );
            assert_ne!(
                run.replies[0].1,
                Action::Continue,
                "{config_name}: time {t}: a token outside its lifetime passed"
            );
        }
    }
}
