use super::*;
use serde_json::json;

fn fields_of(v: &Value) -> Read<(Option<String>, bool, Option<u32>)> {
    let o = Obj::new(v, "a.b", &["name", "fail_closed", "max_events"])?;
    Ok((
        o.opt("name", string)?,
        o.or_default("fail_closed", boolean)?,
        o.opt("max_events", u32)?,
    ))
}

#[test]
fn snake_and_camel_spellings_are_read() {
    let v = json!({"name": "n", "failClosed": true, "max_events": 7});
    assert_eq!(fields_of(&v).unwrap(), (Some("n".into()), true, Some(7)));
    let v = json!({"fail_closed": false, "maxEvents": null});
    assert_eq!(fields_of(&v).unwrap(), (None, false, None));
}

#[test]
fn unknown_field_names_its_path_and_the_fields() {
    let e = fields_of(&json!({"nme": "x"})).unwrap_err();
    assert_eq!(e.path, "a.b.nme");
    assert_eq!(
        e.message,
        "unknown field `nme`, expected one of `name`, `fail_closed`, `failClosed`, \
         `max_events`, `maxEvents`"
    );
    let e = empty(&json!({"x": 1}), "m.connect_matcher").err().unwrap();
    assert_eq!(e.path, "m.connect_matcher.x");
    assert_eq!(e.message, "unknown field `x`, there are no fields");
    let e = Obj::new(&json!({"y": 1}), "", &["x"]).err().unwrap();
    assert_eq!(
        (e.path.as_str(), e.message.as_str()),
        ("y", "unknown field `y`, expected `x`")
    );
}

#[test]
fn both_spellings_of_one_field_are_a_duplicate() {
    let e = fields_of(&json!({"fail_closed": true, "failClosed": true})).unwrap_err();
    assert_eq!(e.path, "a.b");
    assert_eq!(e.message, "duplicate field `fail_closed`");
}

#[test]
fn wrong_types_and_ranges_read_as_serde_wrote_them() {
    let cases = [
        (
            json!({"name": 5}),
            "a.b.name",
            "invalid type: integer `5`, expected a string",
        ),
        (json!({"name": null}), "", ""),
        (
            json!({"fail_closed": "yes"}),
            "a.b.fail_closed",
            "invalid type: string \"yes\", expected a boolean",
        ),
        (
            json!({"fail_closed": null}),
            "a.b.fail_closed",
            "invalid type: null, expected a boolean",
        ),
        (
            json!({"max_events": -1}),
            "a.b.max_events",
            "invalid value: integer `-1`, expected u32",
        ),
        (
            json!({"max_events": 4294967296u64}),
            "a.b.max_events",
            "invalid value: integer `4294967296`, expected u32",
        ),
        (
            json!({"max_events": 1.5}),
            "a.b.max_events",
            "invalid type: floating point `1.5`, expected u32",
        ),
        (
            json!({"max_events": []}),
            "a.b.max_events",
            "invalid type: sequence, expected u32",
        ),
        (
            json!([1]),
            "a.b",
            "invalid type: sequence, expected an object",
        ),
    ];
    for (v, path, message) in cases {
        match fields_of(&v) {
            Ok(_) => assert!(path.is_empty(), "{v} was read"),
            Err(e) => assert_eq!(
                (e.path.as_str(), e.message.as_str()),
                (path, message),
                "{v}"
            ),
        }
    }
    assert_eq!(u32(&json!(4294967295u64), "x").unwrap(), u32::MAX);
    assert_eq!(u64(&json!(u64::MAX), "x").unwrap(), u64::MAX);
}

#[test]
fn required_fields_lists_and_maps() {
    let doc = json!({"l": ["a", 7], "m": {"k": {}}});
    let o = Obj::new(&doc, "r", &["l", "m", "n"]).unwrap();
    let e = o.req("n", string).unwrap_err();
    assert_eq!(
        (e.path.as_str(), e.message.as_str()),
        ("r", "missing field `n`")
    );
    let e = o.req("l", strings).unwrap_err();
    assert_eq!(e.path, "r.l[1]");
    let e = o.req("m", |v, p| map(v, p, string)).unwrap_err();
    assert_eq!(
        (e.path.as_str(), e.message.as_str()),
        ("r.m.k", "invalid type: map, expected a string")
    );
    let m = o.req("m", |v, p| map(v, p, empty)).unwrap();
    assert_eq!(m.keys().collect::<Vec<_>>(), ["k"]);
}

#[test]
fn closed_sets_list_the_names() {
    let names = &["off", "optional", "required"];
    assert_eq!(
        one_of(&json!("optional"), "m", names, &[0, 1, 2]).unwrap(),
        1
    );
    let e = one_of(&json!("on"), "m", names, &[0, 1, 2]).unwrap_err();
    assert_eq!(
        e.message,
        r#"unknown value "on": expected "off", "optional" or "required""#
    );
    let e = one_of(&json!(true), "m", &["a", "b"], &[0, 1]).unwrap_err();
    assert_eq!(e.message, "invalid type: boolean `true`, expected a string");
    let e = one_of(&json!("c"), "m", &["a", "b"], &[0, 1]).unwrap_err();
    assert_eq!(e.message, r#"unknown value "c": expected "a" or "b""#);
}
