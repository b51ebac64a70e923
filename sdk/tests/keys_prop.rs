//! Property tests over the key helpers scans are built on: a scan bounded by
//! `prefix_end(p)` must see every key that starts with `p` and nothing
//! after them, and zero-padded numbers must sort as text in numeric order.

use proptest::prelude::*;
use wt_sdk::store::{prefix_end, push_padded};

/// Prefixes and keys near the edges of the Unicode scalar range.
fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just('\u{10FFFF}'),
            Just('\u{D7FF}'),
            Just('\u{E000}'),
            Just('/'),
            Just('0'),
            Just('é'),
            any::<char>(),
        ],
        0..6,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

proptest! {
    #[test]
    fn prefix_end_bounds_exactly_the_keys_with_the_prefix(prefix in text(), rest in text(), other in text()) {
        let key = format!("{prefix}{rest}");
        match prefix_end(&prefix) {
            Some(end) => {
                prop_assert!(key < end, "{key:?} should sort before {end:?}");
                prop_assert!(!end.starts_with(&prefix), "{end:?} starts with {prefix:?}");
                // Whatever sorts at or after the prefix and before the end
                // starts with the prefix.
                if other >= prefix && other < end {
                    prop_assert!(other.starts_with(&prefix), "{other:?} in range of {prefix:?}");
                }
            }
            // No end: the prefix is empty or all `char::MAX`, and nothing
            // with the prefix can be bounded above.
            None => prop_assert!(prefix.chars().all(|c| c == char::MAX)),
        }
    }

    #[test]
    fn padded_numbers_sort_as_text_in_numeric_order(a in any::<u64>(), b in any::<u64>(), width in 0usize..24) {
        let (mut x, mut y) = (String::new(), String::new());
        push_padded(&mut x, a, width.max(20));
        push_padded(&mut y, b, width.max(20));
        prop_assert_eq!(a.cmp(&b), x.cmp(&y));
        let mut z = String::new();
        push_padded(&mut z, a, width);
        prop_assert_eq!(z, format!("{a:0width$}"));
    }
}
