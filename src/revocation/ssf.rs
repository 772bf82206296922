//! A Shared Signals Framework receiver with poll delivery (RFC 8936): the
//! poll request (acknowledging the SETs received before, reporting those
//! refused), the poll response, Security Event Token checks (RFC 8417: typ
//! `secevent+jwt`, signature by the transmitter's JWKS, issuer, audience),
//! and the mapping of CAEP and RISC events to revocation rules.
//!
//! Events turned into rules (`T`: the event's `event_timestamp`, else the
//! SET's `iat`; each rule expires at `T + rule_lifetime`):
//!
//! | event | rule |
//! | --- | --- |
//! | CAEP `session-revoked` | the session (`sid`) when the subject names one, else every token of the user issued before `T` |
//! | CAEP `credential-change`, `token-claims-change` | every token of the user issued before `T` |
//! | RISC `account-disabled`, `account-purged`, `sessions-revoked` | every token of the user issued before `T` |
//!
//! Subjects (RFC 9493, and SSF's `complex`): `iss_sub` (its `iss` must be the
//! provider's issuer) matches `sub`; `email` matches `email`; a complex
//! subject's `user` is read as above and its `session` (`opaque` id) matches
//! `sid`; `aliases` are each read. `opaque` (outside a session), `account`,
//! `phone_number`, `did` and `uri` match no claim of an access token and are
//! not turned into rules (the event is counted as ignored).

use serde_json::{json, Map, Value};

use super::{Entry, FeedSettings, Kind};
use crate::crypto::jwks::{Alg, KeySet};
use crate::error::AuthError;
use crate::remote_jwks::RemoteJwks;
use crate::strict_json::UniqueMap;
use crate::token;

/// Largest poll response accepted (bytes).
pub const MAX_POLL_RESPONSE_BYTES: usize = 1024 * 1024;
/// Default and largest `max_events` per poll.
pub const DEFAULT_MAX_EVENTS: u32 = 100;
pub const MAX_EVENTS_LIMIT: u32 = 1000;
/// Most acknowledgements and error reports carried to the next poll.
pub const MAX_PENDING_ACKS: usize = 2 * MAX_EVENTS_LIMIT as usize;
/// Most rules one event may produce (aliases, complex subjects).
pub const MAX_RULES_PER_EVENT: usize = 8;

const CAEP: &str = "https://schemas.openid.net/secevent/caep/event-type/";
const RISC: &str = "https://schemas.openid.net/secevent/risc/event-type/";

/// A provider's `ssf` settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SsfSettings {
    /// The poll endpoint (POSTed to) and its schedule and failure policy.
    pub poll: FeedSettings,
    /// The transmitter's JWKS.
    pub jwks: RemoteJwks,
    /// The SETs' `iss`.
    pub issuer: String,
    /// A value the SETs' `aud` must contain.
    pub audience: String,
    /// `maxEvents` asked for per poll.
    pub max_events: u32,
    /// How long a rule from an event lasts (at least the longest lifetime
    /// of the provider's tokens).
    pub rule_lifetime_secs: u64,
    /// `Authorization` header value of the poll request, if the transmitter
    /// wants one.
    pub authorization: Option<String>,
}

/// A rule an event asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub kind: Kind,
    pub value: String,
    pub entry: Entry,
}

/// Why a SET was refused (`reason` label of the refused-SET counter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    /// Not a JWS, claims missing or of the wrong type, `jti` not the key it
    /// was delivered under.
    Malformed,
    /// The header's `typ` is not `secevent+jwt`.
    Type,
    /// No key of the transmitter's JWKS matches the `kid`.
    UnknownKey,
    /// The signature does not verify, or the algorithm is not allowed.
    Signature,
    /// `iss` is not the configured issuer.
    Issuer,
    /// `aud` does not contain the configured audience.
    Audience,
}

impl Reject {
    pub const ALL: [Reject; 6] = [
        Reject::Malformed,
        Reject::Type,
        Reject::UnknownKey,
        Reject::Signature,
        Reject::Issuer,
        Reject::Audience,
    ];

    pub fn reason(self) -> &'static str {
        match self {
            Reject::Malformed => "malformed",
            Reject::Type => "typ",
            Reject::UnknownKey => "unknown_kid",
            Reject::Signature => "signature",
            Reject::Issuer => "issuer",
            Reject::Audience => "audience",
        }
    }

    /// The error code reported back to the transmitter (RFC 8935 section 3).
    pub fn code(self) -> &'static str {
        match self {
            Reject::Malformed | Reject::Type => "invalid_request",
            Reject::UnknownKey => "invalid_key",
            Reject::Signature => "authentication_failed",
            Reject::Issuer => "invalid_issuer",
            Reject::Audience => "invalid_audience",
        }
    }
}

/// What the receiver owes the transmitter on its next poll.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pending {
    /// `jti`s of SETs received and processed.
    pub ack: Vec<String>,
    /// `jti`s of SETs refused, with the error code.
    pub errs: Vec<(String, &'static str)>,
}

impl Pending {
    /// Stored form (shared between workers).
    pub fn encode(&self) -> String {
        let errs: Map<String, Value> = self
            .errs
            .iter()
            .map(|(j, c)| (j.clone(), Value::from(*c)))
            .collect();
        json!({"ack": self.ack, "errs": errs}).to_string()
    }

    /// Reads the stored form; anything else is nothing pending.
    pub fn decode(bytes: &[u8]) -> Pending {
        let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
            return Pending::default();
        };
        let ack = v
            .get("ack")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .take(MAX_PENDING_ACKS)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let errs = v
            .get("errs")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(j, c)| {
                        let code = Reject::ALL
                            .into_iter()
                            .map(Reject::code)
                            .find(|k| Some(*k) == c.as_str())?;
                        Some((j.clone(), code))
                    })
                    .take(MAX_PENDING_ACKS)
                    .collect()
            })
            .unwrap_or_default();
        Pending { ack, errs }
    }

    /// The poll request body (RFC 8936 section 2.4).
    pub fn poll_body(&self, max_events: u32) -> String {
        let mut body = Map::new();
        body.insert("ack".into(), json!(self.ack));
        if !self.errs.is_empty() {
            let errs: Map<String, Value> = self
                .errs
                .iter()
                .map(|(j, c)| (j.clone(), json!({"err": c, "description": c})))
                .collect();
            body.insert("setErrs".into(), Value::Object(errs));
        }
        body.insert("maxEvents".into(), json!(max_events));
        body.insert("returnImmediately".into(), json!(true));
        Value::Object(body).to_string()
    }
}

/// A poll response: the SETs by `jti`, and whether more are waiting.
#[derive(Debug, Default)]
pub struct PollResponse {
    pub sets: Vec<(String, String)>,
    pub more_available: bool,
}

/// Reads a poll response strictly (a repeated member name refuses it).
pub fn parse_poll_response(body: &[u8]) -> Result<PollResponse, String> {
    if body.len() > MAX_POLL_RESPONSE_BYTES {
        return Err(format!(
            "poll response of {} bytes exceeds the {MAX_POLL_RESPONSE_BYTES} byte limit",
            body.len()
        ));
    }
    let UniqueMap(doc) = serde_json::from_slice(body)
        .map_err(|e| format!("poll response is not a JSON object (or a name repeats): {e}"))?;
    let sets = match doc.get("sets") {
        None => Vec::new(),
        Some(Value::Object(m)) => {
            let mut out = Vec::with_capacity(m.len());
            for (jti, set) in m {
                let Some(text) = set.as_str() else {
                    return Err(format!("poll response: sets.{jti:.64} is not a string"));
                };
                out.push((jti.clone(), text.to_string()));
            }
            out
        }
        Some(_) => return Err("poll response: sets is not an object".into()),
    };
    let more_available = match doc.get("moreAvailable") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("poll response: moreAvailable is not a boolean".into()),
    };
    Ok(PollResponse {
        sets,
        more_available,
    })
}

/// The algorithms a SET may be signed with (asymmetric only).
pub fn set_algorithms() -> Vec<Alg> {
    Alg::ALL.iter().copied().filter(|a| !a.is_hmac()).collect()
}

/// Signature verification function (the pure-Rust one on the poll path).
pub type VerifyFn<'v> = &'v dyn Fn(&crate::crypto::jwks::Key, Alg, &[u8], &[u8]) -> bool;

/// A verified SET's events.
#[derive(Debug, PartialEq)]
pub struct Verified {
    /// (event type URI, payload).
    pub events: Vec<(String, Value)>,
    /// The SET's top-level `sub_id` (SSF 1.0), if any.
    pub sub_id: Option<Value>,
    pub iat: u64,
}

/// Checks one SET delivered under `jti`.
pub fn verify_set(
    jti: &str,
    text: &str,
    settings: &SsfSettings,
    keys: &KeySet,
    verify: VerifyFn<'_>,
) -> Result<Verified, Reject> {
    let jwt = token::parse(text).map_err(|_| Reject::Malformed)?;
    let typ_ok = jwt.typ.as_deref().is_some_and(|t| {
        t.eq_ignore_ascii_case("secevent+jwt") || t.eq_ignore_ascii_case("application/secevent+jwt")
    });
    if !typ_ok {
        return Err(Reject::Type);
    }
    match token::verify_signature(&jwt, keys, &set_algorithms(), verify) {
        Ok(()) => {}
        Err(AuthError::UnknownKid) => return Err(Reject::UnknownKey),
        Err(_) => return Err(Reject::Signature),
    }
    let claims = &jwt.claims;
    if claims.get("iss").and_then(Value::as_str) != Some(settings.issuer.as_str()) {
        return Err(Reject::Issuer);
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => *a == settings.audience,
        Some(Value::Array(list)) => list
            .iter()
            .any(|a| a.as_str() == Some(settings.audience.as_str())),
        _ => false,
    };
    if !aud_ok {
        return Err(Reject::Audience);
    }
    if claims.get("jti").and_then(Value::as_str) != Some(jti) {
        return Err(Reject::Malformed);
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_u64)
        .ok_or(Reject::Malformed)?;
    let events = match claims.get("events") {
        Some(Value::Object(m)) if !m.is_empty() => {
            m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        }
        _ => return Err(Reject::Malformed),
    };
    Ok(Verified {
        events,
        sub_id: claims.get("sub_id").cloned(),
        iat,
    })
}

/// The rules one event asks for (empty: an event type or subject this
/// filter does not act on). `issuer`: the provider's token issuer, which an
/// `iss_sub` subject must name.
pub fn rules_for_event(
    event_type: &str,
    payload: &Value,
    sub_id: Option<&Value>,
    set_iat: u64,
    issuer: Option<&str>,
    rule_lifetime_secs: u64,
) -> Vec<Rule> {
    let (known, name) = match (event_type.strip_prefix(CAEP), event_type.strip_prefix(RISC)) {
        (Some(n), _) => (
            matches!(
                n,
                "session-revoked" | "credential-change" | "token-claims-change"
            ),
            n,
        ),
        (None, Some(n)) => (
            matches!(
                n,
                "account-disabled" | "account-purged" | "sessions-revoked"
            ),
            n,
        ),
        (None, None) => (false, ""),
    };
    if !known {
        return Vec::new();
    }
    let at = payload
        .get("event_timestamp")
        .and_then(Value::as_u64)
        .unwrap_or(set_iat);
    let expires = at.saturating_add(rule_lifetime_secs);
    let Some(subject) = payload.get("subject").or(sub_id) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let user = |kind: Kind, value: &str, out: &mut Vec<Rule>| {
        if out.len() < MAX_RULES_PER_EVENT {
            out.push(Rule {
                kind,
                value: value.to_string(),
                entry: Entry {
                    expires,
                    not_before: 0,
                    issued_before: Some(at),
                },
            });
        }
    };
    let session_only = name == "session-revoked";
    if subject.get("format").and_then(Value::as_str) == Some("complex") {
        let session = subject
            .get("session")
            .filter(|s| s.get("format").and_then(Value::as_str) == Some("opaque"))
            .and_then(|s| s.get("id"))
            .and_then(Value::as_str);
        if let (true, Some(sid)) = (session_only, session) {
            out.push(Rule {
                kind: Kind::Sid,
                value: sid.to_string(),
                entry: Entry {
                    expires,
                    not_before: 0,
                    issued_before: None,
                },
            });
            return out;
        }
        if let Some(u) = subject.get("user") {
            simple_subject(u, issuer, &mut |k, v| user(k, v, &mut out), 0);
        }
        return out;
    }
    simple_subject(subject, issuer, &mut |k, v| user(k, v, &mut out), 0);
    out
}

/// Reads a simple (or `aliases`) subject identifier into (kind, value).
fn simple_subject(s: &Value, issuer: Option<&str>, add: &mut dyn FnMut(Kind, &str), depth: u8) {
    match s.get("format").and_then(Value::as_str) {
        Some("iss_sub") => {
            let iss = s.get("iss").and_then(Value::as_str);
            let same = match (iss, issuer) {
                (Some(a), Some(b)) => a == b,
                (Some(_), None) => true,
                _ => false,
            };
            if let (true, Some(sub)) = (same, s.get("sub").and_then(Value::as_str)) {
                add(Kind::Sub, sub);
            }
        }
        Some("email") => {
            if let Some(e) = s.get("email").and_then(Value::as_str) {
                add(Kind::Email, e);
            }
        }
        Some("aliases") if depth == 0 => {
            if let Some(ids) = s.get("identifiers").and_then(Value::as_array) {
                for id in ids.iter().take(MAX_RULES_PER_EVENT) {
                    simple_subject(id, issuer, add, 1);
                }
            }
        }
        _ => {}
    }
}
