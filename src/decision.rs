//! What the policy decides for one request: the [`Decision`], the request
//! edits an allow carries ([`HeaderOp`]), and the [`Outcome`] the glue acts
//! on, counts and logs. Plain data, shared by the policy that makes it, the
//! key lifecycle that may park it and the effects planned from it.

use crate::authz::{Mode, TokenStatus};
use crate::decision_log::TokenFacts;
use crate::error::AuthError;

/// An edit to the request before it goes upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderOp {
    Set(String, String),
    Remove(String),
}

/// What to do with the request.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// No rule matched, or the rule needs no JWT.
    NoAuth,
    /// Allowed; apply these edits first.
    Allow(Vec<HeaderOp>),
    /// Denied for this cause.
    Deny(AuthError),
}

/// Everything the glue needs to act on, count and log one request's decision.
#[derive(Debug)]
pub struct Outcome {
    /// What enforcement means for the request. Under a `report` rule a `Deny`
    /// is only counted and logged; the request goes through.
    pub decision: Decision,
    /// Index of the matched rule.
    pub rule: Option<usize>,
    /// The matched rule's mode (`Enforce` when no rule matched).
    pub mode: Mode,
    /// The `status_header` value (`NotRequired` when no JWT was needed).
    pub status: Option<TokenStatus>,
    /// Allow: providers whose tokens were accepted.
    pub accepted: Vec<usize>,
    /// Deny: the provider blamed, when one can be named.
    pub blamed: Option<usize>,
    /// Deny: unverified facts about the blamed provider's token (for the log).
    pub token: Option<TokenFacts>,
    /// Allow: the verified claims (JSON object text) of the token that
    /// satisfied the rule.
    pub payload: Option<String>,
}
