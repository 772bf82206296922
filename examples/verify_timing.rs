//! Native timing of the pure-Rust signature paths: our
//! `Key::verify` (`rsa_verify`, RustCrypto `p256`, `ed25519-dalek`) against
//! jwt-simple's pure-Rust verification, same keys and tokens.
//!
//!     cargo run --release --example verify_timing [ITERATIONS]
//!
//! and inside wasm, under V8 (Node.js), as the filter runs in Envoy:
//!
//!     cargo build --release --example verify_timing --target wasm32-wasip1
//!     node tools/run_wasi.mjs target/wasm32-wasip1/release/examples/verify_timing.wasm 200
//!
//! With a second argument (`RS256`, `PS256`, `ES256` or `EdDSA`) only that
//! algorithm runs, and only our check: the process CPU time (`time node ...`)
//! then measures it on a machine that is not idle, where the per-check
//! figures (wall-clock time) are not meaningful.
//!
//! Needs an otherwise idle machine for meaningful numbers. Keys: the TEST-ONLY
//! keys in tests/fixtures/keys.
use std::time::Instant;

use jwt_filter::crypto::jwks::{Alg, KeySet};
use jwt_simple::prelude::*;

const JWKS: &str = include_str!("../tests/fixtures/keys/jwks.json");
const RSA: &str = include_str!("../tests/fixtures/keys/rsa2048.pem");
const EC: &str = include_str!("../tests/fixtures/keys/ec256.pem");
const ED: &str = include_str!("../tests/fixtures/keys/ed25519.pem");

fn time<F: FnMut() -> bool>(iters: u32, mut f: F) -> f64 {
    assert!(f(), "verification failed");
    let start = Instant::now();
    for _ in 0..iters {
        std::hint::black_box(f());
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(iters)
}

fn split(token: &str) -> (Vec<u8>, Vec<u8>) {
    use base64::Engine;
    let (input, sig) = token.rsplit_once('.').unwrap();
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sig)
        .unwrap();
    (input.as_bytes().to_vec(), sig)
}

fn main() {
    let iters: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let only = std::env::args().nth(2);
    let (set, _) = KeySet::parse(JWKS).unwrap();
    let key = |kid: &str| {
        set.keys()
            .iter()
            .find(|k| k.kid.as_deref() == Some(kid))
            .unwrap()
    };
    let claims = || Claims::create(Duration::from_hours(1)).with_issuer("https://issuer.test");

    // One line per algorithm: its token (signed by jwt-simple), our signature
    // check with the JWKS key `kid`, and jwt-simple's whole-token check.
    let line = |name: &str, token: String, kid: &str, alg: Alg, theirs: &dyn Fn(&str) -> bool| {
        if only.as_deref().is_some_and(|o| o != name) {
            return;
        }
        let (input, sig) = split(&token);
        let ours = time(iters, || key(kid).verify(alg, &input, &sig));
        if only.is_some() {
            println!("{name:6} ours {ours:8.1} us");
            return;
        }
        let theirs = time(iters, || theirs(&token));
        println!("{name:6} ours {ours:8.1} us   jwt-simple {theirs:8.1} us");
    };
    // The key pair types differ, so a macro rather than a loop.
    macro_rules! compare {
        ($name:literal, $pair:expr, $kid:literal, $alg:expr) => {{
            let pair = $pair;
            let (pk, token) = (pair.public_key(), pair.sign(claims()).unwrap());
            line($name, token, $kid, $alg, &|t| {
                pk.verify_token::<NoCustomClaims>(t, None).is_ok()
            });
        }};
    }
    compare!(
        "RS256",
        RS256KeyPair::from_pem(RSA).unwrap(),
        "rsa-a",
        Alg::RS256
    );
    compare!(
        "PS256",
        PS256KeyPair::from_pem(RSA).unwrap(),
        "rsa-a",
        Alg::PS256
    );
    compare!(
        "ES256",
        ES256KeyPair::from_pem(EC).unwrap(),
        "ec-256",
        Alg::ES256
    );
    compare!(
        "EdDSA",
        Ed25519KeyPair::from_pem(ED).unwrap(),
        "ed-1",
        Alg::EdDSA
    );
    if only.is_none() {
        println!("(jwt-simple's figure includes parsing the token and its claims; ours is the signature only)");
    }
}
