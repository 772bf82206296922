//! The JSON form of a provider's `revocation` settings and their builder,
//! which reports every problem (with its JSON path) into the configuration's
//! diagnostics list.

use crate::remote_jwks;
use serde_json::Value;

use super::ssf::{SsfSettings, DEFAULT_MAX_EVENTS, MAX_EVENTS_LIMIT};
use super::{
    FeedSettings, RevocationSettings, DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES, MAX_BYTES_LIMIT,
    MAX_ENTRIES_LIMIT,
};
use crate::diag::{self, ConfigError};
use crate::json_read::{self as read, Obj, Read};
use crate::remote_jwks::{RawRemoteJwks, RemoteJwks};

/// Default poll interval of a deny list.
pub const DEFAULT_DENY_LIST_POLL_MS: u64 = 30_000;
/// Default poll interval of an SSF stream.
pub const DEFAULT_SSF_POLL_MS: u64 = 5_000;
/// Default staleness before `fail_closed` applies.
pub const DEFAULT_STALENESS_MS: u64 = 300_000;
/// Default rule lifetime of an SSF event when the provider has no `max_lifetime`.
pub const DEFAULT_RULE_LIFETIME_SECS: u64 = 24 * 3600;

pub(crate) struct RawRevocation {
    deny_list: Option<RawDenyList>,
    ssf: Option<RawSsf>,
    max_entries: Option<u32>,
    max_bytes: Option<u64>,
}

#[derive(Default)]
struct RawHttpUri {
    uri: String,
    cluster: String,
    timeout: Option<String>,
}

struct RawDenyList {
    http_uri: RawHttpUri,
    poll_interval: Option<String>,
    staleness: Option<String>,
    fail_closed: bool,
}

#[derive(Default)]
struct RawSsf {
    poll_endpoint: RawHttpUri,
    transmitter_jwks: RawRemoteJwks,
    issuer: String,
    audience: String,
    poll_interval: Option<String>,
    staleness: Option<String>,
    fail_closed: bool,
    max_events: Option<u32>,
    rule_lifetime: Option<String>,
    authorization: Option<String>,
}

impl RawRevocation {
    /// A provider's `revocation` as written, at `path`.
    #[inline(never)] // configuration time: one copy, called from its readers
    pub(crate) fn read(v: &Value, path: &str) -> Read<Self> {
        let o = Obj::new(v, path, &["deny_list", "ssf", "max_entries", "max_bytes"])?;
        Ok(RawRevocation {
            deny_list: o.opt("deny_list", RawDenyList::read)?,
            ssf: o.opt("ssf", RawSsf::read)?,
            max_entries: o.opt("max_entries", read::u32)?,
            max_bytes: o.opt("max_bytes", read::u64)?,
        })
    }
}

impl RawHttpUri {
    #[inline(never)] // configuration time: one copy, called from its readers
    fn read(v: &Value, path: &str) -> Read<Self> {
        let o = Obj::new(v, path, &["uri", "cluster", "timeout"])?;
        Ok(RawHttpUri {
            uri: o.req("uri", read::string)?,
            cluster: o.req("cluster", read::string)?,
            timeout: o.opt("timeout", read::string)?,
        })
    }
}

impl RawDenyList {
    #[inline(never)] // configuration time: one copy, called from its readers
    fn read(v: &Value, path: &str) -> Read<Self> {
        let fields = &["http_uri", "poll_interval", "staleness", "fail_closed"];
        let o = Obj::new(v, path, fields)?;
        Ok(RawDenyList {
            http_uri: o.req("http_uri", RawHttpUri::read)?,
            poll_interval: o.opt("poll_interval", read::string)?,
            staleness: o.opt("staleness", read::string)?,
            fail_closed: o.or_default("fail_closed", read::boolean)?,
        })
    }
}

const SSF_FIELDS: &[&str] = &[
    "poll_endpoint",
    "transmitter_jwks",
    "issuer",
    "audience",
    "poll_interval",
    "staleness",
    "fail_closed",
    "max_events",
    "rule_lifetime",
    "authorization",
];

impl RawSsf {
    // Configuration time: one copy, called from its readers; filled field
    // by field, so an error drops `r` once (not each field read so far).
    #[inline(never)]
    #[allow(clippy::field_reassign_with_default)]
    fn read(v: &Value, path: &str) -> Read<Self> {
        let o = Obj::new(v, path, SSF_FIELDS)?;
        let mut r = RawSsf::default();
        r.poll_endpoint = o.req("poll_endpoint", RawHttpUri::read)?;
        r.transmitter_jwks = o.req("transmitter_jwks", RawRemoteJwks::read)?;
        r.issuer = o.req("issuer", read::string)?;
        r.audience = o.req("audience", read::string)?;
        r.poll_interval = o.opt("poll_interval", read::string)?;
        r.staleness = o.opt("staleness", read::string)?;
        r.fail_closed = o.or_default("fail_closed", read::boolean)?;
        r.max_events = o.opt("max_events", read::u32)?;
        r.rule_lifetime = o.opt("rule_lifetime", read::string)?;
        r.authorization = o.opt("authorization", read::string)?;
        Ok(r)
    }
}

/// A provider's `revocation` (`path` is its JSON path); `None` on error.
/// `provider` names the shared-data records; `max_lifetime_secs` is the
/// provider's, the default lifetime of a rule from an event.
#[inline(never)] // configuration time: keeps the caller's compiled size (V8 compile memory) down
pub(crate) fn settings(
    path: &str,
    provider: &str,
    raw: RawRevocation,
    max_lifetime_secs: Option<u64>,
    errors: &mut Vec<ConfigError>,
) -> Option<RevocationSettings> {
    let before = errors.len();
    let max_entries = match raw.max_entries {
        None => DEFAULT_MAX_ENTRIES,
        Some(n) if n == 0 || n as usize > MAX_ENTRIES_LIMIT => {
            diag::report(
                errors,
                format!("{path}.max_entries"),
                format!("must be 1 to {MAX_ENTRIES_LIMIT}"),
            );
            0
        }
        Some(n) => n as usize,
    };
    let max_bytes = match raw.max_bytes {
        None => DEFAULT_MAX_BYTES,
        Some(n) if n < 1024 || n > MAX_BYTES_LIMIT as u64 => {
            diag::report(
                errors,
                format!("{path}.max_bytes"),
                format!("must be 1024 to {MAX_BYTES_LIMIT}"),
            );
            0
        }
        Some(n) => usize::try_from(n).unwrap_or(DEFAULT_MAX_BYTES),
    };
    if raw.deny_list.is_none() && raw.ssf.is_none() {
        diag::report(
            errors,
            path.to_string(),
            "names no source: set deny_list, ssf, or both",
        );
    }
    let deny_list = raw.deny_list.and_then(|d| {
        let p = format!("{path}.deny_list");
        feed(
            &p,
            &format!("jwt_filter.revocation|{provider}|deny_list"),
            &d.http_uri,
            d.poll_interval.as_deref(),
            DEFAULT_DENY_LIST_POLL_MS,
            d.staleness.as_deref(),
            d.fail_closed,
            errors,
        )
    });
    let ssf = raw.ssf.and_then(|s| {
        let p = format!("{path}.ssf");
        let poll = feed(
            &p,
            &format!("jwt_filter.revocation|{provider}|ssf"),
            &s.poll_endpoint,
            s.poll_interval.as_deref(),
            DEFAULT_SSF_POLL_MS,
            s.staleness.as_deref(),
            s.fail_closed,
            errors,
        );
        let jwks = remote_jwks::remote_jwks(
            &format!("{p}.transmitter_jwks"),
            s.transmitter_jwks,
            Some(&s.issuer),
            errors,
        );
        for (field, value) in [("issuer", &s.issuer), ("audience", &s.audience)] {
            if value.is_empty() {
                diag::report(errors, format!("{p}.{field}"), "must not be empty");
            }
        }
        let max_events = s.max_events.unwrap_or(DEFAULT_MAX_EVENTS);
        if max_events == 0 || max_events > MAX_EVENTS_LIMIT {
            diag::report(
                errors,
                format!("{p}.max_events"),
                format!("must be 1 to {MAX_EVENTS_LIMIT}"),
            );
        }
        let rule_lifetime_ms = diag::duration(
            errors,
            &format!("{p}.rule_lifetime"),
            s.rule_lifetime.as_deref(),
            max_lifetime_secs
                .unwrap_or(DEFAULT_RULE_LIFETIME_SECS)
                .saturating_mul(1000),
            1_000,
        );
        if let Some(a) = &s.authorization {
            if a.is_empty() || a.chars().any(|c| c.is_control()) || a.len() > 8192 {
                diag::report(
                    errors,
                    format!("{p}.authorization"),
                    "must be a header value: 1 to 8192 characters, no control characters",
                );
            }
        }
        if jwks.as_ref().is_some_and(|j| j.oidc_discovery) {
            diag::report(
                errors,
                format!("{p}.transmitter_jwks.oidc_discovery"),
                "not supported for a transmitter's keys: give http_uri.uri (the jwks_uri of \
                 the transmitter's /.well-known/ssf-configuration)",
            );
        }
        let mut jwks = jwks?;
        jwks.shared_key = format!("jwt_filter.revocation|{provider}|ssf_jwks");
        Some(SsfSettings {
            poll: poll?,
            jwks,
            issuer: s.issuer,
            audience: s.audience,
            max_events,
            rule_lifetime_secs: rule_lifetime_ms / 1000,
            authorization: s.authorization,
        })
    });
    if errors.len() != before {
        return None;
    }
    Some(RevocationSettings {
        deny_list,
        ssf,
        max_entries,
        max_bytes,
    })
}

/// One feed's fetch, schedule and failure policy.
#[allow(clippy::too_many_arguments)]
fn feed(
    path: &str,
    shared_key: &str,
    http: &RawHttpUri,
    poll_interval: Option<&str>,
    default_poll_ms: u64,
    staleness: Option<&str>,
    fail_closed: bool,
    errors: &mut Vec<ConfigError>,
) -> Option<FeedSettings> {
    let before = errors.len();
    let (authority, uri_path) = match remote_jwks::split_uri(&http.uri) {
        Ok(v) => v,
        Err(e) => {
            diag::report(errors, format!("{path}.http_uri.uri"), e);
            (String::new(), String::new())
        }
    };
    if http.cluster.is_empty() {
        diag::report(
            errors,
            format!("{path}.http_uri.cluster"),
            "cluster is required: the Envoy cluster that reaches the feed's host",
        );
    }
    let timeout_ms = diag::duration(
        errors,
        &format!("{path}.http_uri.timeout"),
        http.timeout.as_deref(),
        5_000,
        1,
    );
    let poll_ms = diag::duration(
        errors,
        &format!("{path}.poll_interval"),
        poll_interval,
        default_poll_ms,
        1_000,
    );
    let staleness_ms = diag::duration(
        errors,
        &format!("{path}.staleness"),
        staleness,
        DEFAULT_STALENESS_MS.max(poll_ms.saturating_mul(2)),
        1_000,
    );
    if staleness_ms < poll_ms {
        diag::report(
            errors,
            format!("{path}.staleness"),
            "must not be less than poll_interval",
        );
    }
    if errors.len() != before {
        return None;
    }
    Some(FeedSettings {
        fetch: RemoteJwks {
            uri: http.uri.clone(),
            oidc_discovery: false,
            cluster: http.cluster.clone(),
            authority,
            path: uri_path,
            timeout_ms,
            cache_duration_ms: poll_ms,
            fast_listener: false,
            failed_refetch_ms: poll_ms,
            num_retries: 3,
            base_interval_ms: 200.min(poll_ms),
            max_interval_ms: poll_ms,
            min_refetch_ms: poll_ms,
            max_stale_ms: staleness_ms,
            shared_key: shared_key.to_string(),
        },
        staleness_ms,
        fail_closed,
    })
}
