//! JWKS parsing (`KeySet::parse`), then every parsed key is asked to verify a
//! signature under every algorithm (exercises the pre-parsed key material and
//! the length checks with hostile keys).
#![no_main]

use jwt_filter::crypto::jwks::{Alg, KeySet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok((set, _warnings)) = KeySet::parse(text) else {
        return;
    };
    for key in set.keys() {
        let _ = key.kty();
        let _ = key.spki_der();
        let _ = format!("{key:?}");
        for alg in Alg::ALL {
            for sig in [&[][..], &[0u8; 64][..], &[0xffu8; 96][..], &[1u8; 256][..]] {
                let _ = key.verify(alg, b"e30.e30", sig);
            }
        }
    }
    for alg in Alg::ALL {
        let _ = set.candidates(Some("k"), alg).count();
        let _ = set.candidates(None, alg).count();
    }
});
