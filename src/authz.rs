//! Per-rule authorization after authentication: `required_scopes`,
//! `required_claims` and rule-level `audiences`, checked against the verified
//! claims of the token(s) that satisfied the rule's requirement. Also the
//! rule/top-level `mode` (enforce or report).
//!
//! Semantics: the rule is satisfied when ONE accepted token passes the rule's
//! audiences, carries every required scope, and matches every required claim
//! (checks are never combined across two tokens, so two identities cannot be
//! mixed to gain access).

use serde_json::{Map, Value};

use crate::diag::{ConfigError, OneOf};
use crate::error::AuthError;
use crate::json_read::{self as read, Obj, Read};
use crate::token::{self, claim_at, MAX_CLAIM_PATH_SEGMENTS};

/// Bounds on authorization config.
pub const MAX_REQUIRED_SCOPES: usize = 64;
pub const MAX_REQUIRED_CLAIMS: usize = 32;
pub const MAX_CLAIM_VALUES: usize = 256;

/// Whether a rule rejects, or only reports what it would reject
/// (`"enforce"` / `"report"` in the configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Enforce,
    Report,
}

impl Mode {
    /// `"enforce"` or `"report"`, at `path`.
    pub(crate) fn read(v: &Value, path: &str) -> Read<OneOf<Mode>> {
        let names = &["enforce", "report"];
        read::one_of(v, path, names, &[Mode::Enforce, Mode::Report]).map(OneOf)
    }
}

/// The outcome as the `status_header` value shows it upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenStatus {
    /// A token was verified and satisfied the rule.
    Valid,
    /// No token (let through by `allow_missing*`, or report mode).
    Missing,
    /// A token was presented but failed verification (let through by
    /// `allow_missing_or_failed`, or report mode).
    Invalid,
    /// A valid token lacks a required scope or claim (report mode).
    Unauthorized,
    /// No JWT was needed: no rule matched, the rule has no `requires`, or a
    /// CORS preflight was let through. No token was looked at.
    NotRequired,
}

impl TokenStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenStatus::Valid => "valid",
            TokenStatus::Missing => "missing",
            TokenStatus::Invalid => "invalid",
            TokenStatus::Unauthorized => "unauthorized",
            TokenStatus::NotRequired => "not_required",
        }
    }

    /// The status of a request denied (or that would be) for `err`.
    pub fn from_error(err: AuthError) -> TokenStatus {
        match err {
            AuthError::Missing => TokenStatus::Missing,
            AuthError::InsufficientScope => TokenStatus::Unauthorized,
            _ => TokenStatus::Invalid,
        }
    }
}

/// `required_claims[i]` as written.
pub(crate) struct RawRequiredClaim {
    name: String,
    values: Vec<Value>,
    match_kind: Option<OneOf<ClaimMatch>>,
}

impl RawRequiredClaim {
    /// `required_claims[i]` as written, at `path`.
    #[inline(never)] // configuration time: one copy, called from its readers
    pub(crate) fn read(v: &Value, path: &str) -> Read<Self> {
        let o = Obj::new(v, path, &["name", "values", "match"])?;
        Ok(RawRequiredClaim {
            name: o.req("name", read::string)?,
            values: o.req("values", |v, p| read::list(v, p, read::any))?,
            match_kind: o.opt("match", |v, p| {
                let names = &["exact", "prefix"];
                read::one_of(v, p, names, &[ClaimMatch::Exact, ClaimMatch::Prefix]).map(OneOf)
            })?,
        })
    }
}

/// How a required claim value is compared (`match`: `"exact"`, the
/// default, or `"prefix"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimMatch {
    Exact,
    /// String prefix (only string values and claims).
    Prefix,
}

/// One accepted value of a required claim.
#[derive(Clone, Debug, PartialEq)]
pub enum ClaimValue {
    Str(String),
    /// Numbers are compared exactly, so only integers are accepted.
    Int(i128),
    Bool(bool),
}

/// 2^53: from it up, a number written with a fraction or an exponent is a
/// double that stands for more than one integer (`9007199254740992.5` reads
/// as 2^53), so it cannot be compared exactly.
const MAX_EXACT_FLOAT: f64 = 9_007_199_254_740_992.0;

/// A JSON number as the integer it exactly is, if it is one: a JSON integer,
/// or a whole double of magnitude below 2^53 (`2.0`, `1e3`; `1.5e18` stands for many
/// integers, so it is none). Used for required claim values in the config
/// (anything else is refused) and for a token's claims (which then match
/// nothing).
fn exact_int(n: &serde_json::Number) -> Option<i128> {
    if let Some(i) = n.as_i64() {
        return Some(i128::from(i));
    }
    if let Some(u) = n.as_u64() {
        return Some(i128::from(u));
    }
    let f = n.as_f64()?;
    (f.fract() == 0.0 && f.abs() < MAX_EXACT_FLOAT).then_some(f as i128)
}

/// A validated `required_claims` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct RequiredClaim {
    pub path: Vec<String>,
    pub values: Vec<ClaimValue>,
    pub match_kind: ClaimMatch,
}

/// What a rule demands beyond its requirement tree.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuleAuthz {
    pub scopes: Vec<String>,
    /// `scopes` space-joined (the `scope` of the `WWW-Authenticate` challenge);
    /// `None` when no scopes are required.
    pub scope_text: Option<String>,
    pub claims: Vec<RequiredClaim>,
    /// Empty: no rule-level audience check.
    pub audiences: Vec<String>,
}

impl RuleAuthz {
    /// True when the rule asks for nothing beyond authentication.
    pub fn is_empty(&self) -> bool {
        self.scopes.is_empty() && self.claims.is_empty() && self.audiences.is_empty()
    }
}

/// Validates the authorization fields of `rules[i]` (`path` is `rules[i]`).
#[inline(never)] // configuration time: keeps the caller's compiled size (V8 compile memory) down
pub(crate) fn validate(
    path: &str,
    scopes: Vec<String>,
    claims: Vec<RawRequiredClaim>,
    audiences: Vec<String>,
    has_requires: bool,
    errors: &mut Vec<ConfigError>,
) -> RuleAuthz {
    let mut err = |p: String, m: String| {
        errors.push(ConfigError {
            path: p,
            message: m,
        })
    };
    if scopes.len() > MAX_REQUIRED_SCOPES {
        err(
            format!("{path}.required_scopes"),
            format!("at most {MAX_REQUIRED_SCOPES} scopes"),
        );
    }
    for (i, s) in scopes.iter().enumerate() {
        if s.is_empty()
            || s.chars()
                .any(|c| c == ' ' || c == '"' || c == '\\' || c.is_control())
        {
            err(
                format!("{path}.required_scopes[{i}]"),
                "a scope is a non-empty token without spaces, quotes or backslashes".into(),
            );
        }
    }
    if claims.len() > MAX_REQUIRED_CLAIMS {
        err(
            format!("{path}.required_claims"),
            format!("at most {MAX_REQUIRED_CLAIMS} claims"),
        );
    }
    let mut out_claims = Vec::new();
    for (i, c) in claims.into_iter().enumerate() {
        let cpath = format!("{path}.required_claims[{i}]");
        let segments: Vec<String> = c.name.split('.').map(str::to_string).collect();
        let mut ok = true;
        if c.name.is_empty() || segments.iter().any(String::is_empty) {
            err(
                format!("{cpath}.name"),
                "claim name is empty or has an empty segment".into(),
            );
            ok = false;
        } else if segments.len() > MAX_CLAIM_PATH_SEGMENTS {
            err(
                format!("{cpath}.name"),
                "claim name is nested too deeply".into(),
            );
            ok = false;
        }
        let match_kind = c.match_kind.map_or(ClaimMatch::Exact, |m| m.0);
        if c.values.is_empty() {
            err(format!("{cpath}.values"), "list is empty".into());
            ok = false;
        } else if c.values.len() > MAX_CLAIM_VALUES {
            err(
                format!("{cpath}.values"),
                format!("at most {MAX_CLAIM_VALUES} values"),
            );
            ok = false;
        }
        let mut values = Vec::new();
        for (j, v) in c.values.iter().enumerate() {
            let vpath = format!("{cpath}.values[{j}]");
            match (v, match_kind) {
                (Value::String(s), _) => values.push(ClaimValue::Str(s.clone())),
                (Value::Number(n), ClaimMatch::Exact) => match exact_int(n) {
                    Some(i) => values.push(ClaimValue::Int(i)),
                    None => {
                        err(
                            vpath,
                            format!(
                                "{n} is not an exact integer: numbers are compared exactly, \
                                 so a fraction, or an exponent beyond 2^53, cannot be matched"
                            ),
                        );
                        ok = false;
                    }
                },
                (Value::Bool(b), ClaimMatch::Exact) => values.push(ClaimValue::Bool(*b)),
                (Value::Number(_) | Value::Bool(_), ClaimMatch::Prefix) => {
                    err(vpath, "match \"prefix\" needs string values".into());
                    ok = false;
                }
                _ => {
                    err(vpath, "expected a string, number or boolean".into());
                    ok = false;
                }
            }
        }
        if ok {
            out_claims.push(RequiredClaim {
                path: segments,
                values,
                match_kind,
            });
        }
    }
    for (i, a) in audiences.iter().enumerate() {
        if a.is_empty() {
            err(format!("{path}.audiences[{i}]"), "audience is empty".into());
        }
    }
    let authz = RuleAuthz {
        scope_text: (!scopes.is_empty()).then(|| scopes.join(" ")),
        scopes,
        claims: out_claims,
        audiences,
    };
    if !has_requires && !authz.is_empty() {
        err(
            format!("{path}.requires"),
            "required_scopes, required_claims and audiences need a `requires` \
             (which provider's token to check)"
                .into(),
        );
    }
    authz
}

/// Checks the rule against the verified claims of each accepted token: Ok when
/// one token passes everything. Errors: no token at all -> `Missing`; no token
/// with an accepted audience -> `Audience`; otherwise `InsufficientScope`.
/// Returns the index (into `tokens`) of the token that passed.
pub fn check(authz: &RuleAuthz, tokens: &[&Map<String, Value>]) -> Result<usize, AuthError> {
    if authz.is_empty() {
        return Ok(0);
    }
    let mut best = AuthError::Missing;
    for (i, claims) in tokens.iter().enumerate() {
        if token::check_audience(claims, &authz.audiences).is_err() {
            if best == AuthError::Missing {
                best = AuthError::Audience;
            }
            continue;
        }
        if has_scopes(claims, &authz.scopes)
            && authz.claims.iter().all(|c| claim_matches(claims, c))
        {
            return Ok(i);
        }
        best = AuthError::InsufficientScope;
    }
    Err(best)
}

/// Every scope in `required` is granted by the token's `scope` (space-separated
/// string, RFC 8693/9068) or `scp` (string or array of strings) claim.
pub fn has_scopes(claims: &Map<String, Value>, required: &[String]) -> bool {
    if required.is_empty() {
        return true;
    }
    let granted = |want: &str| -> bool {
        let in_value = |v: Option<&Value>| match v {
            Some(Value::String(s)) => s.split(' ').any(|g| g == want),
            Some(Value::Array(items)) => items.iter().any(|g| g.as_str() == Some(want)),
            _ => false,
        };
        // `scope` is defined as a string; `scp` is seen both ways in the wild.
        let scope = match claims.get("scope") {
            Some(v @ Value::String(_)) => Some(v),
            _ => None,
        };
        in_value(scope) || in_value(claims.get("scp"))
    };
    required.iter().all(|s| granted(s))
}

/// The claim at the path equals (or, for an array claim, contains) one of the
/// accepted values.
pub fn claim_matches(claims: &Map<String, Value>, req: &RequiredClaim) -> bool {
    let Some(v) = claim_at(claims, &req.path) else {
        return false;
    };
    match v {
        Value::Array(items) => items.iter().any(|item| scalar_matches(item, req)),
        other => scalar_matches(other, req),
    }
}

fn scalar_matches(v: &Value, req: &RequiredClaim) -> bool {
    req.values
        .iter()
        .any(|want| match (want, v, req.match_kind) {
            (ClaimValue::Str(w), Value::String(s), ClaimMatch::Exact) => s == w,
            (ClaimValue::Str(w), Value::String(s), ClaimMatch::Prefix) => s.starts_with(w.as_str()),
            (ClaimValue::Int(w), Value::Number(n), ClaimMatch::Exact) => exact_int(n) == Some(*w),
            (ClaimValue::Bool(w), Value::Bool(b), ClaimMatch::Exact) => b == w,
            _ => false,
        })
}

#[cfg(test)]
mod tests;
