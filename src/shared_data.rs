//! Shared data of one Envoy (proxy-wasm `get_shared_data` /
//! `set_shared_data`): what the DPoP replay record, the remote-key lifecycle
//! and the revocation feeds keep for every VM of the Envoy. The glue
//! implements it on the host; [`crate::fake_shared`] is the fake the native
//! tests and the mesh simulation use.

/// Values with a compare-and-swap tag: a write with a tag succeeds only if
/// nobody wrote the key since that tag was read. A write without a tag, or
/// to a key that does not exist yet, always succeeds (Envoy ignores the tag
/// then).
pub trait SharedData {
    /// The value and its tag (`(None, None)`: never written, or the host
    /// refused the read).
    fn shared_get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>);
    /// Writes `value`; with `cas`, only if nobody wrote since that read.
    /// Returns whether it was written.
    fn shared_set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool;
}
