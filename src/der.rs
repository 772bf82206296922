//! The little DER this filter writes for Envoy's `verify_signature`: an ECDSA
//! signature `SEQUENCE { INTEGER r, INTEGER s }` and an RSA
//! SubjectPublicKeyInfo. Definite lengths, minimal non-negative INTEGERs.

/// A definite length.
pub fn put_len(buf: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        buf.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
        let digits = bytes.get(start..).unwrap_or_default();
        buf.push(0x80 | digits.len() as u8);
        buf.extend_from_slice(digits);
    }
}

/// Tag, length, `content`.
pub fn put_tlv(buf: &mut Vec<u8>, tag: u8, content: &[u8]) {
    buf.push(tag);
    put_len(buf, content.len());
    buf.extend_from_slice(content);
}

/// A minimal DER INTEGER for a non-negative big-endian number.
pub fn put_uint(buf: &mut Vec<u8>, x: &[u8]) {
    let start = x.iter().position(|&b| b != 0).unwrap_or(x.len());
    let digits = x.get(start..).unwrap_or_default();
    let pad = digits.first().is_none_or(|&b| b & 0x80 != 0);
    buf.push(0x02);
    put_len(buf, digits.len() + usize::from(pad));
    if pad {
        buf.push(0);
    }
    buf.extend_from_slice(digits);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_integers() {
        let len = |n: usize| {
            let mut b = Vec::new();
            put_len(&mut b, n);
            b
        };
        assert_eq!(len(0), [0x00]);
        assert_eq!(len(0x7f), [0x7f]);
        assert_eq!(len(0x80), [0x81, 0x80]);
        assert_eq!(len(0xff), [0x81, 0xff]);
        assert_eq!(len(0x100), [0x82, 0x01, 0x00]);
        assert_eq!(len(0x1_0000), [0x83, 0x01, 0x00, 0x00]);
        let int = |x: &[u8]| {
            let mut b = Vec::new();
            put_uint(&mut b, x);
            b
        };
        assert_eq!(int(&[]), [0x02, 0x01, 0x00]);
        assert_eq!(int(&[0, 0]), [0x02, 0x01, 0x00]);
        assert_eq!(int(&[0, 0x7f]), [0x02, 0x01, 0x7f]);
        assert_eq!(int(&[0x80]), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(int(&[0, 1, 0, 1]), [0x02, 0x03, 0x01, 0x00, 0x01]);
    }
}
