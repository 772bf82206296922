//! Configuration diagnostics: one problem, with the JSON path of the field at
//! fault. Every module that builds its part of the configuration reports into
//! one list of these; the plugin refuses to start with all of them. Also the
//! readers those modules share for values whose errors must read well
//! (durations, closed sets of names).

use std::fmt;

/// One problem in a configuration: where, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// JSON path of the field, e.g. `providers.okta.local_jwks.inline_string`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// An empty proto message written as `{}` (e.g. `connect_matcher`,
/// `allow_missing`); any field in it is an error.
pub(crate) struct Empty {}

/// Adds one problem to the list.
pub(crate) fn report(
    errors: &mut Vec<ConfigError>,
    path: impl Into<String>,
    message: impl Into<String>,
) {
    errors.push(ConfigError {
        path: path.into(),
        message: message.into(),
    });
}

/// Joins problems into one line (what the plugin logs when it refuses to start).
pub fn describe(errors: &[ConfigError]) -> String {
    let parts: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    parts.join("; ")
}

/// Parses a proto3-JSON duration (`"600s"`, `"1.5s"`) into whole milliseconds.
pub fn parse_duration_ms(s: &str) -> Result<u64, String> {
    let num = s.strip_suffix('s').ok_or_else(|| {
        format!("invalid duration {s:?}: expected a number of seconds like \"600s\"")
    })?;
    let (whole, frac) = match num.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (num, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit());
    if !digits(whole) || frac.is_some_and(|f| !digits(f) || f.len() > 9) {
        return Err(format!(
            "invalid duration {s:?}: expected a non-negative number of seconds like \"600s\""
        ));
    }
    let secs: u64 = whole
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: out of range"))?;
    if secs > 315_576_000_000 {
        return Err(format!("invalid duration {s:?}: out of range"));
    }
    let mut ms_digits = String::from(frac.unwrap_or(""));
    ms_digits.truncate(3);
    while ms_digits.len() < 3 {
        ms_digits.push('0');
    }
    let ms: u64 = ms_digits.parse().unwrap_or(0);
    Ok(secs * 1000 + ms)
}

/// A duration field in milliseconds: `default_ms` when absent; a problem
/// (not a duration, or below `min_ms`) is reported and the default used.
pub(crate) fn duration(
    errors: &mut Vec<ConfigError>,
    path: &str,
    value: Option<&str>,
    default_ms: u64,
    min_ms: u64,
) -> u64 {
    match value.map(parse_duration_ms) {
        None => default_ms,
        Some(Ok(ms)) if ms >= min_ms => ms,
        Some(Ok(_)) => {
            report(errors, path, format!("must be at least {min_ms}ms"));
            default_ms
        }
        Some(Err(e)) => {
            report(errors, path, e);
            default_ms
        }
    }
}

/// A configuration value from a closed set of names, as read from a JSON
/// string (each set's reader is next to its enum, through
/// [`crate::json_read::one_of`]): a wrong JSON type reads "invalid type:
/// integer `5`, expected a string" and an unknown name `unknown value "x":
/// expected "a" or "b"`, both at the field's path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OneOf<T>(pub T);
