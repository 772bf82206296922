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
