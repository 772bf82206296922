use super::*;

fn fetch(path: &str) -> FetchRequest {
    FetchRequest {
        cluster: "idp".into(),
        authority: "idp.test".into(),
        path: path.into(),
        scheme: "http",
        timeout_ms: 1_000,
        uri: format!("http://idp.test{path}"),
    }
}

#[test]
fn calls_get_increasing_tokens_and_a_fetch_is_a_get() {
    let mut host = FakeHost::default();
    assert_eq!(host.dispatch(&fetch("/a")), Ok(1));
    let post = FeedCall {
        request: fetch("/b"),
        method: "POST",
        headers: vec![("content-type", "application/json".into())],
        body: b"{}".to_vec(),
    };
    assert_eq!(host.dispatch_call(&post), Ok(2));
    assert_eq!(host.calls.len(), 2);
    assert_eq!(host.calls[0].1.method, "GET");
    assert!(host.calls[0].1.headers.is_empty());
    assert_eq!(host.last_call(), (2, post));
    assert_eq!(host.last_fetch().1.path, "/b");
    host.refuse_dispatch = Some("host status 2".into());
    assert_eq!(host.dispatch(&fetch("/c")), Err("host status 2".into()));
    assert_eq!(host.calls.len(), 2, "a refused call is not recorded");
}

#[test]
fn the_response_is_what_the_test_set() {
    let mut host = FakeHost::default();
    host.answer_with(Some("200"), &[("etag", "\"v1\"")], "hello");
    assert_eq!(host.response_header(":status").as_deref(), Some("200"));
    assert_eq!(host.response_header("etag").as_deref(), Some("\"v1\""));
    assert_eq!(host.response_body(3), b"hel");
    assert_eq!(host.body_reads.get(), 1);
    host.answer(None, "");
    assert_eq!(host.response_header(":status"), None);
    assert_eq!(host.response_header("etag"), None, "answer clears headers");
}

#[test]
fn shared_data_logs_and_counters() {
    let mut host = FakeHost::default();
    assert!(host.shared_set("k", b"v", None));
    let (v, tag) = host.shared_get("k");
    assert_eq!(v.as_deref(), Some(&b"v"[..]));
    assert!(host.shared_set("k", b"w", tag));
    assert!(!host.shared_set("k", b"x", tag), "a stale tag loses");
    host.log(Level::Warn, "fetch failed");
    assert!(host.logged("failed"));
    assert!(!host.logged("installed"));
    let name = stat_name("jwt_filter", "x_total", &[("provider", "idp")]);
    let id = host.define(MetricKind::Counter, &name).unwrap();
    assert_eq!(host.counter(&name), 0);
    host.increment(id, 2);
    assert_eq!(host.counter_labeled("x_total", &[("provider", "idp")]), 2);
    assert_eq!(host.gauge(&name), Some(2));
}
