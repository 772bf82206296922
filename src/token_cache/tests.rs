use super::*;
use serde_json::json;

fn claims(sub: &str) -> Rc<Map<String, Value>> {
    match json!({ "sub": sub }) {
        Value::Object(m) => Rc::new(m),
        _ => unreachable!(),
    }
}

fn keyset() -> Rc<KeySet> {
    Rc::new(KeySet::default())
}

#[test]
fn hit_and_miss() {
    let mut c = TokenCache::new(10, MAX_BYTES);
    assert!(c.get("a.b.c", None, 0).is_none());
    c.insert("a.b.c", None, claims("alice"), Some(100.0), 1, 0);
    let hit = c.get("a.b.c", None, 50).unwrap();
    assert_eq!(hit.claims["sub"], "alice");
    assert_eq!(hit.exp, Some(100.0));
    assert!(c.get("a.b.d", None, 50).is_none());
    assert!(c.get("a.b.", None, 50).is_none());
    assert!(c.get("a.b.cc", None, 50).is_none());
    assert_eq!(c.len(), 1);
}

#[test]
fn entries_never_outlive_exp() {
    let mut c = TokenCache::new(10, MAX_BYTES);
    c.insert("t", None, claims("a"), Some(100.0), 1, 90);
    assert!(c.get("t", None, 100).is_some());
    assert!(c.get("t", None, 101).is_none());
    assert!(c.is_empty(), "dropped on the stale lookup");
    assert_eq!(c.bytes(), 0);
    // Already expired: not stored. No exp: kept.
    c.insert("old", None, claims("a"), Some(10.0), 1, 11);
    assert!(c.is_empty());
    c.insert("forever", None, claims("a"), None, 1, 11);
    assert!(c.get("forever", None, u64::MAX / 2).is_some());
}

#[test]
fn key_set_change_invalidates() {
    let mut c = TokenCache::new(10, MAX_BYTES);
    let v1 = keyset();
    c.insert("t", Some(&v1), claims("a"), None, 1, 0);
    assert!(c.get("t", Some(&v1), 0).is_some());
    let v2 = keyset();
    assert!(c.get("t", Some(&v2), 0).is_none());
    assert!(
        c.get("t", Some(&v1), 0).is_none(),
        "the stale entry is gone"
    );
    // Local (None) vs remote never mix.
    c.insert("t", None, claims("a"), None, 1, 0);
    assert!(c.get("t", Some(&v1), 0).is_none());
    c.insert("t", Some(&v1), claims("a"), None, 1, 0);
    assert!(c.get("t", None, 0).is_none());
    // Even after the old set is dropped and a new one allocated.
    c.insert("u", Some(&v1), claims("a"), None, 1, 0);
    drop(v1);
    let v3 = keyset();
    assert!(c.get("u", Some(&v3), 0).is_none());
}

#[test]
fn bounded_by_entries_with_clock_eviction() {
    let mut c = TokenCache::new(3, MAX_BYTES);
    for t in ["t0", "t1", "t2"] {
        c.insert(t, None, claims(t), None, 1, 0);
    }
    // t0 and t2 are used: t1 is the victim.
    assert!(c.get("t0", None, 0).is_some());
    assert!(c.get("t2", None, 0).is_some());
    c.insert("t3", None, claims("t3"), None, 1, 0);
    assert_eq!(c.len(), 3);
    assert!(c.get("t1", None, 0).is_none());
    for t in ["t0", "t2", "t3"] {
        assert!(c.get(t, None, 0).is_some(), "{t}");
    }
    for i in 0..1000 {
        let t = format!("x{i}");
        c.insert(&t, None, claims("x"), None, 1, 0);
        assert!(c.len() <= 3);
        assert!(c.get(&t, None, 0).is_some());
    }
    assert!(c.slots.len() <= 3);
}

#[test]
fn bounded_by_bytes() {
    let per = 100 + 2 * 10 + ENTRY_OVERHEAD;
    let mut c = TokenCache::new(100, per * 2);
    let token = |i: usize| format!("{i:0>100}");
    for i in 0..10 {
        c.insert(&token(i), None, claims("a"), None, 10, 0);
        assert!(c.bytes() <= per * 2);
    }
    assert_eq!(c.len(), 2);
    // Larger than the whole budget: not stored, nothing evicted.
    c.insert(&"y".repeat(per * 2), None, claims("a"), None, 10, 0);
    assert_eq!(c.len(), 2);
    assert!(c.get(&token(9), None, 0).is_some());
}

#[test]
fn disabled_cache_never_stores() {
    let mut c = TokenCache::new(0, MAX_BYTES);
    assert!(!c.is_enabled());
    c.insert("t", None, claims("a"), None, 1, 0);
    assert!(c.get("t", None, 0).is_none());
}

#[test]
fn reinsert_replaces_and_clear_empties() {
    let mut c = TokenCache::new(5, MAX_BYTES);
    c.insert("t", None, claims("a"), None, 1, 0);
    c.insert("t", None, claims("b"), None, 1, 0);
    assert_eq!(c.len(), 1);
    assert_eq!(c.get("t", None, 0).unwrap().claims["sub"], "b");
    c.clear();
    assert!(c.is_empty());
    assert_eq!(c.bytes(), 0);
}

#[test]
fn same_bytes_is_slice_equality() {
    let base: Vec<u8> = (0..40u8).collect();
    for len in [0, 1, 7, 8, 9, 15, 16, 17, 40] {
        let a = &base[..len];
        assert!(same_bytes(a, a));
        assert!(!same_bytes(a, &base[..len.saturating_sub(1)]) || len == 0);
        for i in 0..len {
            let mut b = a.to_vec();
            b[i] ^= 0x80;
            assert!(!same_bytes(a, &b), "len {len}, byte {i}");
        }
    }
}
