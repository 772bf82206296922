//! Finding tokens in a request (headers, query parameters, cookies) and
//! removing them again before the request is forwarded.
//!
//! The request is seen through [`RequestView`], a snapshot of the request
//! headers, so all of this is plain Rust, tested natively.

use std::borrow::Cow;

use crate::error::AuthError;

pub mod build;

/// Where a provider looks for its token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A request header (name lowercased) and the prefix its value must carry
    /// (matched case-insensitively, e.g. `Bearer `).
    Header { name: String, prefix: String },
    /// A query parameter.
    Param(String),
    /// A cookie.
    Cookie(String),
}

/// Largest header value (token carrier, `Cookie` header, or `:path` when a
/// query parameter may carry the token) looked at; beyond it: `TooLarge`.
/// Within it every query parameter and every cookie is looked at: a bound
/// that stopped the search would let a second token past it unseen.
pub const MAX_HEADER_VALUE_BYTES: usize = 64 * 1024;

/// The request as the filter sees it: its headers (names lowercased, in order,
/// repeated names kept) including the `:path` pseudo-header.
///
/// Every name and value is a span of one text buffer, so a request costs two
/// allocations however many headers it has: in the filter that buffer is the
/// one the host wrote ([`RequestView::from_serialized`]), taken over as is.
#[derive(Debug, Default, Clone)]
pub struct RequestView {
    /// Names and values back to back (plus the host's separators).
    text: String,
    /// `[name start, name end, value start, value end]` into `text`, in
    /// request order; every bound is a char boundary.
    spans: Vec<[usize; 4]>,
}

impl RequestView {
    /// `headers` as (name, value) pairs; names are lowercased here.
    pub fn new(headers: Vec<(String, String)>) -> Self {
        let mut view = RequestView {
            text: String::with_capacity(headers.iter().map(|(k, v)| k.len() + v.len()).sum()),
            spans: Vec::with_capacity(headers.len()),
        };
        for (k, v) in &headers {
            view.push(k, v);
        }
        view
    }

    /// Takes over proxy-wasm's serialized header map (`proxy_get_header_map_pairs`:
    /// a little-endian `u32` count, a `(name length, value length)` `u32` pair
    /// per header, then each name and value followed by a NUL byte).
    ///
    /// Envoy hands over lowercase, UTF-8 headers, and then the buffer becomes
    /// the view's text without a copy. A value that is not UTF-8 (HTTP allows
    /// obs-text) has its bad bytes replaced by U+FFFD, so it can never form a
    /// valid token; an uppercase name is lowercased. A malformed buffer gives
    /// an empty view: no token, so every rule that needs one denies.
    pub fn from_serialized(mut buf: Vec<u8>) -> Self {
        let Some(spans) = parse_serialized(&buf) else {
            return RequestView::default();
        };
        // The size table is binary; zeroed, the buffer is text exactly when
        // every name and value is.
        let table = 4 + 8 * spans.len();
        if let Some(t) = buf.get_mut(..table) {
            t.fill(0);
        }
        let lowercase = spans.iter().all(|s| {
            buf.get(s[0]..s[1])
                .is_some_and(|n| !n.iter().any(u8::is_ascii_uppercase))
        });
        if lowercase {
            match String::from_utf8(buf) {
                Ok(text) => return RequestView { text, spans },
                Err(e) => buf = e.into_bytes(),
            }
        }
        let mut view = RequestView {
            text: String::with_capacity(buf.len()),
            spans: Vec::with_capacity(spans.len()),
        };
        for s in &spans {
            let part =
                |a: usize, b: usize| String::from_utf8_lossy(buf.get(a..b).unwrap_or_default());
            view.push(&part(s[0], s[1]), &part(s[2], s[3]));
        }
        view
    }

    fn push(&mut self, name: &str, value: &str) {
        let a = self.text.len();
        self.text.push_str(name);
        let b = self.text.len();
        if name.bytes().any(|c| c.is_ascii_uppercase()) {
            // In place: ASCII case changes keep every byte offset.
            if let Some(n) = self.text.get_mut(a..b) {
                n.make_ascii_lowercase();
            }
        }
        self.text.push_str(value);
        self.spans.push([a, b, b, self.text.len()]);
    }

    fn span(&self, a: usize, b: usize) -> &str {
        span(&self.text, a, b)
    }

    /// First value of a header (lowercased name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_all(name).next()
    }

    /// Every value of a header, in order.
    pub fn header_all<'s, 'n>(
        &'s self,
        name: &'n str,
    ) -> impl Iterator<Item = &'s str> + use<'s, 'n> {
        self.spans
            .iter()
            .filter(move |s| self.span(s[0], s[1]) == name)
            .map(move |s| self.span(s[2], s[3]))
    }

    /// Drops every value of a header (lowercased name); whether any was there.
    /// The text stays; only the spans go.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.spans.len();
        let text = &self.text;
        self.spans.retain(|s| span(text, s[0], s[1]) != name);
        self.spans.len() != before
    }

    /// The full `:path`, query string included.
    pub fn path(&self) -> &str {
        self.header(":path").unwrap_or("/")
    }
}

/// `text[a..b]`, or "" if that is not a span of it (never, by construction).
fn span(text: &str, a: usize, b: usize) -> &str {
    text.get(a..b).unwrap_or_default()
}

/// Serializes header pairs as proxy-wasm wants them (the inverse of
/// [`RequestView::from_serialized`]): a little-endian `u32` count, each
/// pair's name and value lengths, then each name and value followed by a NUL.
pub fn serialize_pairs<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(K, V)]) -> Vec<u8> {
    let len32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    let text: usize = pairs
        .iter()
        .map(|(k, v)| k.as_ref().len() + v.as_ref().len() + 2)
        .sum();
    let mut out = Vec::with_capacity(4 + 8 * pairs.len() + text);
    out.extend_from_slice(&len32(pairs.len()));
    for (k, v) in pairs {
        out.extend_from_slice(&len32(k.as_ref().len()));
        out.extend_from_slice(&len32(v.as_ref().len()));
    }
    for (k, v) in pairs {
        for part in [k.as_ref(), v.as_ref()] {
            out.extend_from_slice(part);
            out.push(0);
        }
    }
    out
}

/// The spans of a serialized header map, or `None` when the buffer is not
/// one (sizes past its end, a missing NUL). An empty buffer is no headers.
fn parse_serialized(buf: &[u8]) -> Option<Vec<[usize; 4]>> {
    if buf.is_empty() {
        return Some(Vec::new());
    }
    let word = |at: usize| -> Option<usize> {
        let b = buf.get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes(b.try_into().ok()?) as usize)
    };
    let n = word(0)?;
    let mut pos = n.checked_mul(8)?.checked_add(4)?;
    if pos > buf.len() {
        return None;
    }
    let mut spans = Vec::with_capacity(n);
    for i in 0..n {
        let mut span = [0usize; 4];
        for (j, len) in [word(4 + 8 * i)?, word(8 + 8 * i)?].into_iter().enumerate() {
            let end = pos.checked_add(len)?;
            if *buf.get(end)? != 0 {
                return None;
            }
            span[2 * j] = pos;
            span[2 * j + 1] = end;
            pos = end + 1;
        }
        spans.push(span);
    }
    Some(spans)
}

/// A token found in a request, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found<'a> {
    pub token: Cow<'a, str>,
    /// Every index into the provider's `locations` where the token was
    /// found, in order (never empty): `forward: false` removes it from each.
    pub locations: Vec<usize>,
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
            match &mut found {
                Some(f) if f.token != token => Err(AuthError::Multiple),
                Some(f) => {
                    if !f.locations.contains(&i) {
                        f.locations.push(i);
                    }
                    Ok(())
                }
                None => {
                    found = Some(Found {
                        token,
                        locations: vec![i],
                    });
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
                if req.path().len() > MAX_HEADER_VALUE_BYTES {
                    return Err(AuthError::TooLarge);
                }
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
