//! Warnings about a provider's `revocation` settings that the filter accepts
//! but that leave revoked tokens accepted for long, or let the feeds be
//! altered in transit. The errors (bad values, with their JSON paths) are the
//! parser's own ([`crate::revocation::build`]).

use super::{warning, Finding};
use crate::config::Config;
use crate::revocation::FeedSettings;

/// A poll interval past this leaves a revoked token accepted for that long.
pub const LONG_POLL_MS: u64 = 300_000;
/// A staleness past this lets a feed go unread for that long unnoticed.
pub const LONG_STALENESS_MS: u64 = 3_600_000;

/// Every revocation warning of `config`, in provider order.
pub fn warnings(config: &Config) -> Vec<Finding> {
    let mut out = Vec::new();
    for p in &config.providers {
        let Some(rev) = &p.revocation else {
            continue;
        };
        let path = format!("providers.{}.revocation", p.name);
        if let Some(d) = &rev.deny_list {
            feed(&mut out, &format!("{path}.deny_list"), "http_uri", d);
        }
        let Some(s) = &rev.ssf else {
            continue;
        };
        let ssf = format!("{path}.ssf");
        feed(&mut out, &ssf, "poll_endpoint", &s.poll);
        if s.poll.fetch.uri.starts_with("http://") && s.authorization.is_some() {
            out.push(warning(
                format!("{ssf}.authorization"),
                "the receiver's credential is sent over plain HTTP with every poll",
            ));
        }
        if s.jwks.uri.starts_with("http://") {
            out.push(warning(
                format!("{ssf}.transmitter_jwks.http_uri.uri"),
                "the transmitter's keys are downloaded over plain HTTP: whoever can alter them \
                 can forge events (use https, or a cluster with TLS)",
            ));
        }
        if let Some(max) = p.max_lifetime_secs {
            if s.rule_lifetime_secs < max {
                out.push(warning(
                    format!("{ssf}.rule_lifetime"),
                    format!(
                        "rules from events last {}s but tokens may live {max}s (max_lifetime): \
                         a token issued before the event is accepted again once its rule \
                         expires (set rule_lifetime to at least max_lifetime)",
                        s.rule_lifetime_secs
                    ),
                ));
            }
        }
    }
    out
}

/// One feed: plain HTTP, a long poll interval, a long staleness.
fn feed(out: &mut Vec<Finding>, path: &str, uri_field: &str, f: &FeedSettings) {
    if f.fetch.uri.starts_with("http://") {
        out.push(warning(
            format!("{path}.{uri_field}.uri"),
            "the feed is read over plain HTTP: whoever can alter it can drop revocations, or \
             revoke every token (use https, or a cluster with TLS)",
        ));
    }
    let poll_s = f.fetch.cache_duration_ms / 1000;
    if f.fetch.cache_duration_ms > LONG_POLL_MS {
        out.push(warning(
            format!("{path}.poll_interval"),
            format!("polled every {poll_s}s: a revoked token stays accepted for up to that long"),
        ));
    }
    let stale_s = f.staleness_ms / 1000;
    if f.staleness_ms > LONG_STALENESS_MS {
        let message = if f.fail_closed {
            format!(
                "fail_closed applies only after {stale_s}s without a successful poll: tokens \
                 revoked meanwhile are accepted for that long"
            )
        } else {
            format!(
                "staleness {stale_s}s without fail_closed: when the feed stops being read the \
                 last good rules apply indefinitely and tokens revoked since are accepted; \
                 alert on jwt_filter_revocation_*_age_seconds, or set fail_closed"
            )
        };
        out.push(warning(format!("{path}.staleness"), message));
    }
}

#[cfg(test)]
mod tests;
