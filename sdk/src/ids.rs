//! Vendor-style object ids: `cus_` + random base62.
//!
//! Randomness comes from the host through WASI `random`, never from the twin
//! clock, so ids stay unique when the host freezes or rewinds twin time.

/// The 62 characters of an id body.
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Length of the random part of [`new`] ids: 24 base62 characters are about
/// 143 bits, so collisions are not a concern.
pub const DEFAULT_LEN: usize = 24;

/// `{prefix}_` followed by [`DEFAULT_LEN`] random base62 characters:
/// `ids::new("cus")` is like `cus_4fQ0pZ…`.
pub fn new(prefix: &str) -> String {
    new_with_len(prefix, DEFAULT_LEN)
}

/// `{prefix}_` followed by `len` random base62 characters; with an empty
/// prefix, just the random characters.
pub fn new_with_len(prefix: &str, len: usize) -> String {
    let mut id = String::with_capacity(prefix.len() + 1 + len);
    if !prefix.is_empty() {
        id.push_str(prefix);
        id.push('_');
    }
    push_random(&mut id, len);
    id
}

/// `len` random base62 characters.
pub fn random_base62(len: usize) -> String {
    let mut s = String::with_capacity(len);
    push_random(&mut s, len);
    s
}

fn push_random(out: &mut String, len: usize) {
    let mut buf = [0u8; 64];
    let mut remaining = len;
    while remaining > 0 {
        fill(&mut buf);
        // Rejection sampling: 248 = 4 * 62, so bytes below it map to the
        // alphabet without bias.
        for &b in buf.iter().filter(|&&b| b < 248).take(remaining) {
            out.push(char::from(ALPHABET[usize::from(b % 62)]));
            remaining -= 1;
        }
    }
}

fn fill(buf: &mut [u8]) {
    // The host always links WASI random; failing here means a broken host, and
    // an id that is not random would silently break uniqueness.
    getrandom::fill(buf).expect("wt-sdk: the host's random source failed");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn shape() {
        let id = new("cus");
        assert!(id.starts_with("cus_"));
        assert_eq!(id.len(), 4 + DEFAULT_LEN);
        assert!(id[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(new_with_len("x", 3).len(), 5);
        assert_eq!(new_with_len("", 7).len(), 7);
        assert_eq!(random_base62(200).len(), 200);
        assert_eq!(new_with_len("p", 0), "p_");
    }

    #[test]
    fn unique_and_using_the_whole_alphabet() {
        let ids: HashSet<String> = (0..1000).map(|_| new("x")).collect();
        assert_eq!(ids.len(), 1000);
        let chars: HashSet<char> = random_base62(5000).chars().collect();
        assert_eq!(chars.len(), 62);
    }
}
