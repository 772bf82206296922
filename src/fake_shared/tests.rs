use super::*;
use crate::sender::dpop::CheckedProof;
use crate::sender::replay;
use crate::sender::replay::ReplayVerdict;

#[test]
fn compare_and_swap_follows_envoy() {
    let s = FakeSharedData::default();
    assert_eq!(s.get("k"), (None, None));
    // No value yet: any tag writes.
    assert!(s.set("k", b"a", Some(7)));
    let (v, tag) = s.get("k");
    assert_eq!(v.as_deref(), Some(&b"a"[..]));
    let tag = tag.unwrap();
    assert_ne!(tag, 0);
    // A stale tag loses, the current one wins and moves the tag.
    assert!(!s.set("k", b"b", Some(tag + 1)));
    assert!(s.set("k", b"b", Some(tag)));
    assert!(!s.set("k", b"c", Some(tag)));
    // No tag, or tag 0: unconditional.
    assert!(s.set("k", b"c", None));
    assert!(s.set("k", b"d", Some(0)));
    assert_eq!(s.get("k").0.as_deref(), Some(&b"d"[..]));
    assert_eq!(s.find_suffix("k").as_deref(), Some(&b"d"[..]));
    assert_eq!(s.find_suffix("|meta"), None);
}

/// The DPoP replay record shared by all workers, on the fake store: a proof
/// is fresh once, then a replay for every worker.
#[test]
fn shared_dpop_replay_record_refuses_a_proof_seen_by_another_worker() {
    let s = FakeSharedData::default();
    assert!(replay::prepare_shared(&s, &[3; 32]));
    let proof = |jti: &str| CheckedProof {
        jkt: "thumb".into(),
        jti: jti.into(),
        iat: 1_000,
    };
    let settings = replay::ReplaySettings {
        scope: replay::ReplayScope::Shared,
        capacity: 64,
        per_key: 64,
        max_age_secs: 60,
    };
    let record = |p: &CheckedProof| replay::record_shared(&s, p, 1_060, 1_000, &settings);
    assert_eq!(record(&proof("a")), ReplayVerdict::Fresh);
    assert_eq!(record(&proof("a")), ReplayVerdict::Replayed);
    assert_eq!(record(&proof("b")), ReplayVerdict::Fresh);
}

/// Through [`SharedData`] (as the replay record, the key lifecycle and the
/// feeds see it) the fake keeps the same compare-and-swap rules.
#[test]
fn shared_data_trait_keeps_compare_and_swap() {
    let fake = FakeSharedData::default();
    let s: &dyn SharedData = &fake;
    assert_eq!(s.shared_get("k"), (None, None));
    assert!(s.shared_set("k", b"a", None));
    let (v, tag) = s.shared_get("k");
    assert_eq!(v.as_deref(), Some(&b"a"[..]));
    let tag = tag.unwrap();
    // Another writer moves the tag: the first reader's write loses.
    assert!(fake.set("k", b"other", Some(tag)));
    assert!(!s.shared_set("k", b"b", Some(tag)));
    assert_eq!(s.shared_get("k").0.as_deref(), Some(&b"other"[..]));
    // An empty value reads as no value with a tag.
    assert!(s.shared_set("k", b"", None));
    assert!(matches!(s.shared_get("k"), (None, Some(_))));
}
