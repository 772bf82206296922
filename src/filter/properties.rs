//! Reads the host properties [`crate::route::RouteFacts`] is made of, and
//! only those the configuration needs: the route's metadata under
//! `route_metadata_namespace`, the `filter_state_rules` object, and the
//! client certificate's digest for certificate-bound tokens.

use crate::config::Config;
use crate::route::{self, RouteFacts};
use crate::sender::binding::BindingMode;

use super::abi;

/// A property's bytes; `None` when absent or on any host error.
fn property(path: &[&str]) -> Option<Vec<u8>> {
    abi::property(path)
        .ok()
        .filter(|b| !b.is_empty() || path.last() == Some(&route::KEY_REQUIREMENT_NAME))
}

/// The facts for the current request context.
pub fn facts(config: &Config) -> RouteFacts {
    let per_route = config.route_metadata_namespace.as_deref().and_then(|ns| {
        let [a, b, c] = route::ROUTE_METADATA;
        let name = property(&[a, b, c, ns, route::KEY_REQUIREMENT_NAME]);
        let disabled = match name {
            Some(_) => None,
            None => property(&[a, b, c, ns, route::KEY_DISABLED]),
        };
        route::per_route(name.as_deref(), disabled.as_deref())
    });
    let filter_state = config.filter_state_rules.as_ref().and_then(|f| {
        property(&[route::FILTER_STATE, &f.name]).map(|b| String::from_utf8_lossy(&b).into_owned())
    });
    // Only when a provider checks certificate-bound tokens: a host call saved
    // on every other request.
    let peer_certificate_sha256 = config
        .providers
        .iter()
        .any(|p| p.cert_binding != BindingMode::Off)
        .then(|| property(&["connection", "sha256_peer_certificate_digest"]))
        .flatten()
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    RouteFacts {
        per_route,
        filter_state,
        peer_certificate_sha256,
    }
}
