//! Link settings for the wasm module.
//!
//! Stack: Rust's wasm32 default is 1 MiB, placed first in linear memory, and
//! every page of it was resident in every VM (one per worker plus the main
//! thread's). The deepest stack use measured under V8 is 31 KiB for the
//! request path with a token whose payload nests 126 arrays and 100 objects
//! (serde_json's recursion limit is 128, so no input nests deeper) and 40 KiB
//! for the pure-Rust signature checks; 256 KiB leaves six times that. An
//! overflow traps (the stack comes first, so it runs off the bottom of
//! memory); it never corrupts data. `tests/integration/test_attacks.py`
//! sends the deepest payloads through Envoy.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg-cdylib=-zstack-size=262144");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
