//! HTTP header names as a configuration gives them: the token rule a name must
//! follow, and the names the filter must never read a token from, write or strip.

/// A lowercased HTTP header name, or why `name` is not one.
pub fn header_name(name: &str) -> Result<String, String> {
    if name.is_empty() {
        return Err("header name is empty".into());
    }
    let ok = name
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c));
    if !ok {
        return Err(format!("{name:?} is not a valid HTTP header name"));
    }
    Ok(name.to_ascii_lowercase())
}

/// Headers the filter must never write or strip (nor take a token from):
/// HTTP/2 pseudo-headers and hop-by-hop framing, which would break the request.
pub fn reserved_header(name: &str) -> bool {
    matches!(
        name,
        "host" | "content-length" | "transfer-encoding" | "connection" | "te" | "upgrade"
    ) || name.starts_with(':')
}
