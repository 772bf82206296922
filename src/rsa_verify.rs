//! RSA signature verification with a public key: RSASSA-PKCS1-v1_5 and
//! RSASSA-PSS (RFC 8017 sections 8.1.2 and 8.2.2), for RS256/384/512 and
//! PS256/384/512 when the host cannot verify them.
//!
//! Why not the `rsa` crate for this step: its big numbers use 64-bit digits,
//! and wasm has no 64 x 64 -> 128-bit multiply, so every digit product is
//! emulated. Here the modulus is held in 32-bit limbs, whose products wasm
//! computes natively (`i64.mul`), and `s^e mod n` runs as Montgomery
//! multiplications with `R^2 mod n` prepared once per key. Everything is
//! public (key, signature, message), so nothing needs to be constant-time.
//!
//! Checks: the signature has exactly the modulus length and is below the
//! modulus; PKCS#1 v1.5 compares the whole encoded message with the one
//! expected (DigestInfo with the NULL parameter only); PSS requires MGF1 with
//! the same hash and a salt as long as the hash (RFC 7518 section 3.5).

use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::der;

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
    /// Modulus, little-endian 32-bit limbs, no zero top limb.
    n: Vec<u32>,
    /// `-n^-1 mod 2^32`.
    n0inv: u32,
    /// `R^2 mod n`, `R = 2^(32 * limbs)`.
    rr: Vec<u32>,
    e: u64,
    /// Modulus length in bits.
    bits: usize,
}

impl PublicKey {
    /// From the big-endian modulus and exponent (leading zeros allowed).
    /// `None` unless `n` is odd and above 1 and `e` is odd, above 1 and at
    /// most 64 bits: the caller enforces its own size policy on `n`.
    pub fn new(n_be: &[u8], e_be: &[u8]) -> Option<PublicKey> {
        let n = limbs_from_be(trim(n_be));
        let e_be = trim(e_be);
        if e_be.len() > 8 {
            return None;
        }
        let e = e_be.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b));
        let n0 = *n.first()?;
        if n0 & 1 == 0 || (n.len() == 1 && n0 == 1) || e & 1 == 0 || e < 3 {
            return None;
        }
        let top = *n.last()?;
        let bits = 32 * n.len() - top.leading_zeros() as usize;
        // Newton's iteration doubles the correct low bits each step: 1 -> 32.
        let mut inv: u32 = 1;
        for _ in 0..5 {
            inv = inv.wrapping_mul(2u32.wrapping_sub(n0.wrapping_mul(inv)));
        }
        let mut key = PublicKey {
            n0inv: inv.wrapping_neg(),
            rr: Vec::new(),
            e,
            bits,
            n,
        };
        key.rr = key.r_squared();
        Some(key)
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
        let mut ints = Vec::with_capacity(self.size() + 16);
        der::put_uint(&mut ints, &limbs_to_be(&self.n, self.size()));
        der::put_uint(&mut ints, &self.e.to_be_bytes());
        let mut bits = vec![0x00]; // BIT STRING: no unused bits
        der::put_tlv(&mut bits, 0x30, &ints);
        // SEQUENCE { OID 1.2.840.113549.1.1.1 (rsaEncryption), NULL }
        let mut body = vec![
            0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05,
            0x00,
        ];
        der::put_tlv(&mut body, 0x03, &bits);
        let mut out = Vec::with_capacity(body.len() + 4);
        der::put_tlv(&mut out, 0x30, &body);
        out
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
    fn public_op(&self, signature: &[u8]) -> Option<Vec<u8>> {
        if signature.len() != self.size() {
            return None;
        }
        let k = self.n.len();
        // `size` bytes are exactly `k` limbs.
        let s = limbs_from_be(signature);
        if s.len() != k || !less_than(&s, &self.n) {
            return None;
        }
        let mut scratch = vec![0u32; k + 2];
        let mut base = vec![0u32; k];
        self.mont_mul(&s, &self.rr, &mut scratch, &mut base); // s * R mod n
        let mut acc = base.clone();
        let mut tmp = vec![0u32; k];
        for bit in (0..63 - self.e.leading_zeros()).rev() {
            self.mont_mul(&acc, &acc, &mut scratch, &mut tmp);
            std::mem::swap(&mut acc, &mut tmp);
            if self.e >> bit & 1 == 1 {
                self.mont_mul(&acc, &base, &mut scratch, &mut tmp);
                std::mem::swap(&mut acc, &mut tmp);
            }
        }
        let mut one = vec![0u32; k];
        if let Some(l) = one.first_mut() {
            *l = 1;
        }
        self.mont_mul(&acc, &one, &mut scratch, &mut tmp); // out of Montgomery form
        Some(limbs_to_be(&tmp, self.size()))
    }

    /// `out = a * b * R^-1 mod n` (CIOS), for `a, b < n`; `out < n`.
    /// Slices of the wrong length leave `out` untouched (never, by construction).
    fn mont_mul(&self, a: &[u32], b: &[u32], t: &mut [u32], out: &mut [u32]) {
        let n = self.n.as_slice();
        let k = n.len();
        if a.len() != k || b.len() != k || t.len() != k + 2 || out.len() != k {
            return;
        }
        t.fill(0);
        for &ai in a {
            // t += ai * b
            let ai = u64::from(ai);
            let mut carry = 0u64;
            for (tj, &bj) in t.iter_mut().zip(b) {
                let x = u64::from(*tj) + ai * u64::from(bj) + carry;
                *tj = x as u32;
                carry = x >> 32;
            }
            let x = u64::from(t[k]) + carry;
            t[k] = x as u32;
            t[k + 1] = (x >> 32) as u32;
            // t = (t + m * n) / 2^32, with m making the low limb vanish.
            let m = u64::from(t[0].wrapping_mul(self.n0inv));
            let mut carry = (u64::from(t[0]) + m * u64::from(n[0])) >> 32;
            for j in 1..k {
                let x = u64::from(t[j]) + m * u64::from(n[j]) + carry;
                t[j - 1] = x as u32;
                carry = x >> 32;
            }
            let x = u64::from(t[k]) + carry;
            t[k - 1] = x as u32;
            t[k] = t[k + 1].wrapping_add((x >> 32) as u32);
            t[k + 1] = 0;
        }
        // t < 2n: one conditional subtraction.
        let result = &t[..k];
        if t[k] != 0 || !less_than(result, n) {
            let mut borrow = 0i64;
            for ((o, &tj), &nj) in out.iter_mut().zip(result).zip(n) {
                let x = i64::from(tj) - i64::from(nj) + borrow;
                *o = x as u32;
                borrow = x >> 32;
            }
        } else {
            out.copy_from_slice(result);
        }
    }

    /// `R^2 mod n`: `R mod n` by doubling, then doubled `t` more times and
    /// squared `j` times in Montgomery form, where `32 * limbs = t * 2^j`
    /// (each squaring of `R * 2^x` gives `R * 2^(2x)`).
    fn r_squared(&self) -> Vec<u32> {
        let k = self.n.len();
        let total = 32 * k;
        let j = total.trailing_zeros();
        let t = total >> j;
        let mut x = vec![0u32; k];
        if let Some(l) = x.first_mut() {
            *l = 1;
        }
        for _ in 0..total + t {
            self.double_mod(&mut x);
        }
        let mut scratch = vec![0u32; k + 2];
        let mut tmp = vec![0u32; k];
        for _ in 0..j {
            self.mont_mul(&x, &x, &mut scratch, &mut tmp);
            std::mem::swap(&mut x, &mut tmp);
        }
        x
    }

    /// `x = 2x mod n` for `x < n`.
    fn double_mod(&self, x: &mut [u32]) {
        let mut carry = 0u32;
        for l in x.iter_mut() {
            let next = *l >> 31;
            *l = *l << 1 | carry;
            carry = next;
        }
        if carry != 0 || !less_than(x, &self.n) {
            let mut borrow = 0i64;
            for (l, &nj) in x.iter_mut().zip(&self.n) {
                let v = i64::from(*l) - i64::from(nj) + borrow;
                *l = v as u32;
                borrow = v >> 32;
            }
        }
    }
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

fn trim(be: &[u8]) -> &[u8] {
    let start = be.iter().position(|&b| b != 0).unwrap_or(be.len());
    be.get(start..).unwrap_or_default()
}

/// Big-endian bytes to little-endian limbs (no zero top limb for trimmed input).
fn limbs_from_be(be: &[u8]) -> Vec<u32> {
    be.rchunks(4)
        .map(|c| c.iter().fold(0u32, |acc, &b| acc << 8 | u32::from(b)))
        .collect()
}

/// Little-endian limbs to `len` big-endian bytes (the value fits).
fn limbs_to_be(limbs: &[u32], len: usize) -> Vec<u8> {
    let mut out: Vec<u8> = limbs.iter().flat_map(|l| l.to_le_bytes()).collect();
    out.resize(len.max(out.len()), 0);
    out.truncate(len);
    out.reverse();
    out
}

/// `a < b` for equal-length little-endian limbs.
fn less_than(a: &[u32], b: &[u32]) -> bool {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        if x != y {
            return x < y;
        }
    }
    false
}

#[cfg(test)]
mod tests;
