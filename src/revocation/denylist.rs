//! The deny-list document: the format a deny-list server serves, and the
//! form in which the rules a Shared Signals receiver has gathered are shared
//! between workers.
//!
//! ```json
//! {
//!   "version": 1,
//!   "entries": [
//!     {"kind": "jti",   "value": "4f1c...", "expires": 1767229200},
//!     {"kind": "sub",   "value": "user-42", "expires": 1767229200, "issued_before": 1767225600},
//!     {"kind": "sid",   "value": "s-9",     "expires": 1767229200, "not_before": 1767225000},
//!     {"kind": "email", "value": "a@example.com", "expires": 1767229200}
//!   ]
//! }
//! ```
//!
//! Times are seconds since the epoch. `kind` is `jti`, `sub`, `sid` or
//! `email` (the claim the rule matches), `expires` is required, `not_before`
//! and `issued_before` are optional. Read strictly: a repeated member name at
//! any depth, an unknown member, a wrong type, an unknown kind, an empty or
//! over-long value, or a `version` other than 1 refuses the whole document.
//! Entries already expired are skipped; entries past the set's bounds are
//! refused (counted, the rest applies).

use serde::{Deserialize, Serialize};

use super::{Entry, Kind, Refused, RuleSet, MAX_VALUE_BYTES};
use crate::strict_json::UniqueValue;

/// The only document version understood.
pub const VERSION: u64 = 1;
/// Largest document accepted (bytes).
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024 * 1024;

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Document {
    version: u64,
    entries: Vec<DocEntry>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct DocEntry {
    kind: String,
    value: String,
    expires: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    not_before: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    issued_before: Option<u64>,
}

/// A document read into a rule set.
#[derive(Debug)]
pub struct Parsed {
    pub set: RuleSet,
    /// Entries skipped because they had expired.
    pub expired: usize,
    /// Entries refused because the set's bounds were reached.
    pub refused: usize,
}

/// Reads a document into a set bounded by `max_entries` / `max_bytes`.
pub fn parse(
    body: &[u8],
    max_entries: usize,
    max_bytes: usize,
    now: u64,
) -> Result<Parsed, String> {
    if body.len() > MAX_DOCUMENT_BYTES {
        return Err(format!(
            "document of {} bytes exceeds the {MAX_DOCUMENT_BYTES} byte limit",
            body.len()
        ));
    }
    let UniqueValue(value) = serde_json::from_slice(body)
        .map_err(|e| format!("not a JSON document (or a member name repeats): {e}"))?;
    let doc: Document =
        serde_json::from_value(value).map_err(|e| format!("not a deny list: {e}"))?;
    if doc.version != VERSION {
        return Err(format!(
            "version {} is not supported (expected {VERSION})",
            doc.version
        ));
    }
    let mut set = RuleSet::new(max_entries, max_bytes);
    let (mut expired, mut refused) = (0, 0);
    for (i, e) in doc.entries.iter().enumerate() {
        let kind = Kind::from_name(&e.kind).ok_or_else(|| {
            format!(
                "entries[{i}].kind: {:?} is not one of jti, sub, sid, email",
                e.kind.chars().take(32).collect::<String>()
            )
        })?;
        if e.value.is_empty() || e.value.len() > MAX_VALUE_BYTES {
            return Err(format!(
                "entries[{i}].value: must be 1 to {MAX_VALUE_BYTES} bytes"
            ));
        }
        let entry = Entry {
            expires: e.expires,
            not_before: e.not_before.unwrap_or(0),
            issued_before: e.issued_before,
        };
        match set.insert(kind, &e.value, entry, now) {
            Ok(()) => {}
            Err(Refused::Expired) => expired += 1,
            Err(Refused::Full) => refused += 1,
            Err(Refused::BadValue) => {
                return Err(format!("entries[{i}].value: not accepted"));
            }
        }
    }
    Ok(Parsed {
        set,
        expired,
        refused,
    })
}

/// Writes a set out as a document (what [`parse`] reads back).
pub fn encode(set: &RuleSet) -> String {
    let entries = set
        .entries()
        .map(|(kind, value, e)| DocEntry {
            kind: kind.name().to_string(),
            value: value.to_string(),
            expires: e.expires,
            not_before: (e.not_before > 0).then_some(e.not_before),
            issued_before: e.issued_before,
        })
        .collect();
    serde_json::to_string(&Document {
        version: VERSION,
        entries,
    })
    .unwrap_or_else(|_| format!("{{\"version\":{VERSION},\"entries\":[]}}"))
}
