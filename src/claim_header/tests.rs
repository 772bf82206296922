use super::*;
use serde_json::json;

fn text(v: Value) -> Option<String> {
    jwt_authn_text(&v)
}

fn decoded(v: Value) -> String {
    let b = STANDARD.decode(text(v).unwrap()).unwrap();
    String::from_utf8(b).unwrap()
}

#[test]
fn scalars_as_envoy_writes_them() {
    assert_eq!(text(json!("hello")).as_deref(), Some("hello"));
    assert_eq!(text(json!("")), None);
    assert_eq!(text(json!(null)), None);
    assert_eq!(text(json!(true)).as_deref(), Some("true"));
    assert_eq!(text(json!(false)).as_deref(), Some("false"));
    for (n, want) in [
        (json!(42), "42"),
        (json!(0), "0"),
        (json!(-0.0), "0"),
        (json!(-7), "-7.000000"),
        (json!(1.5), "1.500000"),
        (json!(0.1234567891), "0.123457"),
        (json!(1e-7), "0.000000"),
        (json!(1e19), "10000000000000000000"),
        (json!(9223372036854775807u64), "9223372036854775808"),
        (json!(1541815603606036481u64), "1541815603606036480"),
        (json!(1e20), "100000000000000000000.000000"),
        (
            json!(18446744073709551615u64),
            "18446744073709551616.000000",
        ),
    ] {
        assert_eq!(text(n.clone()).as_deref(), Some(want), "{n}");
    }
    let big = text(json!(1e300)).unwrap();
    assert!(big.starts_with("1000000000000000052504760255204420248704468581108159"));
    assert!(big.ends_with("459400540160.000000"));
}

#[test]
fn lists_and_objects_as_base64_of_protobuf_json() {
    assert_eq!(
        text(json!(["str1", "str2"])).as_deref(),
        Some("WyJzdHIxIiwic3RyMiJd")
    );
    assert_eq!(text(json!([])).as_deref(), Some("W10="));
    assert_eq!(text(json!({})).as_deref(), Some("e30="));
    assert_eq!(
        decoded(json!([1, "a", true, null, 2.5])),
        r#"[1,"a",true,null,2.5]"#
    );
    assert_eq!(
        decoded(json!([
            1e20,
            1541815603606036481u64,
            0.1,
            -0.0,
            1e-7,
            100.0,
            -3,
            1e300,
            123456789012.5
        ])),
        "[1e+20,1.5418156036060365e+18,0.1,-0,1e-07,100,-3,1e+300,123456789012.5]"
    );
    assert_eq!(
        decoded(json!({"inner": {"k": "v"}})),
        r#"{"inner":{"k":"v"}}"#
    );
    assert_eq!(
        decoded(json!({"k": [1, {"z": null}]})),
        r#"{"k":[1,{"z":null}]}"#
    );
    assert_eq!(
        decoded(json!([
            "h\u{e9}llo <&> \"q\" \\ /",
            "\u{2028}\u{ff}\u{1F600}",
            "\t"
        ])),
        "[\"h\u{e9}llo \\u003c&\\u003e \\\"q\\\" \\\\ /\",\"\\u2028\u{ff}\u{1F600}\",\"\\t\"]"
    );
    assert_eq!(
        decoded(json!([
            "\u{0}\u{8}\u{b}\u{c}\n\r\u{1f}\u{7f}\u{80}\u{a0}\u{ad}\u{feff}\u{e0001}"
        ])),
        "[\"\\u0000\\b\\u000b\\f\\n\\r\\u001f\\u007f\\u0080\u{a0}\\u00ad\\ufeff\\udb40\\udc01\"]"
    );
}

#[test]
fn printf_g() {
    for (d, p, want) in [
        (1e15, 15, "1e+15"),
        (123456789012345.0, 15, "123456789012345"),
        (0.0001, 15, "0.0001"),
        (0.00001, 15, "1e-05"),
        (-2.5e-300, 15, "-2.5e-300"),
        (0.1, 17, "0.10000000000000001"),
        (1.0 / 3.0, 15, "0.333333333333333"),
    ] {
        assert_eq!(format_g(d, p), want, "{d} {p}");
    }
    assert_eq!(simple_dtoa(0.1), "0.1");
    assert_eq!(simple_dtoa(1.0 / 3.0), "0.33333333333333331");
}
