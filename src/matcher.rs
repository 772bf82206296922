//! Route matching for rules, compiled at configure time: the part of Envoy's
//! `RouteMatch` that `jwt_authn`'s rule matcher reads (`prefix`, `path`,
//! `safe_regex`, `path_separated_prefix`, `headers`, `query_parameters`,
//! `case_sensitive`), with its meaning.

use regex_lite::Regex;

pub mod build;

/// How the request path is matched. Paths are matched without the query string.
#[derive(Debug)]
pub enum PathMatcher {
    Prefix(String),
    Exact(String),
    /// Anchored at compile time: matches the whole path.
    Regex(Regex),
    /// `path_separated_prefix`: the path is the prefix, or the prefix
    /// followed by `/` (the prefix never ends with `/`).
    Separated(String),
    /// `connect_matcher`: CONNECT requests, whatever their path.
    Connect,
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

impl StringMatch {
    /// Whether a present value matches (`Present(false)` never does).
    pub fn is_match(&self, v: &str) -> bool {
        match self {
            StringMatch::Exact(s, ic) => eq(v, s, *ic),
            StringMatch::Prefix(s, ic) => starts_with(v, s, *ic),
            StringMatch::Suffix(s, ic) => ends_with(v, s, *ic),
            StringMatch::Contains(s, ic) => contains(v, s, *ic),
            StringMatch::Regex(r) => r.is_match(v),
            StringMatch::Present(want) => *want,
        }
    }
}

impl HeaderMatcher {
    pub fn new(name: String, kind: StringMatch, invert: bool) -> Self {
        HeaderMatcher { name, kind, invert }
    }

    /// `value` is the request's header value, `None` when absent: the one-value
    /// case of [`HeaderMatcher::matches_all`].
    pub fn matches(&self, value: Option<&str>) -> bool {
        self.matches_all(value)
    }

    /// `values` are every value of the request header, in order (none: the
    /// header is absent). As Envoy's route header matching (which
    /// `jwt_authn`'s rules use): the matcher matches when any one value
    /// matches, so `invert_match` matches when no value does; an absent
    /// header never matches a value matcher, even when inverted.
    pub fn matches_all<'a>(&self, values: impl IntoIterator<Item = &'a str>) -> bool {
        let mut values = values.into_iter().peekable();
        let hit = match &self.kind {
            StringMatch::Present(want) => *want == values.peek().is_some(),
            _ if values.peek().is_none() => return false,
            kind => values.any(|v| kind.is_match(v)),
        };
        hit != self.invert
    }
}

/// A `query_parameters` entry: the parameter's first value (as sent, not
/// percent-decoded, as Envoy's router) must be present and, when a string
/// matcher is given, match it.
#[derive(Debug)]
pub struct QueryMatcher {
    pub name: String,
    /// `None`: presence is enough.
    pub value: Option<StringMatch>,
}

impl QueryMatcher {
    pub fn matches(&self, full_path: &str) -> bool {
        match first_query_value(full_path, &self.name) {
            None => false,
            Some(v) => self.value.as_ref().is_none_or(|m| m.is_match(v)),
        }
    }
}

/// One rule's match: a path matcher plus header matchers (all must match).
#[derive(Debug)]
pub struct RouteMatcher {
    path: PathMatcher,
    case_sensitive: bool,
    headers: Vec<HeaderMatcher>,
    query: Vec<QueryMatcher>,
}

impl RouteMatcher {
    pub fn new(path: PathMatcher, case_sensitive: bool, headers: Vec<HeaderMatcher>) -> Self {
        RouteMatcher {
            path,
            case_sensitive,
            headers,
            query: Vec::new(),
        }
    }

    /// Adds `query_parameters`.
    pub fn with_query(mut self, query: Vec<QueryMatcher>) -> Self {
        self.query = query;
        self
    }

    /// The whole match: `full_path` is the `:path` with its query string;
    /// `header` gives every value of a request header (lowercased name), in
    /// order.
    pub fn matches_request<'a, I>(&self, full_path: &str, header: impl Fn(&str) -> I) -> bool
    where
        I: IntoIterator<Item = &'a str>,
    {
        self.matches(path_only(full_path), header)
            && self.query.iter().all(|q| q.matches(full_path))
    }

    pub fn headers(&self) -> &[HeaderMatcher] {
        &self.headers
    }

    pub fn path(&self) -> &PathMatcher {
        &self.path
    }

    /// Matches every path (`prefix` `/` or empty, `safe_regex` `.*` or
    /// `/.*`) with no header or query condition.
    pub fn is_catch_all(&self) -> bool {
        if !self.headers.is_empty() || !self.query.is_empty() {
            return false;
        }
        match &self.path {
            PathMatcher::Prefix(p) => p.is_empty() || p == "/",
            PathMatcher::Regex(r) => matches!(r.as_str(), "^(?:.*)$" | "^(?:/.*)$"),
            _ => false,
        }
    }

    /// `path` is the `:path` without its query string; `header` gives every
    /// value of a request header (lowercased name), in order.
    pub fn matches<'a, I>(&self, path: &str, header: impl Fn(&str) -> I) -> bool
    where
        I: IntoIterator<Item = &'a str>,
    {
        if matches!(self.path, PathMatcher::Connect) {
            return header(":method").into_iter().next() == Some("CONNECT")
                && self.headers.iter().all(|h| h.matches_all(header(&h.name)));
        }
        let ic = !self.case_sensitive;
        let path_ok = match &self.path {
            PathMatcher::Prefix(p) => starts_with(path, p, ic),
            PathMatcher::Exact(p) => eq(path, p, ic),
            PathMatcher::Regex(r) => r.is_match(path),
            PathMatcher::Separated(p) => {
                starts_with(path, p, ic)
                    && matches!(path.as_bytes().get(p.len()), None | Some(b'/'))
            }
            PathMatcher::Connect => false,
        };
        path_ok && self.headers.iter().all(|h| h.matches_all(header(&h.name)))
    }
}

/// The path part of a `:path` value (everything before `?` or `#`).
pub fn path_only(path: &str) -> &str {
    match path.find(['?', '#']) {
        Some(i) => path.get(..i).unwrap_or(path),
        None => path,
    }
}

/// The first value of query parameter `name` in a `:path`, as sent (not
/// percent-decoded); a parameter without `=` has the empty value.
pub fn first_query_value<'a>(full_path: &'a str, name: &str) -> Option<&'a str> {
    let (_, query) = full_path.split_once('?')?;
    query
        .split('&')
        .find_map(|pair| match pair.split_once('=') {
            Some((k, v)) if k == name => Some(v),
            None if pair == name => Some(""),
            _ => None,
        })
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
