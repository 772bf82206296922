//! The JSON form of a provider's token locations (`from_headers`,
//! `from_params`, `from_cookies`) and their builder, which reports every
//! problem (with its JSON path) into the configuration's diagnostics list.

use serde_json::Value;

use crate::diag::{self, ConfigError};
use crate::header_name::{header_name, reserved_header};
use crate::json_read::{self as read, Obj, Read};

use super::Location;

/// A `from_headers` entry.
pub(crate) struct RawHeaderLocation {
    name: String,
    value_prefix: String,
}

impl RawHeaderLocation {
    /// A `from_headers` entry as written, at `path`.
    #[inline(never)] // configuration time: one copy, called from its readers
    pub(crate) fn read(v: &Value, path: &str) -> Read<Self> {
        let o = Obj::new(v, path, &["name", "value_prefix"])?;
        Ok(RawHeaderLocation {
            name: o.req("name", read::string)?,
            value_prefix: o.or_default("value_prefix", read::string)?,
        })
    }
}

/// Where a provider looks for its token, in the order given (headers, then
/// query parameters, then cookies); with none given, Envoy's default:
/// `Authorization: Bearer <token>`, then the `access_token` parameter.
/// `path` is the provider's JSON path.
#[inline(never)] // configuration time: keeps the caller's compiled size (V8 compile memory) down
pub(crate) fn locations(
    path: &str,
    from_headers: &[RawHeaderLocation],
    from_params: &[String],
    from_cookies: &[String],
    errors: &mut Vec<ConfigError>,
) -> Vec<Location> {
    let mut locations = Vec::new();
    for (i, h) in from_headers.iter().enumerate() {
        let at = || format!("{path}.from_headers[{i}].name");
        match header_name(&h.name) {
            Ok(n) if reserved_header(&n) => {
                diag::report(errors, at(), format!("{n:?} cannot carry a token"))
            }
            Ok(n) => locations.push(Location::Header {
                name: n,
                prefix: h.value_prefix.clone(),
            }),
            Err(e) => diag::report(errors, at(), e),
        }
    }
    for (i, q) in from_params.iter().enumerate() {
        if q.is_empty() {
            diag::report(
                errors,
                format!("{path}.from_params[{i}]"),
                "parameter name is empty",
            );
        } else {
            locations.push(Location::Param(q.clone()));
        }
    }
    for (i, c) in from_cookies.iter().enumerate() {
        if c.is_empty() || c.contains([';', '=', ' ', ',']) {
            diag::report(
                errors,
                format!("{path}.from_cookies[{i}]"),
                "invalid cookie name",
            );
        } else {
            locations.push(Location::Cookie(c.clone()));
        }
    }
    if locations.is_empty() {
        locations.push(Location::Header {
            name: "authorization".into(),
            prefix: "Bearer ".into(),
        });
        locations.push(Location::Param("access_token".into()));
    }
    locations
}
