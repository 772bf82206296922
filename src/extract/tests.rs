use super::*;

fn req(h: &[(&str, &str)]) -> RequestView {
    RequestView::new(
        h.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn bearer() -> Vec<Location> {
    vec![
        Location::Header {
            name: "authorization".into(),
            prefix: "Bearer ".into(),
        },
        Location::Param("access_token".into()),
    ]
}

#[test]
fn default_bearer_and_query() {
    let r = req(&[(":path", "/x"), ("Authorization", "Bearer abc")]);
    let f = extract(&bearer(), &r).unwrap().unwrap();
    assert_eq!(f.token, "abc");
    assert_eq!(f.locations, [0]);
    let r = req(&[(":path", "/x?a=1&access_token=q%2Eb")]);
    let f = extract(&bearer(), &r).unwrap().unwrap();
    assert_eq!(f.token, "q.b");
    assert_eq!(f.locations, [1]);
}

#[test]
fn scheme_is_case_insensitive_and_whitespace_trimmed() {
    for v in [
        "bearer abc",
        "BEARER abc",
        "Bearer   abc  ",
        "  Bearer abc\t",
    ] {
        let r = req(&[(":path", "/"), ("authorization", v)]);
        assert_eq!(extract(&bearer(), &r).unwrap().unwrap().token, "abc", "{v}");
    }
}

#[test]
fn other_scheme_or_empty_is_missing() {
    for v in ["Basic abc", "Bearer", "Bearer ", "Bearerabc", ""] {
        let r = req(&[(":path", "/"), ("authorization", v)]);
        assert_eq!(extract(&bearer(), &r).unwrap(), None, "{v:?}");
    }
}

#[test]
fn same_token_twice_is_one_different_is_refused() {
    let r = req(&[
        (":path", "/?access_token=abc"),
        ("authorization", "Bearer abc"),
    ]);
    // Found in both places: both are named, so `forward: false` strips both.
    assert_eq!(extract(&bearer(), &r).unwrap().unwrap().locations, [0, 1]);
    let r = req(&[
        (":path", "/?access_token=xyz"),
        ("authorization", "Bearer abc"),
    ]);
    assert_eq!(extract(&bearer(), &r), Err(AuthError::Multiple));
    let r = req(&[
        (":path", "/"),
        ("authorization", "Bearer a"),
        ("authorization", "Bearer b"),
    ]);
    assert_eq!(extract(&bearer(), &r), Err(AuthError::Multiple));
}

#[test]
fn cookies() {
    let locs = vec![Location::Cookie("session".into())];
    let r = req(&[(":path", "/"), ("cookie", "a=1; session=tok; b=2")]);
    assert_eq!(extract(&locs, &r).unwrap().unwrap().token, "tok");
    let r = req(&[
        (":path", "/"),
        ("cookie", "a=1"),
        ("cookie", "session=\"q\""),
    ]);
    assert_eq!(extract(&locs, &r).unwrap().unwrap().token, "q");
    let r = req(&[(":path", "/"), ("cookie", "xsession=1; sessionx=2")]);
    assert_eq!(extract(&locs, &r).unwrap(), None);
    let many: Vec<String> = (0..100).map(|i| format!("c{i}=v{i}")).collect();
    let h = format!("{}; session=deep", many.join("; "));
    let r = req(&[(":path", "/"), ("cookie", &h)]);
    assert_eq!(extract(&locs, &r).unwrap().unwrap().token, "deep");
}

#[test]
fn custom_header_without_prefix() {
    let locs = vec![Location::Header {
        name: "x-jwt".into(),
        prefix: String::new(),
    }];
    let r = req(&[(":path", "/"), ("X-JWT", " t ")]);
    assert_eq!(extract(&locs, &r).unwrap().unwrap().token, "t");
}

#[test]
fn oversized_header_is_too_large() {
    let big = format!("Bearer {}", "a".repeat(MAX_HEADER_VALUE_BYTES));
    let r = req(&[(":path", "/"), ("authorization", &big)]);
    assert_eq!(extract(&bearer(), &r), Err(AuthError::TooLarge));
}

#[test]
fn remove_param_keeps_others() {
    assert_eq!(
        remove_param("/a?access_token=t&b=1", "access_token"),
        "/a?b=1"
    );
    assert_eq!(
        remove_param("/a?b=1&access_token=t", "access_token"),
        "/a?b=1"
    );
    assert_eq!(remove_param("/a?access_token=t", "access_token"), "/a");
    assert_eq!(
        remove_param("/a?access%5Ftoken=t#f", "access_token"),
        "/a#f"
    );
    assert_eq!(remove_param("/a", "access_token"), "/a");
}

#[test]
fn remove_cookie_keeps_others() {
    assert_eq!(
        remove_cookie("a=1; s=t; b=2", "s").as_deref(),
        Some("a=1; b=2")
    );
    assert_eq!(remove_cookie("s=t", "s"), None);
}

#[test]
fn percent_decoding_edge_cases() {
    assert_eq!(percent_decode("a%2"), "a%2");
    assert_eq!(percent_decode("%zz"), "%zz");
    assert_eq!(percent_decode("a+b"), "a b");
    assert_eq!(percent_decode("%ff"), "\u{fffd}");
}

#[test]
fn remove_drops_every_value() {
    let mut r = req(&[(":path", "/"), ("x-a", "1"), ("X-A", "2"), ("x-b", "3")]);
    assert!(r.remove("x-a"));
    assert_eq!(r.header("x-a"), None);
    assert_eq!(r.header("x-b"), Some("3"));
    assert!(!r.remove("x-a"));
}

/// proxy-wasm's serialized header map, as `proxy_get_header_map_pairs` writes it.
fn serialized(h: &[(&[u8], &[u8])]) -> Vec<u8> {
    serialize_pairs(h)
}

#[test]
fn pairs_serialize_in_the_abi_layout() {
    let bytes = serialize_pairs(&[("ab", "c"), ("d", "")]);
    let mut want = Vec::new();
    for n in [2u32, 2, 1, 1, 0] {
        want.extend(n.to_le_bytes());
    }
    want.extend(b"ab\0c\0d\0\0");
    assert_eq!(bytes, want);
    assert_eq!(serialize_pairs::<&str, &str>(&[]), 0u32.to_le_bytes());
    let view = RequestView::from_serialized(bytes);
    assert_eq!(view.header("ab"), Some("c"));
    assert_eq!(view.header("d"), Some(""));
}

#[test]
fn serialized_headers_are_read_in_order_with_repeats() {
    let view = RequestView::from_serialized(serialized(&[
        (b":path", b"/a?b=c"),
        (b"authorization", b"Bearer one"),
        (b"x-empty", b""),
        (b"authorization", b"Bearer two"),
    ]));
    assert_eq!(view.path(), "/a?b=c");
    assert_eq!(view.header("x-empty"), Some(""));
    assert_eq!(
        view.header_all("authorization").collect::<Vec<_>>(),
        ["Bearer one", "Bearer two"]
    );
    assert_eq!(view.header("missing"), None);
}

#[test]
fn serialized_headers_are_lowercased_and_made_text() {
    let view = RequestView::from_serialized(serialized(&[
        (b"X-Token", b"abc"),
        (b"x-bin", b"a\xffb"),
        (b"authorization", b"Bearer t"),
    ]));
    assert_eq!(view.header("x-token"), Some("abc"));
    assert_eq!(view.header("x-bin"), Some("a\u{fffd}b"));
    assert_eq!(view.header("authorization"), Some("Bearer t"));
}

#[test]
fn malformed_serialized_headers_give_an_empty_view() {
    let good = serialized(&[(b"authorization", b"Bearer t")]);
    // Truncated anywhere, a count past the end, a missing NUL.
    for cut in 1..good.len() {
        let view = RequestView::from_serialized(good[..cut].to_vec());
        assert_eq!(view.header("authorization"), None, "cut at {cut}");
    }
    let mut huge = good.clone();
    huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(
        RequestView::from_serialized(huge).header("authorization"),
        None
    );
    let mut no_nul = good.clone();
    let last = no_nul.len() - 1;
    no_nul[last] = b'x';
    assert_eq!(
        RequestView::from_serialized(no_nul).header("authorization"),
        None
    );
    assert_eq!(
        RequestView::from_serialized(Vec::new()).header(":path"),
        None
    );
    assert_eq!(RequestView::from_serialized(Vec::new()).path(), "/");
}

#[test]
fn removing_a_header_keeps_the_others() {
    let mut view = RequestView::from_serialized(serialized(&[
        (b"x-jwt-payload", b"forged"),
        (b"authorization", b"Bearer t"),
        (b"x-jwt-payload", b"forged again"),
    ]));
    assert!(view.remove("x-jwt-payload"));
    assert!(!view.remove("x-jwt-payload"));
    assert_eq!(view.header("x-jwt-payload"), None);
    assert_eq!(view.header("authorization"), Some("Bearer t"));
    let copy = view.clone();
    assert_eq!(copy.header("authorization"), Some("Bearer t"));
}

#[test]
fn every_parameter_and_cookie_is_looked_at() {
    // A second, different token after thousands of parameters is still seen.
    let filler: Vec<String> = (0..5000).map(|i| format!("p{i}=v")).collect();
    let path = format!("/?{}&access_token=other", filler.join("&"));
    let r = req(&[(":path", &path), ("authorization", "Bearer abc")]);
    assert_eq!(extract(&bearer(), &r), Err(AuthError::Multiple));
    let path = format!("/?{}&access_token=abc", filler.join("&"));
    let r = req(&[(":path", &path)]);
    assert_eq!(extract(&bearer(), &r).unwrap().unwrap().token, "abc");
    // Cookies likewise.
    let cookies = vec![Location::Cookie("session".into())];
    let filler: Vec<String> = (0..5000).map(|i| format!("c{i}=v")).collect();
    let header = format!("{}; session=abc", filler.join("; "));
    let r = req(&[(":path", "/"), ("cookie", &header)]);
    assert_eq!(extract(&cookies, &r).unwrap().unwrap().token, "abc");
    let header = format!("session=abc; {}; session=xyz", filler.join("; "));
    let r = req(&[(":path", "/"), ("cookie", &header)]);
    assert_eq!(extract(&cookies, &r), Err(AuthError::Multiple));
}

#[test]
fn an_overlong_path_or_cookie_is_refused_not_cut() {
    let long = format!(
        "/?{}&access_token=abc",
        "p=v&".repeat(MAX_HEADER_VALUE_BYTES / 4)
    );
    let r = req(&[(":path", &long)]);
    assert_eq!(extract(&bearer(), &r), Err(AuthError::TooLarge));
    // A provider that does not read the query does not care.
    let header_only = vec![Location::Header {
        name: "authorization".into(),
        prefix: "Bearer ".into(),
    }];
    let r = req(&[(":path", &long), ("authorization", "Bearer abc")]);
    assert_eq!(extract(&header_only, &r).unwrap().unwrap().token, "abc");
    let cookies = vec![Location::Cookie("session".into())];
    let header = format!("{}session=abc", "c=v; ".repeat(MAX_HEADER_VALUE_BYTES / 5));
    let r = req(&[(":path", "/"), ("cookie", &header)]);
    assert_eq!(extract(&cookies, &r), Err(AuthError::TooLarge));
}
