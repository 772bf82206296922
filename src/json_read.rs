//! The reader the configuration types are filled by: a parsed JSON tree
//! walked with its JSON path known at every step, so each error names the
//! field at fault (`providers.a.remote_jwks.http_uri`).
//!
//! An [`Obj`] is one JSON object read as a proto message: its fields are
//! given by their snake_case names and the lowerCamelCase spelling is
//! accepted too (proto3 JSON accepts both); a member that is neither is an
//! "unknown field", and both spellings of one field a "duplicate field".
//! The typed readers (`string`, `boolean`, `u32`, lists, maps, closed sets
//! of names) are plain functions of a value and its path, so the code they
//! compile to is small and shared; messages keep serde's wording.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::case::{camel, is_camel_of};
use crate::diag::{ConfigError, Empty};

/// A value read from the configuration, or the first problem found.
pub(crate) type Read<T> = Result<T, ConfigError>;

/// A reader of one value: the value and its JSON path.
pub(crate) type ReadFn<T> = fn(&Value, &str) -> Read<T>;

fn error(path: &str, message: String) -> ConfigError {
    ConfigError {
        path: path.to_string(),
        message,
    }
}

/// The path of member `name` of the object at `path`.
pub(crate) fn member_path(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// serde_json's words for what a value is (`integer `5``, `map`).
fn what(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Number(n) if n.is_f64() => format!("floating point `{n}`"),
        Value::Number(n) => format!("integer `{n}`"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "sequence".into(),
        Value::Object(_) => "map".into(),
    }
}

/// "invalid type: integer `5`, expected a string".
pub(crate) fn invalid_type(v: &Value, path: &str, expected: &str) -> ConfigError {
    error(
        path,
        format!("invalid type: {}, expected {expected}", what(v)),
    )
}

/// A JSON string.
pub(crate) fn string(v: &Value, path: &str) -> Read<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        _ => Err(invalid_type(v, path, "a string")),
    }
}

/// A JSON boolean.
pub(crate) fn boolean(v: &Value, path: &str) -> Read<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        _ => Err(invalid_type(v, path, "a boolean")),
    }
}

/// A non-negative integer of at most `max`; `name` is its type (`u32`).
fn unsigned(v: &Value, path: &str, max: u64, name: &str) -> Read<u64> {
    match v {
        Value::Number(n) if n.is_u64() || n.is_i64() => match n.as_u64() {
            Some(x) if x <= max => Ok(x),
            _ => Err(error(
                path,
                format!("invalid value: integer `{n}`, expected {name}"),
            )),
        },
        _ => Err(invalid_type(v, path, name)),
    }
}

/// A JSON integer in `u32`.
pub(crate) fn u32(v: &Value, path: &str) -> Read<u32> {
    unsigned(v, path, u64::from(u32::MAX), "u32").map(|x| u32::try_from(x).unwrap_or(u32::MAX))
}

/// A JSON integer in `u64` (read by the revocation settings only).
#[cfg_attr(not(feature = "revocation"), allow(dead_code))]
pub(crate) fn u64(v: &Value, path: &str) -> Read<u64> {
    unsigned(v, path, u64::MAX, "u64")
}

/// Any JSON value, as written.
pub(crate) fn any(v: &Value, _path: &str) -> Read<Value> {
    Ok(v.clone())
}

/// An empty proto message (`{}`): any member is an unknown field.
pub(crate) fn empty(v: &Value, path: &str) -> Read<Empty> {
    Obj::new(v, path, &[]).map(|_| Empty {})
}

#[inline(never)] // one copy per type, not one per field
/// A JSON array, each element read by `read` at `path[i]`.
pub(crate) fn list<T>(v: &Value, path: &str, read: ReadFn<T>) -> Read<Vec<T>> {
    let items = array(v, path)?;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        out.push(read(item, &format!("{path}[{i}]"))?);
    }
    Ok(out)
}

fn array<'a>(v: &'a Value, path: &str) -> Read<&'a Vec<Value>> {
    match v {
        Value::Array(items) => Ok(items),
        _ => Err(invalid_type(v, path, "a sequence")),
    }
}

/// A list of strings.
pub(crate) fn strings(v: &Value, path: &str) -> Read<Vec<String>> {
    list(v, path, string)
}

#[inline(never)] // one copy per type, not one per field
/// A JSON object as a map from member name to a value read by `read` at
/// `path.name`.
pub(crate) fn map<T>(v: &Value, path: &str, read: ReadFn<T>) -> Read<BTreeMap<String, T>> {
    let Value::Object(members) = v else {
        return Err(invalid_type(v, path, "a map"));
    };
    let mut out = BTreeMap::new();
    for (k, item) in members {
        out.insert(k.clone(), read(item, &member_path(path, k))?);
    }
    Ok(out)
}

/// The index in `names` of the JSON string `v`: a closed set of names.
/// "unknown value "x": expected "a" or "b"" otherwise.
pub(crate) fn name_index(v: &Value, path: &str, names: &[&str]) -> Read<usize> {
    let Value::String(s) = v else {
        return Err(invalid_type(v, path, "a string"));
    };
    names
        .iter()
        .position(|n| n == s)
        .ok_or_else(|| unknown_value(path, s, names))
}

/// One of `values`, named by the same index in `names`.
pub(crate) fn one_of<T: Copy>(v: &Value, path: &str, names: &[&str], values: &[T]) -> Read<T> {
    let i = name_index(v, path, names)?;
    values
        .get(i)
        .copied()
        .ok_or_else(|| unknown_value(path, "", names))
}

/// "unknown value "x": expected "a", "b" or "c"".
pub(crate) fn unknown_value(path: &str, name: &str, names: &[&str]) -> ConfigError {
    let quoted: Vec<String> = names.iter().map(|e| format!("{e:?}")).collect();
    let list = match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.concat(),
    };
    error(path, format!("unknown value {name:?}: expected {list}"))
}

/// "unknown field `x`, expected one of `a`, `b`, `bC`" (serde's wording:
/// each field, then its camelCase spelling when it differs).
fn unknown_field(path: &str, key: &str, fields: &[&str]) -> ConfigError {
    let mut names: Vec<String> = Vec::new();
    for f in fields {
        names.push(format!("`{f}`"));
        let c = camel(f);
        if c != *f {
            names.push(format!("`{c}`"));
        }
    }
    let expected = match names.as_slice() {
        [] => "there are no fields".to_string(),
        [one] => format!("expected {one}"),
        [a, b] => format!("expected {a} or {b}"),
        all => format!("expected one of {}", all.join(", ")),
    };
    error(
        &member_path(path, key),
        format!("unknown field `{key}`, {expected}"),
    )
}

/// One JSON object read as a proto message with the fields `fields`
/// (snake_case names; the lowerCamelCase spelling is accepted too).
pub(crate) struct Obj<'a> {
    path: String,
    fields: &'static [&'static str],
    values: Vec<Option<&'a Value>>,
}

impl<'a> Obj<'a> {
    /// `v` (at `path`) as an object whose members are all among `fields`.
    pub(crate) fn new(v: &'a Value, path: &str, fields: &'static [&'static str]) -> Read<Self> {
        let Value::Object(members) = v else {
            return Err(invalid_type(v, path, "an object"));
        };
        let mut values: Vec<Option<&'a Value>> = vec![None; fields.len()];
        for (key, value) in members {
            let Some(i) = fields
                .iter()
                .position(|f| *f == key.as_str() || is_camel_of(key, f))
            else {
                return Err(unknown_field(path, key, fields));
            };
            match values.get_mut(i) {
                Some(slot @ None) => *slot = Some(value),
                _ => {
                    let name = fields.get(i).copied().unwrap_or_default();
                    return Err(error(path, format!("duplicate field `{name}`")));
                }
            }
        }
        Ok(Obj {
            path: path.to_string(),
            fields,
            values,
        })
    }

    /// Field `name` as written (`null` included) and its path; `None` when absent.
    fn get(&self, name: &str) -> Option<(&'a Value, String)> {
        let i = self.fields.iter().position(|f| *f == name)?;
        let v = self.values.get(i).copied().flatten()?;
        Some((v, member_path(&self.path, name)))
    }

    #[inline(never)] // one copy per type, not one per field
    /// An optional field: `None` when absent or `null`.
    pub(crate) fn opt<T>(&self, name: &str, read: ReadFn<T>) -> Read<Option<T>> {
        match self.get(name) {
            Some((v, path)) if !v.is_null() => read(v, &path).map(Some),
            _ => Ok(None),
        }
    }

    #[inline(never)] // one copy per type, not one per field
    /// A field with a default: `T::default()` when absent (`null` is read,
    /// and refused, as the type's reader says).
    pub(crate) fn or_default<T: Default>(&self, name: &str, read: ReadFn<T>) -> Read<T> {
        match self.get(name) {
            Some((v, path)) => read(v, &path),
            None => Ok(T::default()),
        }
    }

    #[inline(never)] // one copy per type, not one per field
    /// A required field: "missing field `name`" at this object's path when absent.
    pub(crate) fn req<T>(&self, name: &str, read: ReadFn<T>) -> Read<T> {
        match self.get(name) {
            Some((v, path)) => read(v, &path),
            None => Err(error(&self.path, format!("missing field `{name}`"))),
        }
    }
}

#[cfg(test)]
mod tests;
