//! Flat form fields: names exactly as sent, repeated names kept.
//!
//! [`form`](crate::form) builds Stripe's bracket-nested tree, where a
//! repeated plain name keeps its last value. APIs such as Twilio's take flat
//! PascalCase fields instead and repeat a name for a list
//! (`MediaUrl=a&MediaUrl=b`), and some names carry characters that mean
//! something to a nesting parser (`DateSent<`, `DateSent>`). [`Fields`]
//! keeps every decoded pair in order and answers by exact name; [`encode`]
//! writes pairs back out, for links and for form-encoded callbacks.
//!
//! ```
//! use wt_sdk::fields::{Fields, encode};
//!
//! let f = Fields::parse("To=%2B15005550006&MediaUrl=a&MediaUrl=b&DateSent%3C=2024-01-02");
//! assert_eq!(f.get("To"), Some("+15005550006"));
//! assert_eq!(f.all("MediaUrl"), ["a", "b"]);
//! assert_eq!(f.get("DateSent<"), Some("2024-01-02"));
//! assert_eq!(encode([("To", "+1 5")]), "To=%2B1%205");
//! ```

use crate::{Request, form};

/// The decoded `(name, value)` pairs of a flat form, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    pairs: Vec<(String, String)>,
}

impl Fields {
    /// Decodes `input` (`application/x-www-form-urlencoded` or a query
    /// string): `+` is a space, percent escapes are decoded, empty pieces
    /// are skipped, a piece without `=` has an empty value.
    pub fn parse(input: &str) -> Self {
        Fields {
            pairs: form::pairs(input)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        }
    }

    /// The request body's fields (invalid UTF-8 is replaced, as a correctly
    /// encoded form is ASCII anyway).
    pub fn from_body(request: &Request) -> Self {
        Self::parse(&String::from_utf8_lossy(&request.body))
    }

    /// The query string's fields.
    pub fn from_query(request: &Request) -> Self {
        Self::parse(&request.query)
    }

    /// The first value sent for `name` (exact, case-sensitive match).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value for `name` unless it is empty: for APIs where an
    /// empty field means "not given".
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// Every value sent for `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether `name` was sent at all, even with an empty value.
    pub fn contains(&self, name: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == name)
    }

    /// All pairs, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }
}

/// Percent-encodes `s` for a form or query value: RFC 3986 unreserved
/// characters stay, everything else (space and `+` included) is escaped, so
/// the result decodes the same under form rules and path rules.
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// `name=value&…` with both sides percent-encoded, in the order given.
pub fn encode<K: AsRef<str>, V: AsRef<str>>(pairs: impl IntoIterator<Item = (K, V)>) -> String {
    let mut out = String::new();
    for (k, v) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(&encode_component(k.as_ref()));
        out.push('=');
        out.push_str(&encode_component(v.as_ref()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_repeats_order_and_exact_names() {
        let f = Fields::parse("Body=a+b&body=x&MediaUrl=1&&MediaUrl=2&Empty=&Bare");
        assert_eq!(f.get("Body"), Some("a b"));
        assert_eq!(f.get("body"), Some("x"));
        assert_eq!(f.all("MediaUrl"), ["1", "2"]);
        assert_eq!(f.get("Empty"), Some(""));
        assert_eq!(f.non_empty("Empty"), None);
        assert!(f.contains("Bare") && f.contains("Empty") && !f.contains("Nope"));
        assert_eq!(f.get("Nope"), None);
        assert!(f.all("Nope").is_empty());
        assert_eq!(f.pairs().len(), 6);
    }

    #[test]
    fn reads_bodies_and_queries() {
        let req = Request::new("POST", "/x?PageSize=2&DateSent%3E=2024-01-01")
            .with_form("To=%2B1555&Body=hi%21");
        let body = Fields::from_body(&req);
        assert_eq!(
            (body.get("To"), body.get("Body")),
            (Some("+1555"), Some("hi!"))
        );
        let query = Fields::from_query(&req);
        assert_eq!(query.get("DateSent>"), Some("2024-01-01"));
        assert_eq!(query.get("PageSize"), Some("2"));
    }

    #[test]
    fn encoding_round_trips() {
        let pairs = [("Date<", "2024 01+02"), ("é", "a&b=c"), ("k", "~-._")];
        let text = encode(pairs);
        assert_eq!(text, "Date%3C=2024%2001%2B02&%C3%A9=a%26b%3Dc&k=~-._");
        let back = Fields::parse(&text);
        for (k, v) in pairs {
            assert_eq!(back.get(k), Some(v));
        }
        assert_eq!(encode(Vec::<(&str, &str)>::new()), "");
    }
}
