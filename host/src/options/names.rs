//! What a twin may be called: its name is a route prefix (`/<name>/`), a
//! DNS label under `.localhost`, and a directory name under `--state-dir`.

/// Whether `name` can be a route prefix, a DNS label under `.localhost`, and a
/// directory name.
pub fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_route_and_dns_safe() {
        for ok in ["hello", "stripe", "a", "my-twin_2"] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in ["", "_wt", "Hello", "1abc", "a/b", "a.b", &"x".repeat(64)] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }
}
