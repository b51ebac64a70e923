//! Property tests over the parsers every twin runs on untrusted input: the
//! Stripe-style form parser and the query helpers must never panic, and
//! what they accept must mean what it says.
//!
//! A long run: `PROPTEST_CASES=100000 cargo test -p wt-sdk --test parsers_prop`.

use proptest::prelude::*;
use wt_sdk::{Request, form};

/// Keys built from the pieces that make bracket parsing hard.
fn key() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("a".to_owned()),
            Just("metadata".to_owned()),
            Just("[".to_owned()),
            Just("]".to_owned()),
            Just("[]".to_owned()),
            Just("[0]".to_owned()),
            Just("[1]".to_owned()),
            Just("[k]".to_owned()),
            Just("%5B".to_owned()),
            Just("%5D".to_owned()),
            Just("%".to_owned()),
            Just("+".to_owned()),
            "[a-z0-9]{1,3}",
        ],
        0..8,
    )
    .prop_map(|parts| parts.concat())
}

fn body() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            key(),
            prop_oneof![Just(String::new()), "[ -~]{0,6}", ".{0,4}"],
        ),
        0..10,
    )
    .prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

proptest! {
    #[test]
    fn form_parsing_never_panics_on_shaped_input(input in body()) {
        let _ = form::parse(&input);
    }

    #[test]
    fn form_parsing_never_panics_on_any_bytes(input in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = form::parse_bytes(&input);
    }

    #[test]
    fn query_helpers_never_panic(query in ".{0,64}") {
        let request = Request::new("GET", &format!("/x?{query}"));
        let _ = request.query_pairs();
        let _ = request.query_param("a");
        let _ = request.query_form();
    }

    #[test]
    fn plain_keys_round_trip(pairs in prop::collection::btree_map("[a-z]{1,8}", "[a-zA-Z0-9 ]{0,8}", 0..8)) {
        let input = pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", v.replace(' ', "+")))
            .collect::<Vec<_>>()
            .join("&");
        let parsed = form::parse(&input).unwrap();
        for (k, v) in &pairs {
            prop_assert_eq!(parsed[k].as_str(), Some(v.as_str()));
        }
    }

    #[test]
    fn indexed_arrays_keep_their_order(values in prop::collection::vec("[a-z]{1,5}", 1..12)) {
        let input = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("items[{i}][price]={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let parsed = form::parse(&input).unwrap();
        let items = parsed["items"].as_array().unwrap();
        prop_assert_eq!(items.len(), values.len());
        for (item, v) in items.iter().zip(&values) {
            prop_assert_eq!(item["price"].as_str(), Some(v.as_str()));
        }
    }
}
