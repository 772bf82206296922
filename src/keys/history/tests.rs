use super::*;

fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn first_set_is_no_change_and_keeps_its_time() {
    let (h, c) = KeyHistory::default().update(&ids(&["a", "b"]), 1_000);
    assert_eq!(c, Change::default());
    assert_eq!(h.oldest(), Some(1_000));
    assert_eq!(h.len(), 2);
}

#[test]
fn rotation_adds_removes_and_ages_from_first_sight() {
    let (h, _) = KeyHistory::default().update(&ids(&["a", "b"]), 1_000);
    // b stays, c appears, a goes.
    let (h, c) = h.update(&ids(&["b", "c"]), 5_000);
    assert_eq!(
        c,
        Change {
            added: 1,
            removed: 1
        }
    );
    assert_eq!(h.oldest(), Some(1_000)); // b, first seen at 1000
    let (h, c) = h.update(&ids(&["c"]), 9_000);
    assert_eq!(
        c,
        Change {
            added: 0,
            removed: 1
        }
    );
    assert_eq!(h.oldest(), Some(5_000));
    // The same set again: nothing changes.
    let (h2, c) = h.update(&ids(&["c"]), 12_000);
    assert_eq!(c, Change::default());
    assert_eq!(h2, h);
}

#[test]
fn encode_decode_round_trip_and_junk_is_skipped() {
    let (h, _) = KeyHistory::default().update(&ids(&["a", "k 2", "#1"]), 42);
    assert_eq!(KeyHistory::decode(h.encode().as_bytes()), h);
    let junk = KeyHistory::decode(b"x y\n12\n7 ok\n\xff\xfe");
    assert_eq!(junk.oldest(), Some(7));
    assert_eq!(junk.len(), 1);
    assert!(KeyHistory::decode(b"").is_empty());
}

#[test]
fn duplicate_ids_count_once() {
    let (h, _) = KeyHistory::default().update(&ids(&["a"]), 1);
    let (h, c) = h.update(&ids(&["a", "b", "b"]), 2);
    assert_eq!(
        c,
        Change {
            added: 1,
            removed: 0
        }
    );
    assert_eq!(h.len(), 2);
}
