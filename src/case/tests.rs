use super::*;

#[test]
fn both_directions() {
    assert_eq!(snake("fromHeaders"), "from_headers");
    assert_eq!(snake("from_headers"), "from_headers");
    assert_eq!(snake("typedPerFilterConfig"), "typed_per_filter_config");
    assert_eq!(camel("from_headers"), "fromHeaders");
    assert_eq!(camel("fromHeaders"), "fromHeaders");
    assert_eq!(camel("typed_per_filter_config"), "typedPerFilterConfig");
    assert_eq!(camel("audiences"), "audiences");
    assert_eq!(snake("audiences"), "audiences");
}

#[test]
fn a_field_name_comes_back_from_its_json_name() {
    for name in [
        "jwks_uri",
        "cache_duration",
        "extract_only_without_validation",
        "virtual_hosts",
        "a",
    ] {
        assert_eq!(snake(&camel(name)), name);
        assert_eq!(camel(&snake(&camel(name))), camel(name));
    }
}

#[test]
fn camel_spelling_is_matched_exactly() {
    for (key, name, want) in [
        ("failClosed", "fail_closed", true),
        ("fail_closed", "fail_closed", false),
        ("failclosed", "fail_closed", false),
        ("FailClosed", "fail_closed", false),
        ("failClose", "fail_closed", false),
        ("failClosedX", "fail_closed", false),
        ("uri", "uri", true),
        ("jwtCacheSize", "jwt_cache_size", true),
    ] {
        assert_eq!(is_camel_of(key, name), want, "{key} {name}");
        assert_eq!(camel(name) == key, want, "{key} {name}");
    }
}
