//! Native timing of the filter's own request-path work:
//! everything the wasm module does per request except the host calls and the
//! signature arithmetic. The headers are what Envoy hands the filter for a
//! `wrk` request; the verifier encodes the host's arguments (as the offload
//! does) and answers without doing the maths.
//!
//!     cargo run --release --example request_path [TOKENS_FILE] [ITERATIONS] [W1,W2,W4]
//!
//! As wasm under V8, as the filter runs (the tokens file must lie under the
//! current directory, which is the only one the module sees):
//!
//!     cargo build --release --example request_path --target wasm32-wasip1
//!     node tools/run_wasi.mjs target/wasm32-wasip1/release/examples/request_path.wasm \
//!         $PWD/bench/.cache/RS256-100000.txt 100000
//!
//! (`node --cpu-prof` then profiles it; build with CARGO_PROFILE_RELEASE_STRIP=false
//! to keep function names.)
//!
//! TOKENS_FILE defaults to bench/.cache/RS256-100000.txt (made by
//! `./build.sh bench`); one line per token. Workloads as in bench/run.py:
//! W1 one token reused (cache hits), W2 distinct tokens (cache misses), W4
//! distinct tokens whose signature the verifier refuses; W1-H10 and W1-H100
//! are W1 with 10 and 100 request headers sent, as bench/growth.py's header
//! rows (the filter's own share of what more headers cost). For a profile:
//! `perf record -g target/release/examples/request_path`.
use std::time::Instant;

use jwt_filter::config::Config;
use jwt_filter::crypto::hostverify::{self, HostAlgs};
use jwt_filter::crypto::jwks::{Alg, Key};
use jwt_filter::decision::Decision;
use jwt_filter::extract::RequestView;
use jwt_filter::keys::ProviderState;
use jwt_filter::policy::Evaluator;

/// Counts heap allocations, to report allocations per request.
struct Counting;
static ALLOCS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        std::alloc::System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) {
        std::alloc::System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: std::alloc::Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        std::alloc::System.realloc(p, l, n)
    }
}
#[global_allocator]
static GLOBAL: Counting = Counting;

const JWKS: &str = include_str!("../tests/fixtures/keys/jwks.json");

fn config() -> Config {
    let jwks: serde_json::Value = serde_json::from_str(JWKS).unwrap();
    let keys: Vec<_> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| matches!(k["kid"].as_str(), Some("rsa-a" | "ec-256" | "ed-1")))
        .cloned()
        .collect();
    let cfg = serde_json::json!({
        "providers": {"bench": {
            "issuer": "https://issuer.test",
            "audiences": ["api"],
            "local_jwks": {"inline_string": serde_json::json!({"keys": keys}).to_string()},
        }},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "bench"}}],
    });
    Config::parse(cfg.to_string().as_bytes()).unwrap()
}

/// The request headers as the host serializes them for
/// `proxy_get_header_map_pairs` (one allocation, as in the filter), plus
/// `extra` headers `x-bench-N: value-of-header-N` as bench/growth.py's wrk
/// script sends them.
fn headers(token: &str, extra: &[(String, String)]) -> Vec<u8> {
    let auth = format!("Bearer {token}");
    let base: [(&str, &str); 7] = [
        (":authority", "127.0.0.1:10000"),
        (":path", "/api"),
        (":method", "GET"),
        (":scheme", "http"),
        ("authorization", &auth),
        ("x-forwarded-proto", "http"),
        ("x-request-id", "5c4b2a8e-8a3f-4a53-9d5e-0b8f4f0e6b1d"),
    ];
    let mut pairs: Vec<(&str, &str)> = base.to_vec();
    pairs.extend(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let size = 4
        + 8 * pairs.len()
        + pairs
            .iter()
            .map(|(k, v)| k.len() + v.len() + 2)
            .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend((pairs.len() as u32).to_le_bytes());
    for (k, v) in &pairs {
        out.extend((k.len() as u32).to_le_bytes());
        out.extend((v.len() as u32).to_le_bytes());
    }
    for (k, v) in &pairs {
        out.extend(k.as_bytes());
        out.push(0);
        out.extend(v.as_bytes());
        out.push(0);
    }
    out
}

fn run(
    name: &str,
    config: &Config,
    tokens: &[String],
    iters: usize,
    valid: bool,
    extra_headers: usize,
) {
    let extra: Vec<(String, String)> = (1..=extra_headers)
        .map(|i| (format!("x-bench-{i}"), format!("value-of-header-{i}")))
        .collect();
    let providers = ProviderState::for_config(config, Vec::new());
    let host = {
        let mut h = HostAlgs::NONE;
        h.insert(Alg::RS256);
        h
    };
    // VerifySignatureResult: `result: true`, or false with an error string.
    let answer: &[u8] = if valid {
        &[0x08, 0x01]
    } else {
        &[0x12, 0x01, b'x']
    };
    let verify = move |k: &Key, a: Alg, i: &[u8], s: &[u8]| {
        let call = |args: &[u8]| {
            std::hint::black_box(args);
            Ok(answer.to_vec())
        };
        hostverify::verify_with(host, call, k, a, i, s)
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut allowed = 0usize;
    let allocs0 = ALLOCS.load(std::sync::atomic::Ordering::Relaxed);
    // (The `format!` of the Authorization value in `headers` is one
    // allocation the filter does not make.)
    // One token: its header buffer is built once and copied per request (as
    // the host writes it into the module), so only the filter's work is timed.
    let built = match tokens {
        [one] => Some(headers(one, &extra)),
        _ => None,
    };
    let start = Instant::now();
    for i in 0..iters {
        let buf = match &built {
            Some(b) => b.clone(),
            None => headers(&tokens[i % tokens.len()], &extra),
        };
        let view = RequestView::from_serialized(buf);
        let mut ev = Evaluator::new(config, &providers, &view, now, &verify);
        ev.token_facts = false;
        if let Decision::Allow(ops) = ev.outcome().decision {
            allowed += 1;
            std::hint::black_box(ops);
        }
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / iters as f64;
    let allocs =
        (ALLOCS.load(std::sync::atomic::Ordering::Relaxed) - allocs0) as f64 / iters as f64;
    println!("{name}: {us:.2} us, {allocs:.1} allocations per request ({allowed}/{iters} allowed)");
}

fn main() {
    let mut args = std::env::args().skip(1);
    let file = args
        .next()
        .unwrap_or_else(|| "bench/.cache/RS256-100000.txt".to_string());
    let iters: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(200_000);
    let tokens: Vec<String> = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{file}: {e} (run ./build.sh bench once to mint tokens)"))
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    // Which workloads: all, or a comma-separated list (for a profile of one).
    let only = args.next().unwrap_or_else(|| "W1,W2,W4".to_string());
    let config = config();
    let wanted = |w: &str| only.split(',').any(|o| o == w);
    if wanted("W1") {
        let first = tokens.get(..1).unwrap_or_default();
        run("W1 (one token, cache hits)", &config, first, iters, true, 0);
    }
    // W1 with 100 headers in all (what bench/growth.py's "100 headers"
    // sends: Host, Authorization and 98 x-bench-N; Envoy adds 5 more).
    if wanted("W1-H10") {
        let first = tokens.get(..1).unwrap_or_default();
        run("W1, 10 headers sent", &config, first, iters, true, 8);
    }
    if wanted("W1-H100") {
        let first = tokens.get(..1).unwrap_or_default();
        run("W1, 100 headers sent", &config, first, iters, true, 98);
    }
    if wanted("W2") {
        run("W2 (distinct tokens)", &config, &tokens, iters, true, 0);
    }
    if wanted("W4") {
        let label = "W4 (distinct tokens, bad signature)";
        run(label, &config, &tokens, iters, false, 0);
    }
}
