//! One JWK read into a verification key: its members checked (types,
//! base64url, sizes, curve points) and echoed safely in error messages.

use super::*;

/// Truncates and escapes an untrusted string for inclusion in a message.
pub(super) fn echo(s: &str) -> String {
    let cut: String = s.chars().take(MAX_ECHO_CHARS).collect();
    if cut.len() < s.len() {
        format!("{:?}...", cut)
    } else {
        format!("{:?}", cut)
    }
}

/// "key \"kid\"" or "key #index" for warnings.
pub(super) fn key_label(entry: &Value, index: usize) -> String {
    match entry.get("kid").and_then(Value::as_str) {
        Some(kid) => format!("key {}", echo(kid)),
        None => format!("key #{index}"),
    }
}

/// An optional string member; JSON `null` counts as absent.
pub(super) fn opt_str<'a>(
    obj: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, String> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(format!("\"{name}\" is not a string")),
    }
}

pub(super) fn req_str<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<&'a str, String> {
    opt_str(obj, name)?.ok_or_else(|| format!("missing \"{name}\""))
}

/// A required base64url member, decoded. Errors never echo the value.
fn b64_member(obj: &Map<String, Value>, name: &str) -> Result<Vec<u8>, String> {
    let text = req_str(obj, name)?;
    B64URL
        .decode(text)
        .map_err(|_| format!("\"{name}\" is not valid base64url"))
}

pub(super) fn parse_jwk(obj: &Map<String, Value>) -> Result<Key, String> {
    let kid = opt_str(obj, "kid")?.map(str::to_string);
    let kty = req_str(obj, "kty")?;
    if let Some(usage) = opt_str(obj, "use")? {
        if usage != "sig" {
            return Err(format!("\"use\" is {}, not \"sig\"", echo(usage)));
        }
    }
    if let Some(ops) = obj.get("key_ops") {
        // RFC 7517 4.3: the operations the key is for.
        let list = ops
            .as_array()
            .ok_or_else(|| "\"key_ops\" is not an array".to_string())?;
        if !list.iter().any(|op| op.as_str() == Some("verify")) {
            return Err("\"key_ops\" does not include \"verify\"".to_string());
        }
    }
    let alg_name = opt_str(obj, "alg")?;
    let material = match kty {
        "RSA" => parse_rsa(obj)?,
        "EC" => parse_ec(obj)?,
        "OKP" => parse_okp(obj)?,
        "oct" => parse_oct(obj)?,
        other => return Err(format!("unsupported kty {}", echo(other))),
    };
    let alg = match alg_name {
        None => None,
        Some(name) => match Alg::from_name(name) {
            Some(a) if material.suits(a) => Some(a),
            Some(a) => return Err(format!("alg {a} does not suit a {kty} key")),
            None => return Err(format!("unsupported alg {}", echo(name))),
        },
    };
    Ok(Key { kid, alg, material })
}

fn parse_rsa(obj: &Map<String, Value>) -> Result<Material, String> {
    let n_raw = b64_member(obj, "n")?;
    let e_raw = b64_member(obj, "e")?;
    let n_bytes = rsa_verify::trim_leading_zeros(&n_raw);
    let e_bytes = rsa_verify::trim_leading_zeros(&e_raw);
    // Quick size gate before any big-number work.
    if n_bytes.len() > MAX_RSA_BITS / 8 {
        return Err(format!("RSA key over {MAX_RSA_BITS} bits"));
    }
    let e_odd = e_bytes.last().is_some_and(|b| b & 1 == 1);
    let e_gt_one = e_bytes.len() > 1 || e_bytes.first().is_some_and(|&b| b > 1);
    if !e_odd || !e_gt_one {
        return Err("RSA exponent must be odd and greater than 1".to_string());
    }
    // 33 bits at most, as BoringSSL (the host path) demands.
    if e_bytes.len() > 5 || (e_bytes.len() == 5 && e_bytes.first().is_some_and(|&b| b > 1)) {
        return Err("RSA exponent over 33 bits".to_string());
    }
    let bits = n_bytes
        .first()
        .map_or(0, |&top| 8 * n_bytes.len() - top.leading_zeros() as usize);
    if bits < MIN_RSA_BITS {
        return Err(format!("RSA key under {MIN_RSA_BITS} bits ({bits} bits)"));
    }
    let key = rsa_verify::PublicKey::new(n_bytes, e_bytes)
        .ok_or_else(|| "invalid RSA key: the modulus must be odd".to_string())?;
    let spki = key.spki_der();
    Ok(Material::Rsa { key, spki })
}

/// Uncompressed SEC1 point `04 || x || y`, coordinates left-padded to `len`.
fn sec1_point(obj: &Map<String, Value>, len: usize) -> Result<Vec<u8>, String> {
    let x = b64_member(obj, "x")?;
    let y = b64_member(obj, "y")?;
    let mut point = Vec::with_capacity(len.saturating_mul(2).saturating_add(1));
    point.push(0x04);
    for (name, c) in [("x", &x), ("y", &y)] {
        if c.is_empty() || c.len() > len {
            return Err(format!("EC \"{name}\" has the wrong length ({})", c.len()));
        }
        point.resize(point.len().saturating_add(len.saturating_sub(c.len())), 0);
        point.extend_from_slice(c);
    }
    Ok(point)
}

fn parse_ec(obj: &Map<String, Value>) -> Result<Material, String> {
    let crv = req_str(obj, "crv")?;
    match crv {
        "P-256" => {
            let point = sec1_point(obj, 32)?;
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point)
                .map_err(|_| "EC point is not on curve P-256".to_string())?;
            let mut spki = P256_SPKI_PREFIX.to_vec();
            spki.extend_from_slice(&point);
            Ok(Material::P256 { key, spki })
        }
        "P-384" => {
            let point = sec1_point(obj, 48)?;
            let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(&point)
                .map_err(|_| "EC point is not on curve P-384".to_string())?;
            let mut spki = P384_SPKI_PREFIX.to_vec();
            spki.extend_from_slice(&point);
            Ok(Material::P384 { key, spki })
        }
        "P-521" => {
            let point = sec1_point(obj, 66)?;
            let key = p521::ecdsa::VerifyingKey::from_sec1_bytes(&point)
                .map_err(|_| "EC point is not on curve P-521".to_string())?;
            let mut spki = P521_SPKI_PREFIX.to_vec();
            spki.extend_from_slice(&point);
            Ok(Material::P521 { key, spki })
        }
        other => Err(format!("unsupported EC crv {}", echo(other))),
    }
}

fn parse_okp(obj: &Map<String, Value>) -> Result<Material, String> {
    let crv = req_str(obj, "crv")?;
    if crv != "Ed25519" {
        return Err(format!("unsupported OKP crv {}", echo(crv)));
    }
    let x = b64_member(obj, "x")?;
    let Ok(bytes) = <[u8; ed25519_dalek::PUBLIC_KEY_LENGTH]>::try_from(x.as_slice()) else {
        return Err(format!("Ed25519 \"x\" must be 32 bytes, not {}", x.len()));
    };
    let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
        .map_err(|_| "invalid Ed25519 public key (not a curve point)".to_string())?;
    if key.is_weak() {
        // Small order: no signature under it could be trusted to mean anything.
        return Err("invalid Ed25519 public key (small order)".to_string());
    }
    Ok(Material::Ed25519(key))
}

fn parse_oct(obj: &Map<String, Value>) -> Result<Material, String> {
    let k = b64_member(obj, "k")?;
    if k.is_empty() {
        return Err("oct key \"k\" is empty".to_string());
    }
    if k.len() < MIN_HMAC_SECRET_BYTES {
        return Err(format!(
            "HMAC secret of {} byte(s) is too short to be used safely (at least \
             {MIN_HMAC_SECRET_BYTES}; RFC 7518 3.2 asks for the hash size)",
            k.len()
        ));
    }
    Ok(Material::Oct(k))
}
