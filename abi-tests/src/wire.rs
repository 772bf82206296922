//! The proxy-wasm header-map serialization: a u32 count, then a (key length,
//! value length) u32 pair per entry, then each key and value followed by a
//! NUL (all little-endian).

use crate::host::HeaderMap;

pub fn serialize_map(map: &HeaderMap) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(map.len() as u32).to_le_bytes());
    for (k, v) in map {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in map {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

/// Reads a map the module sent; `None` when the bytes are not one.
pub fn deserialize_map(bytes: &[u8]) -> Option<HeaderMap> {
    let u32_at = |at: usize| -> Option<usize> {
        let b = bytes.get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let n = u32_at(0)?;
    let mut p = 4usize.checked_add(n.checked_mul(8)?)?;
    let mut map = Vec::with_capacity(n.min(1024));
    for i in 0..n {
        let klen = u32_at(4 + i * 8)?;
        let vlen = u32_at(8 + i * 8)?;
        let key = bytes.get(p..p.checked_add(klen)?)?;
        p += klen + 1;
        let value = bytes.get(p..p.checked_add(vlen)?)?;
        p += vlen + 1;
        map.push((String::from_utf8(key.to_vec()).ok()?, value.to_vec()));
    }
    Some(map)
}

/// Header-map pairs from string pairs.
pub fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let m = headers(&[(":path", "/x"), ("a", "")]);
        assert_eq!(deserialize_map(&serialize_map(&m)), Some(m));
        assert_eq!(deserialize_map(&[1, 0, 0, 0]), None);
    }
}
