//! RSA signature verification with a public key: RSASSA-PKCS1-v1_5 and
//! RSASSA-PSS (RFC 8017 sections 8.1.2 and 8.2.2), for RS256/384/512 and
//! PS256/384/512 when the host cannot verify them.
//!
//! The arithmetic is `crypto-bigint`'s (already linked through `p256`):
//! `BoxedUint` in 32-bit limbs on wasm32, whose products wasm computes
//! natively (`i64.mul`), and `s^e mod n` as Montgomery multiplications
//! (`BoxedMontyForm`) with the constants prepared once per key. (The `rsa`
//! crate's big numbers use 64-bit digits, emulated in wasm.) Everything is
//! public (key, signature, message), so nothing needs to be constant-time.
//!
//! Checks: the signature has exactly the modulus length and is below the
//! modulus; PKCS#1 v1.5 compares the whole encoded message with the one
//! expected (DigestInfo with the NULL parameter only); PSS requires MGF1 with
//! the same hash and a salt as long as the hash (RFC 7518 section 3.5).

use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::{BoxedUint, Limb, MontyForm, MontyMultiplier, Odd};
use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::crypto::der;

/// The hash of an RS*/PS* algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn len(self) -> usize {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }

    /// The hash of the concatenation of `parts`.
    fn digest(self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut h = D::new();
            for p in parts {
                h.update(p);
            }
            h.finalize().to_vec()
        }
        match self {
            Hash::Sha256 => run::<Sha256>(parts),
            Hash::Sha384 => run::<Sha384>(parts),
            Hash::Sha512 => run::<Sha512>(parts),
        }
    }

    /// DER `DigestInfo` up to the digest (RFC 8017 section 9.2, note 1).
    fn digest_info_prefix(self) -> &'static [u8] {
        match self {
            Hash::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            Hash::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            Hash::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }
}

/// An RSA public key prepared for Montgomery arithmetic.
#[derive(Clone)]
pub struct PublicKey {
    /// The modulus and its Montgomery constants.
    params: BoxedMontyParams,
    /// The modulus, big-endian, no leading zero.
    n_be: Vec<u8>,
    e: u64,
    /// Modulus length in bits.
    bits: usize,
}

impl PublicKey {
    /// From the big-endian modulus and exponent (leading zeros allowed).
    /// `None` unless `n` is odd and above 1 and `e` is odd, above 1 and at
    /// most 64 bits: the caller enforces its own size policy on `n`.
    pub fn new(n_be: &[u8], e_be: &[u8]) -> Option<PublicKey> {
        let n_be = trim_leading_zeros(n_be);
        let e_be = trim_leading_zeros(e_be);
        if e_be.len() > 8 {
            return None;
        }
        let e = e_be.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b));
        let top = *n_be.first()?;
        let bits = 8 * n_be.len() - top.leading_zeros() as usize;
        if e & 1 == 0 || e < 3 || bits < 2 {
            return None;
        }
        let n = BoxedUint::from_be_slice(n_be, precision(n_be.len())?).ok()?;
        let n = Option::<Odd<BoxedUint>>::from(Odd::new(n))?;
        Some(PublicKey {
            // The modulus is public: variable-time setup is fine.
            params: BoxedMontyParams::new_vartime(n),
            n_be: n_be.to_vec(),
            e,
            bits,
        })
    }

    /// Modulus length in bytes: the length every signature must have.
    pub fn size(&self) -> usize {
        self.bits.div_ceil(8)
    }

    /// Modulus length in bits.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// The key as DER SubjectPublicKeyInfo (rsaEncryption, NULL parameters),
    /// the form Envoy's `verify_signature` takes.
    pub fn spki_der(&self) -> Vec<u8> {
        // Never refused: both integers are non-empty-or-zero byte strings
        // far below the encoder's length limit.
        der::rsa_spki(&self.n_be, &self.e.to_be_bytes()).unwrap_or_default()
    }

    /// RSASSA-PKCS1-v1_5 over `message`.
    pub fn verify_pkcs1v15(&self, hash: Hash, message: &[u8], signature: &[u8]) -> bool {
        let Some(em) = self.public_op(signature) else {
            return false;
        };
        let prefix = hash.digest_info_prefix();
        let t_len = prefix.len() + hash.len();
        // EM = 00 01 FF..FF 00 || DigestInfo, at least 8 bytes of FF.
        let Some(ps_len) = em.len().checked_sub(t_len + 3).filter(|&n| n >= 8) else {
            return false;
        };
        let mut expected = Vec::with_capacity(em.len());
        expected.extend_from_slice(&[0x00, 0x01]);
        expected.resize(2 + ps_len, 0xff);
        expected.push(0x00);
        expected.extend_from_slice(prefix);
        expected.extend_from_slice(&hash.digest(&[message]));
        em == expected
    }

    /// RSASSA-PSS over `message`, MGF1 with `hash`, salt length = hash length.
    pub fn verify_pss(&self, hash: Hash, message: &[u8], signature: &[u8]) -> bool {
        let Some(em_full) = self.public_op(signature) else {
            return false;
        };
        let m_hash = hash.digest(&[message]);
        let (h_len, s_len) = (hash.len(), hash.len());
        let em_bits = self.bits - 1;
        let em_len = em_bits.div_ceil(8);
        // The encoded message is the low em_len bytes; any byte above is 0.
        let Some(skip) = em_full.len().checked_sub(em_len) else {
            return false;
        };
        let (high, em) = em_full.split_at(skip);
        if high.iter().any(|&b| b != 0) || em_len < h_len + s_len + 2 {
            return false;
        }
        let (masked_db, rest) = em.split_at(em_len - h_len - 1);
        let (h, trailer) = rest.split_at(h_len);
        if trailer != [0xbc] {
            return false;
        }
        let unused_bits = 8 * em_len - em_bits;
        let top_mask = 0xffu8 >> unused_bits;
        if masked_db.first().is_none_or(|&b| b & !top_mask != 0) {
            return false;
        }
        let mut db = mgf1(hash, h, masked_db.len());
        for (d, m) in db.iter_mut().zip(masked_db) {
            *d ^= m;
        }
        if let Some(first) = db.first_mut() {
            *first &= top_mask;
        }
        // DB = PS (zeros) || 01 || salt.
        let ps_len = em_len - h_len - s_len - 2;
        let (ps, rest) = db.split_at(ps_len);
        if ps.iter().any(|&b| b != 0) || rest.first() != Some(&0x01) {
            return false;
        }
        let salt = rest.get(1..).unwrap_or_default();
        hash.digest(&[&[0u8; 8], &m_hash, salt]) == h
    }

    /// `signature^e mod n` as big-endian bytes of the modulus length, or
    /// `None` when the signature has another length or is not below `n`.
    /// Square-and-multiply over the bits of `e`, which is public: for
    /// e = 65537, 16 squarings and one multiplication.
    fn public_op(&self, signature: &[u8]) -> Option<Vec<u8>> {
        if signature.len() != self.size() {
            return None;
        }
        let s = BoxedUint::from_be_slice(signature, self.params.bits_precision()).ok()?;
        if s >= *self.params.modulus().as_ref() {
            return None;
        }
        let base = BoxedMontyForm::new(s, &self.params);
        let mut acc = base.clone();
        // One multiplier (with its scratch buffer) for the whole exponentiation.
        let mut mm = <BoxedMontyForm as MontyForm>::Multiplier::from(&self.params);
        for bit in (0..63 - self.e.leading_zeros()).rev() {
            mm.square_assign(&mut acc);
            if self.e >> bit & 1 == 1 {
                mm.mul_assign(&mut acc, &base);
            }
        }
        let out = acc.retrieve().to_be_bytes();
        // The value has at most `size` bytes; the rest of the limbs are zero.
        let skip = out.len().checked_sub(self.size())?;
        out.get(skip..).map(<[u8]>::to_vec)
    }
}

/// Bits of precision for a modulus of `len` bytes: whole limbs.
fn precision(len: usize) -> Option<u32> {
    let bits = u32::try_from(len.checked_mul(8)?).ok()?;
    Some(bits.div_ceil(Limb::BITS) * Limb::BITS)
}

/// MGF1 (RFC 8017 B.2.1): `len` bytes from `seed`.
fn mgf1(hash: Hash, seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + hash.len());
    let mut counter: u32 = 0;
    while out.len() < len {
        out.extend_from_slice(&hash.digest(&[seed, &counter.to_be_bytes()]));
        counter = counter.wrapping_add(1);
    }
    out.truncate(len);
    out
}

/// A big-endian unsigned number without its leading zero bytes (zero:
/// empty).
pub fn trim_leading_zeros(be: &[u8]) -> &[u8] {
    let start = be.iter().position(|&b| b != 0).unwrap_or(be.len());
    be.get(start..).unwrap_or_default()
}

#[cfg(test)]
mod tests;
