//! Test helpers: mint tokens with any header and claims (HS256 with the
//! TEST-ONLY secret in tests/fixtures/keys/hs.secret, or unsigned garbage).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

pub const HS_SECRET_B64: &str = include_str!("../../tests/fixtures/keys/hs.secret");
pub const FIXTURE_JWKS: &str = include_str!("../../tests/fixtures/keys/jwks.json");

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn hs_secret() -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(HS_SECRET_B64.trim()).unwrap()
}

/// A JWKS holding only the HS secret, kid `hs-1`.
pub fn hs_jwks() -> String {
    format!(
        r#"{{"keys":[{{"kty":"oct","kid":"hs-1","k":"{}"}}]}}"#,
        HS_SECRET_B64.trim()
    )
}

/// `header.payload.signature` signed with HS256 and `secret`, header and
/// payload given as raw JSON text (so hostile JSON can be written).
pub fn mint_raw(header: &str, payload: &str, secret: &[u8]) -> String {
    let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(&mac.finalize().into_bytes()))
}

/// A normal HS256 token (kid hs-1) with these claims.
pub fn mint(payload: &str) -> String {
    mint_raw(
        r#"{"alg":"HS256","typ":"JWT","kid":"hs-1"}"#,
        payload,
        &hs_secret(),
    )
}

/// A metrics host that records what the code defines and counts: every
/// definition (kind and stat name, in order; a name defined twice gets the
/// same id), each id's last value (counters add up, gauges and histogram
/// samples overwrite) and every histogram sample. `refuse` names a metric the
/// host refuses to define, as Envoy may.
#[derive(Default)]
pub struct MetricRecorder {
    pub names: Vec<(crate::metrics::MetricKind, String)>,
    pub values: std::cell::RefCell<std::collections::HashMap<u32, i64>>,
    pub samples: std::cell::RefCell<std::collections::HashMap<u32, Vec<u64>>>,
    pub refuse: Option<String>,
}

impl crate::metrics::MetricHost for MetricRecorder {
    fn define(&mut self, kind: crate::metrics::MetricKind, name: &str) -> Option<u32> {
        if self.refuse.as_deref() == Some(name) {
            return None;
        }
        if let Some(i) = self.names.iter().position(|(_, n)| n == name) {
            return u32::try_from(i).ok();
        }
        self.names.push((kind, name.to_string()));
        u32::try_from(self.names.len() - 1).ok()
    }
    fn increment(&self, id: u32, delta: i64) {
        *self.values.borrow_mut().entry(id).or_default() += delta;
    }
    fn record(&self, id: u32, value: u64) {
        self.values.borrow_mut().insert(id, value as i64);
        self.samples.borrow_mut().entry(id).or_default().push(value);
    }
}

impl MetricRecorder {
    /// The id `name` was defined under, if it was.
    pub fn id(&self, name: &str) -> Option<u32> {
        let pos = self.names.iter().position(|(_, n)| n == name)?;
        u32::try_from(pos).ok()
    }
    /// The value recorded under `name`; 0 when defined but never touched.
    /// Panics when `name` was never defined (a test asking for a wrong name).
    pub fn get(&self, name: &str) -> i64 {
        let id = self
            .id(name)
            .unwrap_or_else(|| panic!("{name} not defined"));
        self.values.borrow().get(&id).copied().unwrap_or(0)
    }
    /// The value recorded under `name`, if it was defined and touched.
    pub fn value(&self, name: &str) -> Option<i64> {
        self.values.borrow().get(&self.id(name)?).copied()
    }
}
