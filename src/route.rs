//! What the request's route and stream say about which requirement applies,
//! beyond the rules: the route's metadata (`jwt_authn`'s per-route config,
//! carried as `filter_metadata`) and a filter state string
//! (`filter_state_rules`).
//!
//! The glue reads these host properties only when the configuration uses
//! them; turning the bytes the host returns into facts is plain Rust here.

/// Property paths the glue reads (proxy-wasm `get_property` segments).
pub const ROUTE_METADATA: [&str; 3] = ["xds", "route_metadata", "filter_metadata"];
/// Key under the namespace naming a `requirement_map` entry.
pub const KEY_REQUIREMENT_NAME: &str = "requirement_name";
/// Key under the namespace turning the filter off for the route.
pub const KEY_DISABLED: &str = "disabled";
/// `filter_state.<name>`: another filter's string object, serialized.
pub const FILTER_STATE: &str = "filter_state";

/// The route's own choice, from its metadata under the configured namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PerRoute {
    /// `disabled: true`: no JWT is needed on this route.
    Disabled,
    /// `requirement_name`: this `requirement_map` entry applies (an unknown
    /// name denies with 403, as `jwt_authn`).
    Name(String),
}

/// Facts about the request the rules alone do not see.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteFacts {
    /// The route's per-route selection; `None`: the rules decide.
    pub per_route: Option<PerRoute>,
    /// The string value of the `filter_state_rules` object, if set.
    pub filter_state: Option<String>,
    /// SHA-256 of the client certificate Envoy verified on this connection
    /// (hex, Envoy's `connection.sha256_peer_certificate_digest`); read only
    /// when a provider checks certificate-bound tokens.
    pub peer_certificate_sha256: Option<String>,
}

/// The per-route selection from the two metadata values as the host returned
/// them (`None`: absent). A `requirement_name` of any type counts as a name
/// (a value that is not a known name then denies): a route that says
/// something must never fall back to the rules by accident. `disabled` is a
/// serialized bool: one byte, 1 for true.
pub fn per_route(requirement_name: Option<&[u8]>, disabled: Option<&[u8]>) -> Option<PerRoute> {
    if let Some(name) = requirement_name {
        return Some(PerRoute::Name(String::from_utf8_lossy(name).into_owned()));
    }
    match disabled {
        Some([1]) => Some(PerRoute::Disabled),
        // `disabled: false` (or a value of another type) is not a selection
        // jwt_authn accepts; deny rather than guess.
        Some(_) => Some(PerRoute::Name(String::new())),
        None => None,
    }
}

#[cfg(test)]
mod tests;
