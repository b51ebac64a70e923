use super::*;

fn keys(entries: &[(String, Vec<u8>)]) -> Vec<&str> {
    entries.iter().map(|(k, _)| k.as_str()).collect()
}

fn backends() -> Vec<(&'static str, TwinState, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let durable = TwinState::durable(&dir.path().join("t").join("state.redb")).unwrap();
    vec![
        ("memory", TwinState::in_memory(), None),
        ("redb", durable, Some(dir)),
    ]
}

const NO_QUOTA: Quota = Quota {
    max_keys: u64::MAX,
    max_bytes: u64::MAX,
};

fn seed(state: &TwinState, pairs: &[&str]) {
    let mut txn = state.begin();
    for key in pairs {
        txn.set((*key).to_owned(), key.as_bytes().to_vec(), NO_QUOTA)
            .unwrap();
    }
    txn.commit().unwrap();
}

#[test]
fn reads_see_own_writes_before_commit_and_others_do_not() {
    for (name, state, _dir) in backends() {
        seed(&state, &["a"]);
        let mut txn = state.begin();
        txn.set("b".into(), b"1".to_vec(), NO_QUOTA).unwrap();
        assert!(txn.delete("a").unwrap(), "{name}");
        assert_eq!(txn.get("b").unwrap(), Some(b"1".to_vec()), "{name}");
        assert_eq!(txn.get("a").unwrap(), None, "{name}");
        let other = state.begin();
        assert_eq!(other.get("a").unwrap(), Some(b"a".to_vec()), "{name}");
        assert_eq!(other.get("b").unwrap(), None, "{name}");
        txn.commit().unwrap();
        assert_eq!(
            state.begin().get("b").unwrap(),
            Some(b"1".to_vec()),
            "{name}"
        );
        assert_eq!(state.begin().get("a").unwrap(), None, "{name}");
    }
}

#[test]
fn dropped_transaction_leaves_no_trace() {
    for (name, state, _dir) in backends() {
        seed(&state, &["a"]);
        let mut txn = state.begin();
        txn.set("a".into(), b"changed".to_vec(), NO_QUOTA).unwrap();
        txn.set("z".into(), b"new".to_vec(), NO_QUOTA).unwrap();
        drop(txn);
        assert_eq!(state.usage().unwrap().keys, 1, "{name}");
        assert_eq!(
            state.begin().get("a").unwrap(),
            Some(b"a".to_vec()),
            "{name}"
        );
    }
}

#[test]
fn delete_reports_existence_as_seen_by_the_transaction() {
    for (name, state, _dir) in backends() {
        seed(&state, &["a"]);
        let mut txn = state.begin();
        assert!(!txn.delete("missing").unwrap(), "{name}");
        txn.set("new".into(), vec![], NO_QUOTA).unwrap();
        assert!(txn.delete("new").unwrap(), "{name}");
        assert!(txn.delete("a").unwrap(), "{name}");
        assert!(!txn.delete("a").unwrap(), "{name}");
    }
}

#[test]
fn scan_merges_pending_writes_in_both_directions() {
    for (name, state, _dir) in backends() {
        seed(&state, &["k1", "k3", "k5", "k7"]);
        let mut txn = state.begin();
        txn.set("k2".into(), b"p".to_vec(), NO_QUOTA).unwrap();
        txn.set("k5".into(), b"overwritten".to_vec(), NO_QUOTA)
            .unwrap();
        txn.delete("k3").unwrap();
        txn.set("k9".into(), b"p".to_vec(), NO_QUOTA).unwrap();

        let up = txn.scan("k", None, 100, false).unwrap();
        assert_eq!(keys(&up), ["k1", "k2", "k5", "k7", "k9"], "{name}");
        assert_eq!(up[2].1, b"overwritten", "{name}");

        let down = txn.scan("k", None, 100, true).unwrap();
        assert_eq!(keys(&down), ["k9", "k7", "k5", "k2", "k1"], "{name}");
    }
}

#[test]
fn scan_honours_bounds_and_limit() {
    for (name, state, _dir) in backends() {
        seed(&state, &["a", "b", "c", "d", "e"]);
        let txn = state.begin();
        let scan = |s, e, l, r| txn.scan(s, e, l, r).unwrap();
        assert_eq!(keys(&scan("b", Some("d"), 10, false)), ["b", "c"], "{name}");
        assert_eq!(keys(&scan("b", Some("d"), 10, true)), ["c", "b"], "{name}");
        assert_eq!(keys(&scan("a", None, 2, false)), ["a", "b"], "{name}");
        assert_eq!(keys(&scan("a", None, 2, true)), ["e", "d"], "{name}");
        assert!(scan("d", Some("b"), 10, false).is_empty(), "{name}");
        assert!(scan("a", None, 0, false).is_empty(), "{name}");
    }
}

#[test]
fn scan_fills_the_limit_past_pending_deletes() {
    for (name, state, _dir) in backends() {
        seed(&state, &["a", "b", "c", "d"]);
        let mut txn = state.begin();
        txn.delete("a").unwrap();
        txn.delete("b").unwrap();
        assert_eq!(
            keys(&txn.scan("", None, 2, false).unwrap()),
            ["c", "d"],
            "{name}"
        );
        assert_eq!(keys(&txn.scan("", None, 1, true).unwrap()), ["d"], "{name}");
    }
}

#[test]
fn clear_drops_everything() {
    for (name, state, _dir) in backends() {
        seed(&state, &["a", "b"]);
        state.clear().unwrap();
        assert_eq!(state.usage().unwrap().keys, 0, "{name}");
        assert!(
            state.begin().scan("", None, 10, false).unwrap().is_empty(),
            "{name}"
        );
        seed(&state, &["c"]);
        assert_eq!(state.usage().unwrap().keys, 1, "{name}");
    }
}

#[test]
fn usage_tracks_keys_and_bytes_through_overwrites_and_deletes() {
    for (name, state, _dir) in backends() {
        seed(&state, &["ab", "cd"]);
        assert_eq!(
            state.usage().unwrap(),
            Usage { keys: 2, bytes: 8 },
            "{name}"
        );
        let mut txn = state.begin();
        txn.set("ab".into(), b"longer".to_vec(), NO_QUOTA).unwrap();
        txn.delete("cd").unwrap();
        txn.commit().unwrap();
        assert_eq!(
            state.usage().unwrap(),
            Usage { keys: 1, bytes: 8 },
            "{name}"
        );
        state.clear().unwrap();
        assert_eq!(state.usage().unwrap(), Usage::default(), "{name}");
    }
}

#[test]
fn quotas_refuse_growth_but_allow_shrinking() {
    for (name, state, _dir) in backends() {
        let quota = Quota {
            max_keys: 2,
            max_bytes: 20,
        };
        let mut txn = state.begin();
        txn.set("a".into(), vec![0; 5], quota).unwrap();
        txn.set("b".into(), vec![0; 5], quota).unwrap();
        let third = txn.set("c".into(), vec![], quota);
        assert!(
            matches!(third, Err(SetError::Quota(ref m)) if m.contains("2 keys")),
            "{name}"
        );
        let big = txn.set("a".into(), vec![0; 15], quota);
        assert!(
            matches!(big, Err(SetError::Quota(ref m)) if m.contains("20 bytes")),
            "{name}"
        );
        txn.commit().unwrap();
        // Deleting makes room again, within one transaction.
        let mut txn = state.begin();
        txn.delete("a").unwrap();
        txn.set("c".into(), vec![0; 5], quota).unwrap();
        txn.commit().unwrap();
        assert_eq!(
            state.usage().unwrap(),
            Usage { keys: 2, bytes: 12 },
            "{name}"
        );
    }
}

#[test]
fn export_then_import_round_trips_exactly() {
    for (name, state, _dir) in backends() {
        seed(&state, &["b", "a", "c"]);
        let mut txn = state.begin();
        txn.set("bin".into(), vec![0, 159, 255], NO_QUOTA).unwrap();
        txn.commit().unwrap();
        let exported = state.export().unwrap();
        assert_eq!(exported.len(), 4, "{name}");
        state.import(vec![("only".into(), b"x".to_vec())]).unwrap();
        assert_eq!(
            state.usage().unwrap(),
            Usage { keys: 1, bytes: 5 },
            "{name}"
        );
        state.import(exported.clone()).unwrap();
        assert_eq!(state.export().unwrap(), exported, "{name}");
        assert_eq!(state.usage().unwrap().keys, 4, "{name}");
    }
}

#[test]
fn import_of_a_repeated_key_keeps_the_last_value_counted_once() {
    for (name, state, _dir) in backends() {
        state
            .import(vec![
                ("k".into(), b"first".to_vec()),
                ("j".into(), b"1".to_vec()),
                ("k".into(), b"2".to_vec()),
            ])
            .unwrap();
        assert_eq!(
            state.export().unwrap(),
            [("j".into(), b"1".to_vec()), ("k".into(), b"2".to_vec())],
            "{name}"
        );
        assert_eq!(
            state.usage().unwrap(),
            Usage { keys: 2, bytes: 4 },
            "{name}"
        );
    }
}

#[test]
fn memory_reads_and_scans_agree_after_overwrites_and_deletes() {
    let state = TwinState::in_memory();
    seed(&state, &["a/1", "a/2", "a/3", "b/1"]);
    let mut txn = state.begin();
    txn.set("a/2".into(), b"two".to_vec(), NO_QUOTA).unwrap();
    txn.delete("a/3").unwrap();
    txn.set("a/0".into(), b"zero".to_vec(), NO_QUOTA).unwrap();
    txn.commit().unwrap();
    let txn = state.begin();
    assert_eq!(txn.get("a/2").unwrap(), Some(b"two".to_vec()));
    assert_eq!(txn.get("a/3").unwrap(), None);
    let scanned = txn.scan("a/", Some("a0"), 10, true).unwrap();
    assert_eq!(keys(&scanned), ["a/2", "a/1", "a/0"]);
    assert_eq!(scanned[0].1, b"two");
    assert_eq!(state.usage().unwrap().keys, 4);
}

#[test]
fn durable_state_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("twin").join("state.redb");
    {
        let state = TwinState::durable(&path).unwrap();
        seed(&state, &["kept", "also"]);
        let mut txn = state.begin();
        txn.set("never".into(), b"x".to_vec(), NO_QUOTA).unwrap();
        drop(txn);
    }
    let state = TwinState::durable(&path).unwrap();
    assert_eq!(state.usage().unwrap().keys, 2);
    assert_eq!(state.begin().get("kept").unwrap(), Some(b"kept".to_vec()));
    assert_eq!(state.begin().get("never").unwrap(), None);
}
