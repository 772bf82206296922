//! Remote JWKS state shared by every worker VM, and the pure scheduling rules
//! that decide when to fetch. Envoy runs one wasm VM per worker; they share a
//! small [`Meta`] record and the last good JWKS text through proxy-wasm shared
//! data. A VM fetches only while it holds the lease in `Meta` (taken with
//! compare-and-swap), so the identity provider sees one fetch, not one per
//! worker. Time is always an argument (milliseconds since the epoch).

use serde::Deserialize;

use crate::diag::{self, ConfigError};
use crate::jwks::{Alg, KeySet};

/// `remote_jwks` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRemoteJwks {
    #[serde(alias = "httpUri")]
    http_uri: RawHttpUri,
    #[serde(default, alias = "cacheDuration")]
    cache_duration: Option<String>,
    #[serde(default, alias = "asyncFetch")]
    async_fetch: Option<RawAsyncFetch>,
    #[serde(default, alias = "retryPolicy")]
    retry_policy: Option<RawRetryPolicy>,
    /// Our addition: least time between two unknown-`kid` refetches.
    #[serde(default, alias = "minRefetchInterval")]
    min_refetch_interval: Option<String>,
    /// Our addition: how long the last good keys are used while refreshes fail.
    #[serde(default, alias = "maxStale")]
    max_stale: Option<String>,
    /// Our addition: find `jwks_uri` in the issuer's OpenID discovery document.
    #[serde(default, alias = "oidcDiscovery")]
    oidc_discovery: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpUri {
    #[serde(default)]
    uri: Option<String>,
    cluster: String,
    #[serde(default)]
    timeout: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAsyncFetch {
    #[serde(default, alias = "fastListener")]
    fast_listener: bool,
    #[serde(default, alias = "failedRefetchDuration")]
    failed_refetch_duration: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRetryPolicy {
    #[serde(default, alias = "numRetries")]
    num_retries: Option<u32>,
    #[serde(default, alias = "retryBackOff")]
    retry_back_off: Option<RawBackOff>,
    /// Envoy's RetryPolicy has more fields (retry_on, ...); not used here.
    #[serde(default, alias = "retryOn")]
    #[allow(dead_code)]
    retry_on: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawBackOff {
    #[serde(default, alias = "baseInterval")]
    base_interval: Option<String>,
    #[serde(default, alias = "maxInterval")]
    max_interval: Option<String>,
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

/// Largest JWKS response accepted.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Bounds applied to a response's `Cache-Control: max-age`.
pub const MIN_MAX_AGE_MS: u64 = 1_000;
pub const MAX_MAX_AGE_MS: u64 = 24 * 3600 * 1000;
/// Longest `Retry-After` honoured (a longer one is cut to this).
pub const MAX_RETRY_AFTER_MS: u64 = 3600 * 1000;
/// Longest wait between retries while the last good keys are still in use:
/// past `num_retries`, the retry period doubles from
/// `failed_refetch_duration` up to this (never below
/// `failed_refetch_duration`).
pub const MAX_STALE_RETRY_MS: u64 = 60_000;

/// How the fetches of many proxies are spread over time.
///
/// `Spread` (what the filter runs): each refresh is due at a random point
/// in the last tenth of the cache window; after a fetch that many proxies may
/// have made at the same moment it is spread wider: anywhere from a tenth of
/// the window on after a first fetch (proxies started together spread over
/// the window at their first refresh), and over the last half after an
/// unknown-`kid` refetch or a recovery from failures (spread again, but clear
/// of the refetches that other proxies may still be waiting to make when the
/// identity provider limits its rate); back-off after failures is jittered (between half and all
/// of the nominal delay) and keeps growing while the last good keys are in
/// use; `Retry-After` on a 429 or 503 is honoured (plus up to half of it
/// again), for unknown-`kid` refetches too.
///
/// `Fixed`: the schedule without any of that (refresh exactly at the end of
/// the cache window, deterministic back-off, `Retry-After` ignored), kept so
/// the mesh simulation can show both with the same code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Schedule {
    #[default]
    Spread,
    Fixed,
}

/// The shared record for one JWKS source. Serialized as one line of
/// space-separated integers so every VM can read it cheaply on each tick.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// Bumped on every successful fetch: a VM re-reads the keys when it changes.
    pub version: u64,
    /// When the current keys were fetched (0: never).
    pub fetched_ms: u64,
    /// When the keys should next be refreshed.
    pub refresh_ms: u64,
    /// Failed attempts since the last success.
    pub failures: u32,
    /// Earliest time of the next attempt after a failure.
    pub retry_ms: u64,
    /// Lease: which VM is fetching, and until when the lease holds.
    pub lease_owner: u64,
    pub lease_until_ms: u64,
    /// Last unknown-kid refetch (rate limit).
    pub kid_refetch_ms: u64,
    /// Number of completed fetch attempts (success or failure), for waiters.
    pub attempts: u64,
}

impl Meta {
    pub fn encode(&self) -> String {
        format!(
            "1 {} {} {} {} {} {} {} {} {}",
            self.version,
            self.fetched_ms,
            self.refresh_ms,
            self.failures,
            self.retry_ms,
            self.lease_owner,
            self.lease_until_ms,
            self.kid_refetch_ms,
            self.attempts
        )
    }

    /// `None` for anything that is not a record this code wrote.
    pub fn decode(bytes: &[u8]) -> Option<Meta> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut it = text.split(' ');
        if it.next()? != "1" {
            return None;
        }
        let mut n = || it.next().and_then(|v| v.parse::<u64>().ok());
        let m = Meta {
            version: n()?,
            fetched_ms: n()?,
            refresh_ms: n()?,
            failures: u32::try_from(n()?).ok()?,
            retry_ms: n()?,
            lease_owner: n()?,
            lease_until_ms: n()?,
            kid_refetch_ms: n()?,
            attempts: n()?,
        };
        Some(m)
    }

    pub fn has_keys(&self) -> bool {
        self.fetched_ms > 0
    }

    pub fn leased(&self, now: u64) -> bool {
        self.lease_owner != 0 && now < self.lease_until_ms
    }

    /// Keys are usable until `max_stale` after they were due for refresh.
    pub fn usable(&self, r: &RemoteJwks, now: u64) -> bool {
        self.has_keys() && now <= self.refresh_ms.saturating_add(r.max_stale_ms)
    }

    /// Whether a scheduled fetch (first fetch, refresh, or retry) is due.
    pub fn fetch_due(&self, now: u64) -> bool {
        if self.leased(now) {
            return false;
        }
        if self.failures > 0 {
            return now >= self.retry_ms;
        }
        !self.has_keys() || now >= self.refresh_ms
    }

    /// Whether an unknown `kid` may trigger a refetch now: not within
    /// `min_refetch_interval` of the last one and (`Spread`) not while
    /// backing off after a failure or a `Retry-After`.
    pub fn kid_refetch_allowed(&self, r: &RemoteJwks, now: u64, schedule: Schedule) -> bool {
        let rate =
            self.kid_refetch_ms == 0 || now >= self.kid_refetch_ms.saturating_add(r.min_refetch_ms);
        let backing_off = schedule == Schedule::Spread && self.failures > 0 && now < self.retry_ms;
        rate && !backing_off
    }

    /// The record with the lease taken by `owner` for one fetch.
    pub fn with_lease(&self, r: &RemoteJwks, owner: u64, now: u64, for_kid: bool) -> Meta {
        Meta {
            lease_owner: owner,
            lease_until_ms: now + r.timeout_ms + 1_000,
            kid_refetch_ms: if for_kid { now } else { self.kid_refetch_ms },
            ..*self
        }
    }

    /// The record after a successful fetch; `max_age_ms` from the response;
    /// `random` draws the jitter (see [`Schedule`]).
    pub fn after_success(
        &self,
        r: &RemoteJwks,
        now: u64,
        max_age_ms: Option<u64>,
        schedule: Schedule,
        random: u64,
    ) -> Meta {
        let period = max_age_ms
            .map(|m| m.clamp(MIN_MAX_AGE_MS, MAX_MAX_AGE_MS))
            .unwrap_or(r.cache_duration_ms);
        // A refresh made on time by a proxy that has been fetching on its own
        // schedule keeps a small jitter; any other fetch may have been made
        // by many proxies at once and is spread wider, so that the next cycle
        // starts spread: a first fetch (started together) over the whole
        // window from a tenth of it on, a refetch or a recovery (a new kid or
        // an outage seen together) over the last half, so that it does not
        // compete with refetches still waiting at a rate-limited IdP.
        let on_schedule = self.has_keys() && self.failures == 0 && now >= self.refresh_ms;
        let window = match schedule {
            Schedule::Fixed => 0,
            Schedule::Spread if on_schedule => period / 10,
            Schedule::Spread if !self.has_keys() => period - period / 10,
            Schedule::Spread => period / 2,
        };
        let jitter = random % window.saturating_add(1);
        Meta {
            version: self.version + 1,
            fetched_ms: now,
            refresh_ms: now.saturating_add(period - jitter),
            failures: 0,
            retry_ms: 0,
            lease_owner: 0,
            lease_until_ms: 0,
            kid_refetch_ms: self.kid_refetch_ms,
            attempts: self.attempts + 1,
        }
    }

    /// The record after a failed fetch: back off (`retry_back_off` for the
    /// first `num_retries` failures, then `failed_refetch_duration`; see
    /// [`Schedule`] for the jitter, the growth while stale keys are in use,
    /// and `retry_after_ms`, the server's `Retry-After`).
    pub fn after_failure(
        &self,
        r: &RemoteJwks,
        now: u64,
        retry_after_ms: Option<u64>,
        schedule: Schedule,
        random: u64,
    ) -> Meta {
        let failures = self.failures.saturating_add(1);
        let delay = match schedule {
            Schedule::Fixed => backoff_ms(r, failures),
            Schedule::Spread => {
                let nominal = if failures > r.num_retries && self.usable(r, now) {
                    let doublings = (failures - r.num_retries - 1).min(20);
                    r.failed_refetch_ms
                        .saturating_mul(1u64 << doublings)
                        .min(MAX_STALE_RETRY_MS.max(r.failed_refetch_ms))
                } else {
                    backoff_ms(r, failures)
                };
                let jittered = |d: u64| d / 2 + (random & 0xffff_ffff) % (d / 2 + 1);
                match retry_after_ms.map(|ms| ms.min(MAX_RETRY_AFTER_MS)) {
                    // The server said when: that time (spread by up to half of
                    // it again), not our own growing back-off, so that a
                    // rate-limited IdP's capacity is used as it frees up.
                    Some(ra) if ra > 0 => {
                        jittered(backoff_ms(r, failures)).max(ra + (random >> 32) % (ra / 2 + 1))
                    }
                    _ => jittered(nominal),
                }
            }
        };
        Meta {
            failures,
            retry_ms: now.saturating_add(delay),
            lease_owner: 0,
            lease_until_ms: 0,
            attempts: self.attempts + 1,
            ..*self
        }
    }
}

/// Delay before the next attempt after `failures` consecutive failures.
pub fn backoff_ms(r: &RemoteJwks, failures: u32) -> u64 {
    if failures == 0 {
        return 0;
    }
    if failures <= r.num_retries {
        let shift = (failures - 1).min(20);
        r.base_interval_ms
            .saturating_mul(1u64 << shift)
            .min(r.max_interval_ms)
    } else {
        r.failed_refetch_ms
    }
}

/// `max-age` from a `Cache-Control` value, in milliseconds.
pub fn parse_max_age(cache_control: &str) -> Option<u64> {
    cache_control.split(',').find_map(|d| {
        let (k, v) = d.trim().split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("max-age") {
            return None;
        }
        v.trim()
            .trim_matches('"')
            .parse::<u64>()
            .ok()
            .map(|s| s.saturating_mul(1000))
    })
}

/// A `Retry-After` value (delay-seconds, or an HTTP-date) as a delay in
/// milliseconds from `now`; `None` when it is neither.
pub fn parse_retry_after(value: &str, now_ms: u64) -> Option<u64> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(seconds.saturating_mul(1000));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let at_ms = at
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| u64::try_from(d.as_millis()).ok())?;
    Some(at_ms.saturating_sub(now_ms))
}

/// Whether a status asks the client to slow down (`Retry-After` applies).
pub fn is_throttled(status: Option<&str>) -> bool {
    matches!(status, Some("429" | "503"))
}

/// A well-mixed 64-bit value from a seed and a counter (SplitMix64's
/// finaliser): the jitter draws, deterministic for a given seed.
pub fn mix(seed: u64, counter: u64) -> u64 {
    let mut z = seed ^ counter.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Checks a JWKS response: status 200, size bound, a parsable set with at
/// least one key usable for the provider's algorithms.
pub fn validate_response(
    status: Option<&str>,
    body: &[u8],
    allowed: &[Alg],
) -> Result<(KeySet, Vec<String>), String> {
    jwks_status(status)?;
    if body.len() > MAX_JWKS_BYTES {
        return Err(too_large(body.len()));
    }
    let text = std::str::from_utf8(body).map_err(|_| "JWKS response is not UTF-8".to_string())?;
    let (set, warnings) = KeySet::parse(text)?;
    if !set
        .keys()
        .iter()
        .any(|k| allowed.iter().any(|a| k.fits(*a)))
    {
        return Err("no key in the JWKS can verify any allowed algorithm".into());
    }
    Ok((set, warnings))
}

/// The status check of a JWKS response: 200 or an error.
pub fn jwks_status(status: Option<&str>) -> Result<(), String> {
    match status {
        Some("200") => Ok(()),
        Some(s) => Err(format!("JWKS server answered HTTP {s}")),
        None => Err("no response (timeout, reset, or unknown cluster)".into()),
    }
}

/// The error for a JWKS response of `size` bytes, over [`MAX_JWKS_BYTES`].
pub fn too_large(size: usize) -> String {
    format!("JWKS response of {size} bytes exceeds the {MAX_JWKS_BYTES} byte limit")
}

/// The status check of a discovery document response: 200 or an error.
pub fn discovery_status(status: Option<&str>) -> Result<(), String> {
    match status {
        Some("200") => Ok(()),
        Some(s) => Err(format!("discovery document: HTTP {s}")),
        None => Err("discovery document: no response (timeout, reset, or unknown cluster)".into()),
    }
}

/// `jwks_uri` from an OpenID Provider discovery document, which must name
/// the same `issuer` (OpenID Connect Discovery 1.0, section 4.3).
pub fn discovered_jwks_uri(
    status: Option<&str>,
    body: &[u8],
    issuer: Option<&str>,
) -> Result<String, String> {
    discovery_status(status)?;
    if body.len() > MAX_JWKS_BYTES {
        return Err("discovery document exceeds the size limit".into());
    }
    // Read strictly, as tokens and JWKS are: a repeated member name (two
    // `jwks_uri`s, two `issuer`s) refuses the document.
    let crate::strict_json::UniqueValue(doc) = serde_json::from_slice(body)
        .map_err(|_| "discovery document is not JSON or repeats a member name".to_string())?;
    if let Some(want) = issuer {
        if doc.get("issuer").and_then(|v| v.as_str()) != Some(want) {
            return Err("discovery document names a different issuer".into());
        }
    }
    let uri = doc
        .get("jwks_uri")
        .and_then(|v| v.as_str())
        .ok_or_else(|| "discovery document has no jwks_uri".to_string())?;
    if uri.len() > 2048 {
        return Err("jwks_uri is too long".into());
    }
    split_uri(uri)?;
    Ok(uri.to_string())
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

#[cfg(test)]
mod tests;
