use super::*;
use crate::Request;
use crate::testing;
use serde::{Deserialize, Serialize};

#[test]
fn raw_operations_and_scan_bounds() {
    testing::reset();
    for k in ["a", "b", "c", "d"] {
        set(k, k.as_bytes()).unwrap();
    }
    assert_eq!(get("b"), Some(b"b".to_vec()));
    assert!(delete("b"));
    assert!(!delete("b"));
    let keys = |v: Vec<Entry>| v.into_iter().map(|e| e.key).collect::<Vec<_>>();
    assert_eq!(keys(scan("a", Some("d"), 10, false)), ["a", "c"]);
    assert_eq!(keys(scan("a", None, 2, true)), ["d", "c"]);
    assert!(scan("d", Some("a"), 10, false).is_empty());
    assert!(scan("a", None, 0, false).is_empty());
    assert!(matches!(set("", b"x"), Err(StoreError::Invalid(_))));
    assert!(set(&"k".repeat(1025), b"x").is_err());
    let err: Error = StoreError::QuotaExceeded("keys".into()).into();
    assert_eq!(
        (err.status, err.code.as_deref()),
        (500, Some("store_quota_exceeded"))
    );
}

#[test]
fn push_padded_writes_what_format_would() {
    for (n, width) in [
        (0, 20),
        (7, 20),
        (12_345, 20),
        (u64::MAX, 20),
        (5, 12),
        (12_345, 3),
        (0, 0),
    ] {
        let mut key = "p/".to_owned();
        push_padded(&mut key, n, width);
        assert_eq!(key, format!("p/{n:0width$}"), "n={n} width={width}");
    }
}

#[test]
fn collection_keys_keep_their_documented_layout() {
    testing::reset();
    const THINGS: Collection<u32> = Collection::new("acct/k/things");
    THINGS.insert("a", &1).unwrap();
    THINGS.insert("b", &2).unwrap();
    let keys: Vec<String> = scan_prefix("acct/k/things/", 10, false)
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(
        keys,
        [
            "acct/k/things/idx/00000000000000000001/a",
            "acct/k/things/idx/00000000000000000002/b",
            "acct/k/things/obj/a",
            "acct/k/things/obj/b",
            "acct/k/things/seq",
        ]
    );
}

#[test]
fn prefixes() {
    assert_eq!(prefix_end("items/").as_deref(), Some("items0"));
    assert_eq!(prefix_end(""), None);
    assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
    assert_eq!(prefix_end("\u{D7FF}").as_deref(), Some("\u{E000}"));
    assert_eq!(prefix_end("\u{10FFFF}\u{10FFFF}"), None);
    assert_eq!(prefix_end("é\u{10FFFF}").as_deref(), Some("ê"));
    testing::reset();
    for k in ["p/1", "p/2", "p0", "q"] {
        set(k, b"").unwrap();
    }
    let got: Vec<_> = scan_prefix("p/", 10, false)
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(got, ["p/1", "p/2"]);
}

#[test]
fn json_values_and_counters() {
    testing::reset();
    set_json("j", &vec![1, 2]).unwrap();
    assert_eq!(get_json::<Vec<i32>>("j").unwrap(), Some(vec![1, 2]));
    assert_eq!(get_json::<i32>("missing").unwrap(), None);
    assert_eq!(get_json::<i32>("j").unwrap_err().status, 500);
    assert_eq!(counter("c").unwrap(), 0);
    assert_eq!(increment("c", 5).unwrap(), 5);
    assert_eq!(increment("c", -2).unwrap(), 3);
    assert_eq!(get("c"), Some(b"3".to_vec()));
    set_json("c", &i64::MAX).unwrap();
    assert_eq!(increment("c", 1).unwrap_err().status, 400);
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Thing {
    n: u32,
}

const THINGS: Collection<Thing> = Collection::new("things");

fn ns(page: &ListPage<Thing>) -> Vec<u32> {
    page.items.iter().map(|t| t.n).collect()
}

fn seed(count: u32) {
    testing::reset();
    for n in 1..=count {
        THINGS.insert(&format!("t{n}"), &Thing { n }).unwrap();
    }
}

#[test]
fn all_where_walks_past_one_chunk_in_order() {
    seed(250);
    let even = THINGS.all_where(|t| t.n % 2 == 0).unwrap();
    assert_eq!(even.len(), 125);
    assert!(even.iter().map(|t| t.n).eq((2..=250).step_by(2)));
    assert_eq!(THINGS.all_where(|_| true).unwrap().len(), 250);
}

#[test]
fn raw_get_is_the_stored_json_byte_for_byte() {
    seed(2);
    let raw = THINGS.get_raw("t2").unwrap().unwrap();
    assert_eq!(raw.get(), serde_json::to_string(&Thing { n: 2 }).unwrap());
    assert!(THINGS.get_raw("zz").unwrap().is_none());
}

#[test]
fn raw_insert_is_an_insert_of_the_encoded_value() {
    seed(1);
    let encoded = serde_json::value::to_raw_value(&Thing { n: 2 }).unwrap();
    THINGS.insert_raw("t2", &encoded).unwrap();
    assert_eq!(THINGS.get("t2").unwrap().map(|t| t.n), Some(2));
    assert_eq!(THINGS.get_raw("t2").unwrap().unwrap().get(), encoded.get());
    let page = THINGS.list(&Page::first(10), false).unwrap();
    assert_eq!(ns(&page), [1, 2]);
    let again = THINGS.insert_raw("t2", &encoded).unwrap_err();
    assert_eq!(again.code.as_deref(), Some("resource_already_exists"));
}

#[test]
fn crud_keeps_order_and_layout() {
    seed(3);
    assert_eq!(THINGS.get("t2").unwrap(), Some(Thing { n: 2 }));
    assert!(THINGS.contains("t2"));
    assert_eq!(
        THINGS
            .insert("t2", &Thing { n: 9 })
            .unwrap_err()
            .code
            .as_deref(),
        Some("resource_already_exists")
    );
    // Replacing keeps the place in the order.
    THINGS.put("t1", &Thing { n: 10 }).unwrap();
    THINGS.put("t4", &Thing { n: 4 }).unwrap();
    assert_eq!(
        THINGS.update("t2", |t| t.n = 20).unwrap(),
        Some(Thing { n: 20 })
    );
    assert_eq!(THINGS.update("zz", |t| t.n = 0).unwrap(), None);
    let all = THINGS.list(&Page::first(100), false).unwrap();
    assert_eq!((ns(&all), all.has_more), (vec![10, 20, 3, 4], false));
    assert_eq!(THINGS.remove("t3").unwrap(), Some(Thing { n: 3 }));
    assert_eq!(THINGS.remove("t3").unwrap(), None);
    assert_eq!(
        ns(&THINGS.list(&Page::first(100), true).unwrap()),
        [4, 20, 10]
    );
    assert_eq!(
        testing::store_keys()
            .into_iter()
            .find(|k| k.starts_with("things/idx/"))
            .as_deref(),
        Some("things/idx/00000000000000000001/t1")
    );
    assert_eq!(get("things/seq"), Some(b"4".to_vec()));
    assert!(get("things/obj/t4").is_some());
}

#[test]
fn newest_first_pagination_both_ways() {
    seed(5);
    let page = |after: Option<&str>, before: Option<&str>| {
        THINGS
            .list(
                &Page {
                    limit: 2,
                    starting_after: after.map(Into::into),
                    ending_before: before.map(Into::into),
                },
                true,
            )
            .unwrap()
    };
    let p1 = page(None, None);
    assert_eq!((ns(&p1), p1.has_more), (vec![5, 4], true));
    let p2 = page(Some("t4"), None);
    assert_eq!((ns(&p2), p2.has_more), (vec![3, 2], true));
    let p3 = page(Some("t2"), None);
    assert_eq!((ns(&p3), p3.has_more), (vec![1], false));
    // Walking back: items newer than the cursor, closest first, still
    // newest-first on the page.
    let b1 = page(None, Some("t1"));
    assert_eq!((ns(&b1), b1.has_more), (vec![3, 2], true));
    let b2 = page(None, Some("t3"));
    assert_eq!((ns(&b2), b2.has_more), (vec![5, 4], false));
    let b3 = page(None, Some("t4"));
    assert_eq!((ns(&b3), b3.has_more), (vec![5], false));
}

#[test]
fn oldest_first_pagination_both_ways() {
    seed(5);
    let page = |after: Option<&str>, before: Option<&str>| {
        let p = Page {
            limit: 2,
            starting_after: after.map(Into::into),
            ending_before: before.map(Into::into),
        };
        let l = THINGS.list(&p, false).unwrap();
        (ns(&l), l.has_more)
    };
    assert_eq!(page(None, None), (vec![1, 2], true));
    assert_eq!(page(Some("t2"), None), (vec![3, 4], true));
    assert_eq!(page(Some("t4"), None), (vec![5], false));
    assert_eq!(page(None, Some("t5")), (vec![3, 4], true));
    assert_eq!(page(None, Some("t3")), (vec![1, 2], false));
}

#[test]
fn filtered_listing_pages_over_chunks() {
    seed(250);
    let even = |t: &Thing| t.n.is_multiple_of(2);
    let p = |after: Option<&str>, before: Option<&str>, newest| {
        let page = Page {
            limit: 3,
            starting_after: after.map(Into::into),
            ending_before: before.map(Into::into),
        };
        let l = THINGS.list_where(&page, newest, even).unwrap();
        (ns(&l), l.has_more)
    };
    assert_eq!(p(None, None, true), (vec![250, 248, 246], true));
    assert_eq!(p(Some("t247"), None, true), (vec![246, 244, 242], true));
    assert_eq!(p(Some("t6"), None, true), (vec![4, 2], false));
    assert_eq!(p(None, Some("t245"), true), (vec![250, 248, 246], false));
    assert_eq!(p(None, Some("t3"), true), (vec![8, 6, 4], true));
    assert_eq!(p(None, None, false), (vec![2, 4, 6], true));
    assert_eq!(p(Some("t240"), None, false), (vec![242, 244, 246], true));
    let all = THINGS
        .list_where(&Page::first(200), false, |t| t.n > 100)
        .unwrap();
    assert_eq!((all.items.len(), all.has_more), (150, false));
    assert_eq!(all.items[0].n, 101);
}

#[test]
fn listing_edge_cases() {
    seed(0);
    let empty = THINGS.list(&Page::default(), true).unwrap();
    assert!(empty.items.is_empty() && !empty.has_more);
    seed(2);
    let zero = THINGS.list(&Page::first(0), true).unwrap();
    assert!(zero.items.is_empty() && zero.has_more);
    let missing = THINGS
        .list(
            &Page {
                starting_after: Some("nope".into()),
                ..Page::first(2)
            },
            true,
        )
        .unwrap_err();
    assert_eq!(
        (missing.status, missing.param.as_deref()),
        (404, Some("starting_after"))
    );
    // Other collections and neighbouring prefixes do not leak in.
    let other: Collection<Thing> = Collection::with_prefix("thingsx");
    other.insert("o", &Thing { n: 99 }).unwrap();
    assert_eq!(ns(&THINGS.list(&Page::first(10), true).unwrap()), [2, 1]);
    assert_eq!(other.prefix(), "thingsx");
    assert!(format!("{:?}", other.clone()).contains("thingsx"));
}

#[test]
fn page_from_query() {
    let q = |s: &str| Page::from_query(&Request::new("GET", &format!("/x?{s}")), 10, 100);
    assert_eq!(q("").unwrap(), Page::first(10));
    assert_eq!(
        q("limit=3&starting_after=a").unwrap(),
        Page {
            starting_after: Some("a".into()),
            ..Page::first(3)
        }
    );
    assert_eq!(
        q("limit=&ending_before=b")
            .unwrap()
            .ending_before
            .as_deref(),
        Some("b")
    );
    for bad in ["limit=0", "limit=101", "limit=x", "limit=-1"] {
        let e = q(bad).unwrap_err();
        assert_eq!(
            (e.status, e.param.as_deref()),
            (400, Some("limit")),
            "{bad}"
        );
    }
    assert_eq!(
        q("starting_after=a&ending_before=b").unwrap_err().status,
        400
    );
}
