//! `remote_jwks` (and the fetch settings of anything fetched like a JWKS):
//! the raw form as written, validated into [`RemoteJwks`].

use serde_json::Value;

use crate::diag::{self, ConfigError};
use crate::json_read::{self as read, Obj, Read};

/// `remote_jwks` as written.
#[derive(Default)]
pub(crate) struct RawRemoteJwks {
    http_uri: RawHttpUri,
    cache_duration: Option<String>,
    async_fetch: Option<RawAsyncFetch>,
    retry_policy: Option<RawRetryPolicy>,
    /// Our addition: least time between two unknown-`kid` refetches.
    min_refetch_interval: Option<String>,
    /// Our addition: how long the last good keys are used while refreshes fail.
    max_stale: Option<String>,
    /// Our addition: find `jwks_uri` in the issuer's OpenID discovery document.
    oidc_discovery: bool,
}

#[derive(Default)]
struct RawHttpUri {
    uri: Option<String>,
    cluster: String,
    timeout: Option<String>,
}

#[derive(Default)]
struct RawAsyncFetch {
    fast_listener: bool,
    failed_refetch_duration: Option<String>,
}

#[derive(Default)]
struct RawRetryPolicy {
    num_retries: Option<u32>,
    retry_back_off: Option<RawBackOff>,
    /// Envoy's RetryPolicy has more fields (retry_on, ...); not used here.
    #[allow(dead_code)]
    retry_on: Option<String>,
}

#[derive(Default)]
struct RawBackOff {
    base_interval: Option<String>,
    max_interval: Option<String>,
}

const REMOTE_JWKS_FIELDS: &[&str] = &[
    "http_uri",
    "cache_duration",
    "async_fetch",
    "retry_policy",
    "min_refetch_interval",
    "max_stale",
    "oidc_discovery",
];

impl RawRemoteJwks {
    /// `remote_jwks` as written, at `path`.
    // Configuration time: one copy, called from its readers; filled field
    // by field, so an error drops `r` once (not each field read so far).
    #[inline(never)]
    #[allow(clippy::field_reassign_with_default)]
    pub(crate) fn read(v: &Value, path: &str) -> Read<Self> {
        let o = Obj::new(v, path, REMOTE_JWKS_FIELDS)?;
        let mut r = RawRemoteJwks::default();
        r.http_uri = o.req("http_uri", RawHttpUri::read)?;
        r.cache_duration = o.opt("cache_duration", read::string)?;
        r.async_fetch = o.opt("async_fetch", RawAsyncFetch::read)?;
        r.retry_policy = o.opt("retry_policy", RawRetryPolicy::read)?;
        r.min_refetch_interval = o.opt("min_refetch_interval", read::string)?;
        r.max_stale = o.opt("max_stale", read::string)?;
        r.oidc_discovery = o.or_default("oidc_discovery", read::boolean)?;
        Ok(r)
    }
}

impl RawHttpUri {
    #[inline(never)] // configuration time: one copy, called from its readers
    fn read(v: &Value, path: &str) -> Read<Self> {
        let o = Obj::new(v, path, &["uri", "cluster", "timeout"])?;
        Ok(RawHttpUri {
            uri: o.opt("uri", read::string)?,
            cluster: o.req("cluster", read::string)?,
            timeout: o.opt("timeout", read::string)?,
        })
    }
}

impl RawAsyncFetch {
    #[inline(never)] // configuration time: one copy, called from its readers
    fn read(v: &Value, path: &str) -> Read<Self> {
        let o = Obj::new(v, path, &["fast_listener", "failed_refetch_duration"])?;
        Ok(RawAsyncFetch {
            fast_listener: o.or_default("fast_listener", read::boolean)?,
            failed_refetch_duration: o.opt("failed_refetch_duration", read::string)?,
        })
    }
}

impl RawRetryPolicy {
    #[inline(never)] // configuration time: one copy, called from its readers
    fn read(v: &Value, path: &str) -> Read<Self> {
        let o = Obj::new(v, path, &["num_retries", "retry_back_off", "retry_on"])?;
        Ok(RawRetryPolicy {
            num_retries: o.opt("num_retries", read::u32)?,
            retry_back_off: o.opt("retry_back_off", RawBackOff::read)?,
            retry_on: o.opt("retry_on", read::string)?,
        })
    }
}

impl RawBackOff {
    #[inline(never)] // configuration time: one copy, called from its readers
    fn read(v: &Value, path: &str) -> Read<Self> {
        let o = Obj::new(v, path, &["base_interval", "max_interval"])?;
        Ok(RawBackOff {
            base_interval: o.opt("base_interval", read::string)?,
            max_interval: o.opt("max_interval", read::string)?,
        })
    }
}

/// A remote JWKS endpoint and how it is fetched (all times in milliseconds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteJwks {
    /// The JWKS URI, or with `oidc_discovery` the discovery document's URI
    /// (default `<issuer>/.well-known/openid-configuration`).
    pub uri: String,
    /// Our addition: `uri` is an OpenID discovery document whose `jwks_uri`
    /// (fetched through the same cluster) holds the keys.
    pub oidc_discovery: bool,
    pub cluster: String,
    /// `:authority` and `:path` of the fetch, from `uri`.
    pub authority: String,
    pub path: String,
    /// `http_uri.timeout`, default 5s.
    pub timeout_ms: u64,
    /// `cache_duration`, default 600s (Envoy's); a `Cache-Control: max-age`
    /// on the response takes precedence within 1s..24h.
    pub cache_duration_ms: u64,
    /// `async_fetch.fast_listener`: accepted for compatibility; the listener
    /// is never held (requests wait for the first fetch instead).
    pub fast_listener: bool,
    /// `async_fetch.failed_refetch_duration`, default 1s: the retry period
    /// once `num_retries` quick retries have failed.
    pub failed_refetch_ms: u64,
    /// `retry_policy.num_retries`, default 3.
    pub num_retries: u32,
    /// `retry_policy.retry_back_off`, defaults 200ms and 10x base.
    pub base_interval_ms: u64,
    pub max_interval_ms: u64,
    /// Our addition, default 30s.
    pub min_refetch_ms: u64,
    /// Our addition, default 24h.
    pub max_stale_ms: u64,
    /// Shared-data key: every VM (and every provider) naming the same
    /// cluster and URI shares one fetch and one key set.
    pub shared_key: String,
}

/// Builds a provider's `remote_jwks` (`path` is its JSON path), reporting
/// every problem into `errors`; `issuer` is the provider's, for OIDC discovery.
#[inline(never)] // configuration time: keeps the caller's compiled size (V8 compile memory) down
pub(crate) fn remote_jwks(
    path: &str,
    raw: RawRemoteJwks,
    issuer: Option<&str>,
    errors: &mut Vec<ConfigError>,
) -> Option<RemoteJwks> {
    let before = errors.len();
    let uri = match (&raw.http_uri.uri, raw.oidc_discovery, issuer) {
        (Some(u), _, _) => u.clone(),
        (None, true, Some(iss)) => {
            format!(
                "{}/.well-known/openid-configuration",
                iss.trim_end_matches('/')
            )
        }
        (None, true, None) => {
            diag::report(
                errors,
                format!("{path}.oidc_discovery"),
                "OIDC discovery needs the provider's issuer",
            );
            String::new()
        }
        (None, false, _) => {
            diag::report(
                errors,
                format!("{path}.http_uri.uri"),
                "uri is required (or set oidc_discovery: true)",
            );
            String::new()
        }
    };
    let (authority, uri_path) = match split_uri(&uri) {
        Ok(v) => v,
        Err(e) => {
            diag::report(errors, format!("{path}.http_uri.uri"), e);
            (String::new(), String::new())
        }
    };
    if raw.http_uri.cluster.is_empty() {
        diag::report(
            errors,
            format!("{path}.http_uri.cluster"),
            "cluster is required: the Envoy cluster that reaches the JWKS host",
        );
    }
    let timeout_ms = diag::duration(
        errors,
        &format!("{path}.http_uri.timeout"),
        raw.http_uri.timeout.as_deref(),
        5_000,
        1,
    );
    let cache_duration_ms = diag::duration(
        errors,
        &format!("{path}.cache_duration"),
        raw.cache_duration.as_deref(),
        600_000,
        1_000,
    );
    let af = raw.async_fetch.unwrap_or_default();
    let failed_refetch_ms = diag::duration(
        errors,
        &format!("{path}.async_fetch.failed_refetch_duration"),
        af.failed_refetch_duration.as_deref(),
        1_000,
        100,
    );
    let rp = raw.retry_policy.unwrap_or_default();
    let bo = rp.retry_back_off.unwrap_or_default();
    let base_interval_ms = diag::duration(
        errors,
        &format!("{path}.retry_policy.retry_back_off.base_interval"),
        bo.base_interval.as_deref(),
        200,
        1,
    );
    let max_interval_ms = diag::duration(
        errors,
        &format!("{path}.retry_policy.retry_back_off.max_interval"),
        bo.max_interval.as_deref(),
        base_interval_ms.saturating_mul(10),
        1,
    );
    if max_interval_ms < base_interval_ms {
        diag::report(
            errors,
            format!("{path}.retry_policy.retry_back_off.max_interval"),
            "must not be less than base_interval",
        );
    }
    let num_retries = rp.num_retries.unwrap_or(3);
    if num_retries > 10 {
        diag::report(
            errors,
            format!("{path}.retry_policy.num_retries"),
            "at most 10",
        );
    }
    let min_refetch_ms = diag::duration(
        errors,
        &format!("{path}.min_refetch_interval"),
        raw.min_refetch_interval.as_deref(),
        30_000,
        1_000,
    );
    let max_stale_ms = diag::duration(
        errors,
        &format!("{path}.max_stale"),
        raw.max_stale.as_deref(),
        86_400_000,
        0,
    );
    if errors.len() != before {
        return None;
    }
    let shared_key = format!("jwt_filter.jwks|{}|{}", raw.http_uri.cluster, uri);
    Some(RemoteJwks {
        uri,
        oidc_discovery: raw.oidc_discovery,
        cluster: raw.http_uri.cluster,
        authority,
        path: uri_path,
        timeout_ms,
        cache_duration_ms,
        fast_listener: af.fast_listener,
        failed_refetch_ms,
        num_retries,
        base_interval_ms,
        max_interval_ms,
        min_refetch_ms,
        max_stale_ms,
        shared_key,
    })
}

/// Splits an `http(s)://host[:port]/path?query` URI into `:authority` and
/// `:path`.
pub fn split_uri(uri: &str) -> Result<(String, String), String> {
    let rest = uri
        .strip_prefix("https://")
        .or_else(|| uri.strip_prefix("http://"))
        .ok_or_else(|| format!("{uri:?} must start with http:// or https://"))?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (rest.get(..i).unwrap_or(""), rest.get(i..).unwrap_or("/")),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains(['@', ' ']) {
        return Err(format!("{uri:?} has no valid host"));
    }
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    Ok((authority.to_string(), path))
}
