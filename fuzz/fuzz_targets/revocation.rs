//! Revocation inputs from the network: the deny-list document
//! (`denylist::parse`, then its encoding read back to the same rules), the
//! SSF poll response (`parse_poll_response`), and each SET in it (or the
//! input itself as a SET's claims) through `verify_set` with a signature
//! check that always passes, so the claims and events are reached, and
//! `rules_for_event` into a bounded rule set.
#![no_main]

use std::collections::BTreeSet;
use std::sync::OnceLock;

use base64::Engine as _;
use jwt_filter::config::Config;
use jwt_filter::crypto::jwks::{Alg, Key, KeySet};
use jwt_filter::revocation::ssf::{self, SsfSettings, MAX_RULES_PER_EVENT};
use jwt_filter::revocation::{denylist, RuleSet};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

const NOW: u64 = 1_700_000_000;
const JWKS: &str = include_str!("../../tests/fixtures/keys/jwks.json");
const MAX_ENTRIES: usize = 64;
const MAX_BYTES: usize = 16 * 1024;

fn setup() -> &'static (SsfSettings, KeySet) {
    static SETUP: OnceLock<(SsfSettings, KeySet)> = OnceLock::new();
    SETUP.get_or_init(|| {
        let config = serde_json::json!({
            "providers": {"p": {
                "issuer": "https://issuer.test",
                "local_jwks": {"inline_string": JWKS},
                "revocation": {"ssf": {
                    "poll_endpoint": {"uri": "https://tx.test/poll", "cluster": "tx"},
                    "transmitter_jwks": {"http_uri": {"uri": "https://tx.test/jwks", "cluster": "tx"}},
                    "issuer": "https://tx.test",
                    "audience": "https://gateway.test",
                }},
            }},
            "rules": [],
        });
        let config = Config::parse(config.to_string().as_bytes()).expect("fuzz config");
        let ssf = config.providers[0]
            .revocation
            .clone()
            .and_then(|r| r.ssf)
            .expect("ssf settings");
        let (keys, _) = KeySet::parse(JWKS).expect("fixture JWKS");
        (ssf, keys)
    })
}

/// A SET's events into `set`; checks the per-event bound.
fn apply(jti: &str, text: &str, set: &mut RuleSet) {
    let (settings, keys) = setup();
    let always = |_: &Key, _: Alg, _: &[u8], _: &[u8]| true;
    let Ok(v) = ssf::verify_set(jti, text, settings, keys, &always) else {
        return;
    };
    for (event_type, payload) in &v.events {
        let rules = ssf::rules_for_event(
            event_type,
            payload,
            v.sub_id.as_ref(),
            v.iat,
            Some("https://issuer.test"),
            settings.rule_lifetime_secs,
        );
        assert!(rules.len() <= MAX_RULES_PER_EVENT);
        for r in rules {
            let _ = set.insert(r.kind, &r.value, r.entry, NOW);
        }
    }
}

fn rules(set: &RuleSet) -> BTreeSet<String> {
    set.entries()
        .map(|(k, v, e)| format!("{}|{v}|{e:?}", k.name()))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    // The deny-list document: bounded, and its encoding reads back the same.
    if let Ok(parsed) = denylist::parse(data, MAX_ENTRIES, MAX_BYTES, NOW) {
        assert!(parsed.set.len() <= MAX_ENTRIES && parsed.set.bytes() <= MAX_BYTES);
        let again = denylist::parse(
            denylist::encode(&parsed.set).as_bytes(),
            MAX_ENTRIES,
            MAX_BYTES,
            NOW,
        )
        .expect("an encoded set reads back");
        assert_eq!(rules(&parsed.set), rules(&again.set));
        let claims: Map<String, Value> = serde_json::from_slice(data).unwrap_or_default();
        let _ = parsed.set.revokes(&claims, NOW);
    }

    let mut set = RuleSet::new(MAX_ENTRIES, MAX_BYTES);
    // A poll response and its SETs.
    if let Ok(resp) = ssf::parse_poll_response(data) {
        for (jti, text) in &resp.sets {
            apply(jti, text, &mut set);
        }
    }
    // The input as a SET's claims, signed (as far as the always-true check
    // goes) by the fixture's ec-256 key.
    let jti = serde_json::from_slice::<Value>(data)
        .ok()
        .and_then(|c| c.get("jti").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_default();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let text = format!(
        "{}.{}.{}",
        b64.encode(br#"{"alg":"ES256","kid":"ec-256","typ":"secevent+jwt"}"#),
        b64.encode(data),
        b64.encode([0u8; 64])
    );
    apply(&jti, &text, &mut set);
    assert!(set.len() <= MAX_ENTRIES && set.bytes() <= MAX_BYTES);
});
