//! Configuration diagnostics: one problem, with the JSON path of the field at
//! fault. Every module that builds its part of the configuration reports into
//! one list of these; the plugin refuses to start with all of them.

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

/// Joins problems into one line (what the plugin logs when it refuses to start).
pub fn describe(errors: &[ConfigError]) -> String {
    let parts: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    parts.join("; ")
}
