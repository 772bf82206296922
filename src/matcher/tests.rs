use super::*;

fn rm(p: PathMatcher, cs: bool) -> RouteMatcher {
    RouteMatcher::new(p, cs, vec![])
}

#[test]
fn prefix_exact_regex() {
    let none = |_: &str| None;
    assert!(rm(PathMatcher::Prefix("/api".into()), true).matches("/api/x", none));
    assert!(!rm(PathMatcher::Prefix("/api".into()), true).matches("/API/x", none));
    assert!(rm(PathMatcher::Prefix("/api".into()), false).matches("/API/x", none));
    assert!(rm(PathMatcher::Exact("/a".into()), true).matches("/a", none));
    assert!(!rm(PathMatcher::Exact("/a".into()), true).matches("/ab", none));
    let re = Regex::new("^(?:/v[0-9]+/items)$").unwrap();
    assert!(rm(PathMatcher::Regex(re), true).matches("/v2/items", none));
}

#[test]
fn path_only_strips_query_and_fragment() {
    assert_eq!(path_only("/a?b=c"), "/a");
    assert_eq!(path_only("/a#x"), "/a");
    assert_eq!(path_only("/a"), "/a");
}

#[test]
fn header_matchers() {
    let m = HeaderMatcher::new("x".into(), StringMatch::Exact("v".into(), false), false);
    assert!(m.matches(Some("v")));
    assert!(!m.matches(Some("V")));
    assert!(!m.matches(None));
    let inv = HeaderMatcher::new("x".into(), StringMatch::Exact("v".into(), false), true);
    assert!(inv.matches(Some("w")));
    assert!(!inv.matches(None));
    let p = HeaderMatcher::new("x".into(), StringMatch::Present(true), false);
    assert!(p.matches(Some("")));
    assert!(!p.matches(None));
    let ab = HeaderMatcher::new("x".into(), StringMatch::Present(false), false);
    assert!(ab.matches(None));
    let s = HeaderMatcher::new("x".into(), StringMatch::Suffix("ZZ".into(), true), false);
    assert!(s.matches(Some("aazz")));
    assert!(!s.matches(Some("z")));
    let c = HeaderMatcher::new("x".into(), StringMatch::Contains("Mid".into(), true), false);
    assert!(c.matches(Some("xxmidxx")));
}

#[test]
fn repeated_headers_match_when_any_value_does() {
    // As Envoy's route header matching: any value, in any order; inverted,
    // no value; absent, no value matcher matches.
    let m = HeaderMatcher::new(
        "x".into(),
        StringMatch::Exact("public".into(), false),
        false,
    );
    assert!(m.matches_all(["internal", "public"]));
    assert!(m.matches_all(["public", "internal"]));
    assert!(m.matches_all(["", "public"]));
    assert!(!m.matches_all(["internal", "internal"]));
    assert!(!m.matches_all(["internal,public"]));
    assert!(!m.matches_all([]));
    let inv = HeaderMatcher::new(
        "x".into(),
        StringMatch::Exact("internal".into(), false),
        true,
    );
    assert!(!inv.matches_all(["internal", "public"]));
    assert!(!inv.matches_all(["public", "internal"]));
    assert!(inv.matches_all(["public", "public"]));
    assert!(!inv.matches_all([]));
    let p = HeaderMatcher::new("x".into(), StringMatch::Prefix("pub".into(), false), false);
    assert!(p.matches_all(["internal", "public"]));
    let present = HeaderMatcher::new("x".into(), StringMatch::Present(true), true);
    assert!(!present.matches_all(["a", "b"]));
    assert!(present.matches_all([]));
    let rm = RouteMatcher::new(PathMatcher::Prefix("/".into()), true, vec![m]);
    let headers = [("x", "internal"), ("x", "public")];
    assert!(rm.matches("/", |name: &str| headers
        .iter()
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| *v)
        .collect::<Vec<_>>()));
}

#[test]
fn multibyte_boundaries_do_not_panic() {
    let m = HeaderMatcher::new("x".into(), StringMatch::Prefix("é".into(), false), false);
    assert!(!m.matches(Some("e")));
    assert!(!m.matches(Some("")));
    let s = HeaderMatcher::new("x".into(), StringMatch::Suffix("a".into(), false), false);
    assert!(!s.matches(Some("é")));
}

#[test]
fn path_separated_prefix() {
    let none = |_: &str| None;
    let m = rm(PathMatcher::Separated("/api".into()), true);
    for (path, want) in [
        ("/api", true),
        ("/api/", true),
        ("/api/x", true),
        ("/apix", false),
        ("/api-v2", false),
        ("/API/x", false),
        ("/ap", false),
    ] {
        assert_eq!(m.matches(path, none), want, "{path}");
    }
    assert!(rm(PathMatcher::Separated("/api".into()), false).matches("/API/x", none));
}

#[test]
fn query_parameters_first_value_as_sent() {
    let q = |name: &str, value: Option<StringMatch>| {
        RouteMatcher::new(PathMatcher::Prefix("/".into()), true, vec![]).with_query(vec![
            QueryMatcher {
                name: name.into(),
                value,
            },
        ])
    };
    let none = |_: &str| None;
    let exact = q("mode", Some(StringMatch::Exact("secure".into(), false)));
    assert!(exact.matches_request("/q?mode=secure", none));
    assert!(exact.matches_request("/q?a=1&mode=secure", none));
    assert!(!exact.matches_request("/q?mode=other&mode=secure", none));
    assert!(exact.matches_request("/q?mode=secure&mode=other", none));
    assert!(!exact.matches_request("/q?mode=sec%75re", none));
    assert!(!exact.matches_request("/q", none));
    let present = q("debug", None);
    assert!(present.matches_request("/q?debug", none));
    assert!(present.matches_request("/q?debug=", none));
    assert!(!present.matches_request("/q?debugx=1", none));
    assert_eq!(first_query_value("/q?a=1&b", "b"), Some(""));
    assert_eq!(first_query_value("/q", "a"), None);
}

#[test]
fn connect_matcher_matches_connect_requests_only() {
    let m = rm(PathMatcher::Connect, true);
    assert!(m.matches("", |n: &str| (n == ":method").then_some("CONNECT")));
    assert!(!m.matches("/x", |n: &str| (n == ":method").then_some("GET")));
}
