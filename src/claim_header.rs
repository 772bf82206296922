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
mod tests;
