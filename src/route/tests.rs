use super::*;

#[test]
fn per_route_from_metadata_values() {
    assert_eq!(per_route(None, None), None);
    assert_eq!(
        per_route(Some(b"admin"), None),
        Some(PerRoute::Name("admin".into()))
    );
    // requirement_name wins over disabled, as a route sets only one.
    assert_eq!(
        per_route(Some(b"admin"), Some(&[1])),
        Some(PerRoute::Name("admin".into()))
    );
    assert_eq!(per_route(None, Some(&[1])), Some(PerRoute::Disabled));
    // disabled: false, or junk, never means "use the rules".
    assert_eq!(
        per_route(None, Some(&[0])),
        Some(PerRoute::Name(String::new()))
    );
    assert_eq!(
        per_route(None, Some(b"yes")),
        Some(PerRoute::Name(String::new()))
    );
}
