use super::*;

#[test]
fn missing_has_no_error_code() {
    let v = www_authenticate("http://h/p", AuthError::Missing, None);
    assert_eq!(v, "Bearer realm=\"http://h/p\"");
}

#[test]
fn invalid_token_challenge() {
    let v = www_authenticate("http://h/p", AuthError::Expired, None);
    assert_eq!(
        v,
        "Bearer realm=\"http://h/p\", error=\"invalid_token\", error_description=\"token expired\""
    );
}

#[test]
fn insufficient_scope_names_scope() {
    let v = www_authenticate("r", AuthError::InsufficientScope, Some("read write"));
    assert!(v.contains("error=\"insufficient_scope\""));
    assert!(v.ends_with("scope=\"read write\""));
    assert_eq!(AuthError::InsufficientScope.status(), 403);
}

#[test]
fn realm_is_escaped() {
    let v = www_authenticate("a\"b\\c\r\n", AuthError::Missing, None);
    assert_eq!(v, "Bearer realm=\"a\\\"b\\\\c\"");
}

#[test]
fn every_error_is_4xx_with_distinct_reason() {
    let mut seen = std::collections::HashSet::new();
    for e in AuthError::ALL {
        assert!(e.status() == 401 || e.status() == 403);
        assert!(seen.insert(e.reason()), "duplicate reason {}", e.reason());
        assert!(!e.body().is_empty());
    }
}
