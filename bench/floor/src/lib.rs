//! Benchmark configuration F, "the floor": a proxy-wasm module that does only
//! the work every JWT filter on this host must do per request, and nothing
//! more. It is NOT an authenticator (no claims, no expiry, one key, one
//! algorithm); it exists so that `bench/run.py` can show, in the same run,
//! how far below native `jwt_authn` any proxy-wasm filter can get.
//!
//! Per request, the host calls in once (`proxy_on_request_headers`; context
//! create/delete are not exported, so the host skips them). The module then
//! - reads only the `authorization` header (one host call, one allocation
//!   callback; a real filter must also see duplicates, which costs more);
//! - if the token equals the last one verified, allows it (a one-entry
//!   cache: the cheapest possible hit, no expiry check, no clock);
//! - otherwise base64url-decodes the signature and asks Envoy's
//!   `verify_signature` foreign function to check RS256 with the configured
//!   key (one host call, one allocation callback for the result);
//! - allows by removing the `authorization` header (as `jwt_authn` does with
//!   `forward: false`), or denies with a bare 401 local reply.
//!
//! Its plugin configuration is the RSA key's SubjectPublicKeyInfo DER,
//! standard base64. The code is written for the benchmark only: no SDK, raw
//! host calls, state in a thread-local.

use std::cell::RefCell;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_buffer_bytes(t: u32, start: usize, len: usize, out: *mut *mut u8, out_len: *mut usize) -> u32;
    fn proxy_get_header_map_value(map: u32, key: *const u8, key_len: usize, out: *mut *mut u8, out_len: *mut usize) -> u32;
    fn proxy_remove_header_map_value(map: u32, key: *const u8, key_len: usize) -> u32;
    fn proxy_call_foreign_function(
        name: *const u8, name_len: usize, arg: *const u8, arg_len: usize, out: *mut *mut u8, out_len: *mut usize,
    ) -> u32;
    fn proxy_send_local_response(
        status: u32, details: *const u8, details_len: usize, body: *const u8, body_len: usize,
        headers: *const u8, headers_len: usize, grpc_status: i32,
    ) -> u32;
}

const PLUGIN_CONFIGURATION: u32 = 7;
const REQUEST_HEADERS: u32 = 0;
const CONTINUE: u32 = 0;
const PAUSE: u32 = 1;
const AUTHORIZATION: &[u8] = b"authorization";

#[derive(Default)]
struct State {
    spki_der: Vec<u8>,
    last_verified: Vec<u8>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    let mut v = std::mem::ManuallyDrop::new(Vec::<u8>::with_capacity(size));
    v.as_mut_ptr()
}

/// Takes over a buffer the host allocated through `proxy_on_memory_allocate`.
fn host_buffer(call: impl FnOnce(*mut *mut u8, *mut usize) -> u32) -> Option<Vec<u8>> {
    let (mut ptr, mut len) = (std::ptr::null_mut::<u8>(), 0usize);
    let status = call(&mut ptr, &mut len);
    if ptr.is_null() {
        return None;
    }
    // SAFETY: the host filled `ptr` with a `len`-byte allocation made by
    // `proxy_on_memory_allocate`, i.e. a `Vec<u8>` of capacity `len`.
    let buf = unsafe { Vec::from_raw_parts(ptr, len, len) };
    (status == 0).then_some(buf)
}

#[no_mangle]
pub extern "C" fn proxy_on_vm_start(_root: u32, _size: usize) -> u32 {
    1
}

#[no_mangle]
pub extern "C" fn proxy_on_configure(_root: u32, size: usize) -> u32 {
    // SAFETY: pointers to locals, valid for the call.
    let cfg = host_buffer(|p, n| unsafe { proxy_get_buffer_bytes(PLUGIN_CONFIGURATION, 0, size, p, n) });
    let der = cfg.and_then(|c| b64_decode(c.trim_ascii(), false));
    match der {
        Some(der) if !der.is_empty() => {
            STATE.with(|s| s.borrow_mut().spki_der = der);
            1
        }
        _ => 0,
    }
}

#[no_mangle]
pub extern "C" fn proxy_on_request_headers(_ctx: u32, _n: usize, _eos: u32) -> u32 {
    // SAFETY: pointers to locals and to a static name, valid for the call.
    let value = host_buffer(|p, n| unsafe {
        proxy_get_header_map_value(REQUEST_HEADERS, AUTHORIZATION.as_ptr(), AUTHORIZATION.len(), p, n)
    });
    let ok = value.as_deref().and_then(|v| v.strip_prefix(b"Bearer ")).is_some_and(check);
    if ok {
        // SAFETY: a static name.
        unsafe { proxy_remove_header_map_value(REQUEST_HEADERS, AUTHORIZATION.as_ptr(), AUTHORIZATION.len()) };
        CONTINUE
    } else {
        let body = b"Jwt verification fails";
        // SAFETY: static buffers; no extra headers.
        unsafe { proxy_send_local_response(401, [].as_ptr(), 0, body.as_ptr(), body.len(), [].as_ptr(), 0, -1) };
        PAUSE
    }
}

fn check(token: &[u8]) -> bool {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        if !s.last_verified.is_empty() && s.last_verified == token {
            return true;
        }
        let Some(dot) = token.iter().rposition(|&c| c == b'.') else { return false };
        let (text, sig) = (&token[..dot], &token[dot + 1..]);
        let Some(sig) = b64_decode(sig, true) else { return false };
        if !host_verify(&s.spki_der, &sig, text) {
            return false;
        }
        s.last_verified.clear();
        s.last_verified.extend_from_slice(token);
        true
    })
}

/// `VerifySignatureArguments` {hash_function, public_key, signature, text},
/// then `VerifySignatureResult.result == true` (`08 01`).
fn host_verify(key: &[u8], sig: &[u8], text: &[u8]) -> bool {
    let mut arg = Vec::with_capacity(key.len() + sig.len() + text.len() + 24);
    for (field, bytes) in [(1u8, &b"sha256"[..]), (2, key), (3, sig), (4, text)] {
        arg.push(field << 3 | 2);
        let mut n = bytes.len();
        while n >= 0x80 {
            arg.push((n as u8) | 0x80);
            n >>= 7;
        }
        arg.push(n as u8);
        arg.extend_from_slice(bytes);
    }
    let name = b"verify_signature";
    // SAFETY: pointers to locals, valid for the call.
    let out = host_buffer(|p, n| unsafe {
        proxy_call_foreign_function(name.as_ptr(), name.len(), arg.as_ptr(), arg.len(), p, n)
    });
    out.is_some_and(|o| o.starts_with(&[0x08, 0x01]))
}

fn b64_decode(s: &[u8], url: bool) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in s {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' if url => 62,
            b'_' if url => 63,
            b'+' if !url => 62,
            b'/' if !url => 63,
            b'=' if !url => break,
            _ => return None,
        };
        acc = acc << 6 | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}
