//! Configuration diagnostics: one problem, with the JSON path of the field at
//! fault. Every module that builds its part of the configuration reports into
//! one list of these; the plugin refuses to start with all of them.

use std::fmt;

use serde::de::{DeserializeOwned, Error as _, IntoDeserializer};
use serde::{Deserialize, Deserializer};

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

/// Joins problems into one line (what the plugin logs when it refuses to start).
pub fn describe(errors: &[ConfigError]) -> String {
    let parts: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    parts.join("; ")
}

/// A configuration value from a closed set of names (an enum deriving
/// `Deserialize`), read from a JSON string. A wrong JSON type reads
/// "invalid type: integer `5`, expected a string" and an unknown name
/// `unknown value "x": expected "a" or "b"`, both at the field's path
/// (serde_json alone reports an enum given a number as only "expected value").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OneOf<T>(pub T);

impl<'de, T: DeserializeOwned> Deserialize<'de> for OneOf<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        T::deserialize(name.into_deserializer())
            .map(OneOf)
            .map_err(|e: NameError| D::Error::custom(e))
    }
}

/// Why a name is not in the set: lists the names that are.
#[derive(Debug)]
struct NameError(String);

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NameError {}

impl serde::de::Error for NameError {
    fn custom<M: fmt::Display>(msg: M) -> Self {
        NameError(msg.to_string())
    }

    fn unknown_variant(name: &str, expected: &'static [&'static str]) -> Self {
        let quoted: Vec<String> = expected.iter().map(|e| format!("{e:?}")).collect();
        let list = match quoted.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => quoted.concat(),
        };
        NameError(format!("unknown value {name:?}: expected {list}"))
    }
}
