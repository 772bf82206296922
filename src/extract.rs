//! Finding tokens in a request (headers, query parameters, cookies) and
//! removing them again before the request is forwarded.
//!
//! The request is seen through [`RequestView`], a snapshot of the request
//! headers, so all of this is plain Rust, tested natively.

use std::borrow::Cow;

use crate::config::Location;
use crate::error::AuthError;

/// Largest header value (token carrier) looked at; beyond it: `TooLarge`.
pub const MAX_HEADER_VALUE_BYTES: usize = 64 * 1024;
/// Most query parameters or cookies scanned per request.
pub const MAX_PARAMS: usize = 256;

/// The request as the filter sees it: its headers (names lowercased, in order,
/// repeated names kept) including the `:path` pseudo-header.
#[derive(Debug, Default, Clone)]
pub struct RequestView {
    headers: Vec<(String, String)>,
}

impl RequestView {
    /// `headers` as delivered by the host; names are lowercased here.
    pub fn new(mut headers: Vec<(String, String)>) -> Self {
        for (k, _) in headers.iter_mut() {
            if k.bytes().any(|b| b.is_ascii_uppercase()) {
                *k = k.to_ascii_lowercase();
            }
        }
        RequestView { headers }
    }

    /// First value of a header (lowercased name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, in order.
    pub fn header_all<'s, 'n>(
        &'s self,
        name: &'n str,
    ) -> impl Iterator<Item = &'s str> + use<'s, 'n> {
        self.headers
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Drops every value of a header (lowercased name); whether any was there.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.headers.len();
        self.headers.retain(|(k, _)| k != name);
        self.headers.len() != before
    }

    /// The full `:path`, query string included.
    pub fn path(&self) -> &str {
        self.header(":path").unwrap_or("/")
    }
}

/// A token found in a request, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found<'a> {
    pub token: Cow<'a, str>,
    /// Index into the provider's `locations`.
    pub location: usize,
}

/// Looks for the token in each of `locations`. `Ok(None)`: no token at all.
/// The same token in several places counts once; two different tokens are
/// refused (`Multiple`): RFC 6750 section 2 allows one method per request and
/// choosing one silently would let a client smuggle a second.
pub fn extract<'a>(
    locations: &[Location],
    req: &'a RequestView,
) -> Result<Option<Found<'a>>, AuthError> {
    let mut found: Option<Found<'a>> = None;
    for (i, loc) in locations.iter().enumerate() {
        let mut consider = |token: Cow<'a, str>| -> Result<(), AuthError> {
            match &found {
                Some(f) if f.token != token => Err(AuthError::Multiple),
                Some(_) => Ok(()),
                None => {
                    found = Some(Found { token, location: i });
                    Ok(())
                }
            }
        };
        match loc {
            Location::Header { name, prefix } => {
                for value in req.header_all(name) {
                    if value.len() > MAX_HEADER_VALUE_BYTES {
                        return Err(AuthError::TooLarge);
                    }
                    if let Some(t) = strip_prefix(value, prefix) {
                        consider(Cow::Borrowed(t))?;
                    }
                }
            }
            Location::Param(name) => {
                for t in query_values(req.path(), name) {
                    consider(t)?;
                }
            }
            Location::Cookie(name) => {
                for header in req.header_all("cookie") {
                    if header.len() > MAX_HEADER_VALUE_BYTES {
                        return Err(AuthError::TooLarge);
                    }
                    for t in cookie_values(header, name) {
                        consider(Cow::Borrowed(t))?;
                    }
                }
            }
        }
    }
    Ok(found)
}

/// The token after `prefix` (matched ignoring ASCII case: auth schemes are
/// case-insensitive, RFC 7235), with surrounding whitespace trimmed. `None`
/// when the prefix is absent or nothing follows it.
fn strip_prefix<'v>(value: &'v str, prefix: &str) -> Option<&'v str> {
    let rest = if prefix.is_empty() {
        value
    } else {
        let trimmed = value.trim_start();
        let head = trimmed.get(..prefix.len())?;
        if !head.eq_ignore_ascii_case(prefix) {
            return None;
        }
        trimmed.get(prefix.len()..)?
    };
    let t = rest.trim_matches(|c: char| c == ' ' || c == '\t');
    (!t.is_empty()).then_some(t)
}

/// Values of query parameter `name` in `path`, percent-decoded.
fn query_values<'a>(path: &'a str, name: &str) -> Vec<Cow<'a, str>> {
    let query = path.split_once('?').map(|(_, q)| q).unwrap_or("");
    let query = query.split_once('#').map(|(q, _)| q).unwrap_or(query);
    query
        .split('&')
        .take(MAX_PARAMS)
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k) == name).then(|| percent_decode(v))
        })
        .filter(|v| !v.is_empty())
        .collect()
}

/// Values of cookie `name` in one `Cookie` header.
fn cookie_values<'a>(header: &'a str, name: &str) -> Vec<&'a str> {
    header
        .split(';')
        .take(MAX_PARAMS)
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            if k.trim() != name {
                return None;
            }
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .unwrap_or(v);
            (!v.is_empty()).then_some(v)
        })
        .collect()
}

/// `application/x-www-form-urlencoded` decoding; invalid escapes are kept as
/// written, invalid UTF-8 is replaced (such a token then fails to parse).
fn percent_decode(s: &str) -> Cow<'_, str> {
    if !s.contains(['%', '+']) {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => match (b.get(i + 1).and_then(hex), b.get(i + 2).and_then(hex)) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn hex(c: &u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// `path` without any query parameter called `name`; the `?` goes when the
/// query ends up empty.
pub fn remove_param(path: &str, name: &str) -> String {
    let Some((base, rest)) = path.split_once('?') else {
        return path.to_string();
    };
    let (query, fragment) = match rest.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (rest, None),
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let k = pair.split_once('=').map(|(k, _)| k).unwrap_or(pair);
            !pair.is_empty() && percent_decode(k) != name
        })
        .collect();
    let mut out = String::with_capacity(path.len());
    out.push_str(base);
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// A `Cookie` header without cookie `name`; `None` when nothing is left.
pub fn remove_cookie(header: &str, name: &str) -> Option<String> {
    let kept: Vec<&str> = header
        .split(';')
        .map(str::trim)
        .filter(|pair| {
            let k = pair.split_once('=').map(|(k, _)| k.trim()).unwrap_or(pair);
            !pair.is_empty() && k != name
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

#[cfg(test)]
mod tests;
