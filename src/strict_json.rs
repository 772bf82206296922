//! JSON read strictly: objects whose member names repeat, at any depth, are
//! refused. Tokens (header, claims), DPoP proofs, JWKS and OIDC discovery
//! documents are read this way.

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

/// A JSON object whose member names must be unique, at every depth (nested
/// objects, objects inside arrays): RFC 7515 lets a parser reject duplicates,
/// and accepting them invites parser-differential attacks (one component
/// reads the first `sub` or `org.role`, another the last).
pub(crate) struct UniqueMap(pub(crate) Map<String, Value>);

impl<'de> Deserialize<'de> for UniqueMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = UniqueMap;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<UniqueMap, A::Error> {
                unique_members(a).map(UniqueMap)
            }
        }
        d.deserialize_map(V)
    }
}

/// The members of an object, refusing a name seen twice.
fn unique_members<'de, A: MapAccess<'de>>(mut a: A) -> Result<Map<String, Value>, A::Error> {
    let mut m = Map::new();
    while let Some(k) = a.next_key::<String>()? {
        let UniqueValue(v) = a.next_value()?;
        if m.insert(k, v).is_some() {
            return Err(serde::de::Error::custom("duplicate member"));
        }
    }
    Ok(m)
}

/// Any JSON value whose objects, at every depth, have unique member names.
pub(crate) struct UniqueValue(pub(crate) Value);

impl<'de> Deserialize<'de> for UniqueValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = UniqueValue;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<UniqueValue, A::Error> {
                unique_members(a).map(|m| UniqueValue(Value::Object(m)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<UniqueValue, A::Error> {
                let mut items = Vec::new();
                while let Some(UniqueValue(v)) = a.next_element()? {
                    items.push(v);
                }
                Ok(UniqueValue(Value::Array(items)))
            }
            fn visit_bool<E>(self, b: bool) -> Result<UniqueValue, E> {
                Ok(UniqueValue(Value::Bool(b)))
            }
            fn visit_i64<E>(self, n: i64) -> Result<UniqueValue, E> {
                Ok(UniqueValue(Value::from(n)))
            }
            fn visit_u64<E>(self, n: u64) -> Result<UniqueValue, E> {
                Ok(UniqueValue(Value::from(n)))
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<UniqueValue, E> {
                serde_json::Number::from_f64(n)
                    .map(|n| UniqueValue(Value::Number(n)))
                    .ok_or_else(|| E::custom("number out of range"))
            }
            fn visit_str<E>(self, s: &str) -> Result<UniqueValue, E> {
                Ok(UniqueValue(Value::String(s.to_string())))
            }
            fn visit_string<E>(self, s: String) -> Result<UniqueValue, E> {
                Ok(UniqueValue(Value::String(s)))
            }
            fn visit_unit<E>(self) -> Result<UniqueValue, E> {
                Ok(UniqueValue(Value::Null))
            }
            fn visit_none<E>(self) -> Result<UniqueValue, E> {
                Ok(UniqueValue(Value::Null))
            }
        }
        d.deserialize_any(V)
    }
}
