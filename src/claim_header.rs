//! A claim's value as `claim_to_headers` writes it, exactly as Envoy's
//! `jwt_authn` does (measured on Envoy 1.40):
//!
//! - a string as is; an empty string writes no header;
//! - `true` / `false`;
//! - a number that is whole and in `[0, 2^64)` as that integer (of the
//!   number's double value: `1541815603606036481` is `1541815603606036480`),
//!   any other number in C's `%f` form (`-7.000000`, `1.500000`, `0.000000`
//!   for `1e-7`);
//! - an array or an object as the standard base64 (padded) of its JSON text
//!   written the way protobuf writes a `google.protobuf.Value`: no spaces,
//!   numbers as `%.15g` (or `%.17g` when that is needed to read back the
//!   same double: `1e+20`, `1.5418156036060365e+18`, `1e-07`), and
//!   protobuf's string escapes (`<` `>` control and format characters as
//!   `\uXXXX`);
//! - `null` writes no header.
//!
//! One difference is left: the members of an object come in name order here,
//! where `jwt_authn` writes them in its hash map's order (which changes from
//! one Envoy process to the next), so no backend can rely on either.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;

/// 2^64 as a double: the first number not written as an integer.
const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;

/// The header text for a claim value; `None` when `jwt_authn` writes no
/// header (null, empty string).
pub fn jwt_authn_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => n.as_f64().map(scalar_number),
        Value::Array(_) | Value::Object(_) => {
            let mut json = String::new();
            write_json(&mut json, v);
            Some(STANDARD.encode(json.as_bytes()))
        }
    }
}

/// A top-level number claim.
fn scalar_number(d: f64) -> String {
    if (0.0..TWO_POW_64).contains(&d) && d.fract() == 0.0 {
        // Exact: whole and in range.
        format!("{}", d as u64)
    } else {
        format!("{d:.6}")
    }
}

/// protobuf's JSON for a `google.protobuf.Value`.
fn write_json(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&simple_dtoa(n.as_f64().unwrap_or(0.0))),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item);
            }
            out.push(']');
        }
        Value::Object(members) => {
            out.push('{');
            for (i, (k, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, k);
                out.push(':');
                write_json(out, item);
            }
            out.push('}');
        }
    }
}

/// Characters protobuf's JSON writer escapes as `\uXXXX` beyond the C0
/// controls: DEL, the C1 controls, `<`, `>`, and Unicode format characters.
fn needs_unicode_escape(c: char) -> bool {
    matches!(
        c as u32,
        0x00..=0x1f
            | 0x3c
            | 0x3e
            | 0x7f..=0x9f
            | 0xad
            | 0x600..=0x603
            | 0x6dd
            | 0x70f
            | 0x17b4..=0x17b5
            | 0x200b..=0x200f
            | 0x2028..=0x202e
            | 0x2060..=0x2064
            | 0x206a..=0x206f
            | 0xfeff
            | 0xfff9..=0xfffb
            | 0xe0001
            | 0xe0020..=0xe007f
    )
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_unicode_escape(c) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `%.15g`, or `%.17g` when the 15-digit form does not read back as `d`.
fn simple_dtoa(d: f64) -> String {
    let short = format_g(d, 15);
    if short.parse::<f64>().ok() == Some(d) {
        short
    } else {
        format_g(d, 17)
    }
}

/// C's `printf("%.{precision}g", d)` for a finite `d`, `precision >= 1`.
fn format_g(d: f64, precision: usize) -> String {
    if d == 0.0 {
        return if d.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    let sci = format!("{:.*e}", precision.saturating_sub(1), d);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let p = precision as i64;
    if exp < -4 || exp >= p {
        let mantissa = strip_fraction_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.unsigned_abs())
    } else {
        let decimals = usize::try_from(p - 1 - exp).unwrap_or(0);
        strip_fraction_zeros(&format!("{d:.decimals$}")).to_string()
    }
}

/// `1.500` -> `1.5`, `2.000` -> `2`, `10` -> `10`.
fn strip_fraction_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
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
            decoded(json!(["\u{0}\u{8}\u{b}\u{c}\n\r\u{1f}\u{7f}\u{80}\u{a0}\u{ad}\u{feff}\u{e0001}"])),
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
}
