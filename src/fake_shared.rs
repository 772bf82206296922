//! A stand-in for one Envoy's proxy-wasm shared data, for the native unit
//! tests and the mesh simulation (`examples/mesh_sim.rs`); not in the wasm
//! module. It keeps Envoy's compare-and-swap rules: every write gives the
//! value a new non-zero tag; a write with a tag succeeds only if the value
//! was not written since that tag was read (tag 0, or no value yet: always).

use std::cell::RefCell;
use std::collections::HashMap;

use crate::shared_data::SharedData;

/// One Envoy's shared data: key -> (value, compare-and-swap tag).
#[derive(Debug, Default)]
pub struct FakeSharedData {
    entries: RefCell<HashMap<String, (Vec<u8>, u32)>>,
}

impl FakeSharedData {
    /// The value and its tag (both `None` when the key was never written).
    /// An empty value reads as no value with a tag, as the proxy-wasm SDK
    /// reads it from Envoy (the host hands back no buffer for it).
    pub fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        match self.entries.borrow().get(key) {
            Some((v, cas)) if v.is_empty() => (None, Some(*cas)),
            Some((v, cas)) => (Some(v.clone()), Some(*cas)),
            None => (None, None),
        }
    }

    /// Writes `value`; with `cas` (non-zero), only if the key's tag is still
    /// `cas`. Returns whether it was written.
    pub fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        let mut entries = self.entries.borrow_mut();
        let current = entries.get(key).map(|(_, c)| *c);
        if let (Some(want), Some(have)) = (cas, current) {
            if want != 0 && want != have {
                return false;
            }
        }
        let next = current.unwrap_or(0).wrapping_add(1).max(1);
        entries.insert(key.to_string(), (value.to_vec(), next));
        true
    }

    /// The value of the first key (in no particular order) ending in `suffix`.
    pub fn find_suffix(&self, suffix: &str) -> Option<Vec<u8>> {
        self.entries
            .borrow()
            .iter()
            .find(|(k, _)| k.ends_with(suffix))
            .map(|(_, (v, _))| v.clone())
    }
}

impl SharedData for FakeSharedData {
    fn shared_get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        FakeSharedData::get(self, key)
    }
    fn shared_set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        FakeSharedData::set(self, key, value, cas)
    }
}

#[cfg(test)]
mod tests;
