//! Email addresses, checked the way vendor APIs check them: for a plausible
//! shape, not RFC 5322 in full. A twin refuses what the vendor refuses
//! (`not-an-email`, `a@b`, spaces) and accepts what test suites send.

/// Longest address accepted (RFC 5321's limit on a path).
pub const MAX_ADDRESS: usize = 320;

/// Whether `addr` is a plausible email address: a non-empty local part, one
/// `@`, a dotted domain without empty labels at either end or in the middle,
/// no whitespace, at most [`MAX_ADDRESS`] bytes.
pub fn is_plausible(addr: &str) -> bool {
    let Some((local, domain)) = addr.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !addr.contains(char::is_whitespace)
        && addr.len() <= MAX_ADDRESS
}

/// The address of a mailbox written `a@b.c` or `Name <a@b.c>`, trimmed;
/// `None` when a `<` is not closed by a final `>`.
pub fn mailbox_address(mailbox: &str) -> Option<&str> {
    let mailbox = mailbox.trim();
    match mailbox.find('<') {
        Some(i) => mailbox[i + 1..].strip_suffix('>').map(str::trim),
        None => Some(mailbox),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plausible_addresses() {
        for ok in ["a@b.co", "first.last+tag@mail.example.com"] {
            assert!(is_plausible(ok), "{ok}");
        }
        let long = format!("{}@example.com", "a".repeat(MAX_ADDRESS));
        for bad in [
            "", "a", "@b.co", "a@b", "a@.b.co", "a@b.co.", "a@b..co", "a@b@c.co", "a b@c.co", &long,
        ] {
            assert!(!is_plausible(bad), "{bad}");
        }
    }

    #[test]
    fn mailbox_addresses() {
        assert_eq!(mailbox_address(" a@b.co "), Some("a@b.co"));
        assert_eq!(mailbox_address("Acme <a@b.co>"), Some("a@b.co"));
        assert_eq!(mailbox_address("Acme <a@b.co"), None);
    }
}
