//! Route matching for rules, compiled at configure time: Envoy's `RouteMatch`
//! subset (`prefix`, `path`, `safe_regex`, `headers`, `case_sensitive`).

use regex_lite::Regex;

/// How the request path is matched. Paths are matched without the query string.
#[derive(Debug)]
pub enum PathMatcher {
    Prefix(String),
    Exact(String),
    /// Anchored at compile time: matches the whole path.
    Regex(Regex),
}

/// How a header value is matched. The bool is `ignore_case`.
#[derive(Debug)]
pub enum StringMatch {
    Exact(String, bool),
    Prefix(String, bool),
    Suffix(String, bool),
    Contains(String, bool),
    Regex(Regex),
    /// `present_match`: matches when presence equals the flag.
    Present(bool),
}

#[derive(Debug)]
pub struct HeaderMatcher {
    /// Lowercased header name.
    pub name: String,
    kind: StringMatch,
    invert: bool,
}

impl HeaderMatcher {
    pub fn new(name: String, kind: StringMatch, invert: bool) -> Self {
        HeaderMatcher { name, kind, invert }
    }

    /// `value` is the request's header value, `None` when absent. As in Envoy,
    /// an absent header never matches a value matcher, even when inverted.
    pub fn matches(&self, value: Option<&str>) -> bool {
        let hit = match (&self.kind, value) {
            (StringMatch::Present(want), v) => *want == v.is_some(),
            (_, None) => return false,
            (StringMatch::Exact(s, ic), Some(v)) => eq(v, s, *ic),
            (StringMatch::Prefix(s, ic), Some(v)) => starts_with(v, s, *ic),
            (StringMatch::Suffix(s, ic), Some(v)) => ends_with(v, s, *ic),
            (StringMatch::Contains(s, ic), Some(v)) => contains(v, s, *ic),
            (StringMatch::Regex(r), Some(v)) => r.is_match(v),
        };
        hit != self.invert
    }
}

/// One rule's match: a path matcher plus header matchers (all must match).
#[derive(Debug)]
pub struct RouteMatcher {
    path: PathMatcher,
    case_sensitive: bool,
    headers: Vec<HeaderMatcher>,
}

impl RouteMatcher {
    pub fn new(path: PathMatcher, case_sensitive: bool, headers: Vec<HeaderMatcher>) -> Self {
        RouteMatcher {
            path,
            case_sensitive,
            headers,
        }
    }

    pub fn headers(&self) -> &[HeaderMatcher] {
        &self.headers
    }

    /// `path` is the `:path` without its query string; `header` looks a
    /// request header up by lowercased name.
    pub fn matches<'a>(&self, path: &str, mut header: impl FnMut(&str) -> Option<&'a str>) -> bool {
        let ic = !self.case_sensitive;
        let path_ok = match &self.path {
            PathMatcher::Prefix(p) => starts_with(path, p, ic),
            PathMatcher::Exact(p) => eq(path, p, ic),
            PathMatcher::Regex(r) => r.is_match(path),
        };
        path_ok && self.headers.iter().all(|h| h.matches(header(&h.name)))
    }
}

/// The path part of a `:path` value (everything before `?` or `#`).
pub fn path_only(path: &str) -> &str {
    match path.find(['?', '#']) {
        Some(i) => path.get(..i).unwrap_or(path),
        None => path,
    }
}

fn eq(v: &str, s: &str, ic: bool) -> bool {
    if ic {
        v.eq_ignore_ascii_case(s)
    } else {
        v == s
    }
}

fn starts_with(v: &str, s: &str, ic: bool) -> bool {
    match v.get(..s.len()) {
        Some(head) => eq(head, s, ic),
        None => false,
    }
}

fn ends_with(v: &str, s: &str, ic: bool) -> bool {
    match v.len().checked_sub(s.len()).and_then(|i| v.get(i..)) {
        Some(tail) => eq(tail, s, ic),
        None => false,
    }
}

fn contains(v: &str, s: &str, ic: bool) -> bool {
    if ic {
        v.to_ascii_lowercase().contains(&s.to_ascii_lowercase())
    } else {
        v.contains(s)
    }
}

#[cfg(test)]
mod tests;
