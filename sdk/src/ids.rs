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

/// A random (version 4) UUID in its canonical lower-case form,
/// `xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx` with `y` one of `8`, `9`, `a`, `b`:
/// the ids of APIs such as Resend, SendGrid or Supabase.
pub fn uuid_v4() -> String {
    let mut bytes = [0u8; 16];
    fill(&mut bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut out = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

/// Whether `s` is a UUID in canonical form (any version, either case).
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn push_random(out: &mut String, len: usize) {
    POOL.with_borrow_mut(|pool| {
        let mut remaining = len;
        while remaining > 0 {
            // Rejection sampling: 248 = 4 * 62, so bytes below it map to the
            // alphabet without bias.
            let b = pool.byte();
            if b < 248 {
                out.push(char::from(ALPHABET[usize::from(b % 62)]));
                remaining -= 1;
            }
        }
    });
}

fn fill(buf: &mut [u8]) {
    POOL.with_borrow_mut(|pool| buf.iter_mut().for_each(|b| *b = pool.byte()));
}

/// How many random bytes one call to the host fetches.
const POOL_BYTES: usize = 512;

thread_local! {
    static POOL: std::cell::RefCell<Pool> = const {
        std::cell::RefCell::new(Pool { bytes: [0; POOL_BYTES], next: POOL_BYTES })
    };
}

/// The host's random bytes, fetched a block at a time: each WASI call is a
/// round trip through the component boundary, and one block serves a few
/// dozen ids (a Stripe create used to make four calls). Every byte is used
/// once, as the host gave it.
struct Pool {
    bytes: [u8; POOL_BYTES],
    next: usize,
}

impl Pool {
    fn byte(&mut self) -> u8 {
        if self.next == POOL_BYTES {
            // The host always links WASI random; failing here means a broken
            // host, and an id that is not random would silently break
            // uniqueness.
            getrandom::fill(&mut self.bytes).expect("wt-sdk: the host's random source failed");
            self.next = 0;
        }
        let b = self.bytes[self.next];
        self.next += 1;
        b
    }
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
    fn uuid_v4_shape_version_and_variant() {
        let ids: HashSet<String> = (0..1000).map(|_| uuid_v4()).collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            assert!(is_uuid(id), "{id}");
            assert_eq!(id.as_bytes()[14], b'4');
            assert!(matches!(id.as_bytes()[19], b'8' | b'9' | b'a' | b'b'));
            assert_eq!(id.to_lowercase(), *id);
        }
        assert!(is_uuid("4EF9A417-02E9-4D39-AD75-9611E0FCC33C"));
        assert!(!is_uuid("4ef9a417-02e9-4d39-ad75-9611e0fcc33"));
        assert!(!is_uuid("4ef9a417x02e9-4d39-ad75-9611e0fcc33c"));
        assert!(!is_uuid("4ef9a417-02e9-4d39-ad75-9611e0fcc33g"));
    }

    #[test]
    fn unique_and_using_the_whole_alphabet() {
        let ids: HashSet<String> = (0..1000).map(|_| new("x")).collect();
        assert_eq!(ids.len(), 1000);
        let chars: HashSet<char> = random_base62(5000).chars().collect();
        assert_eq!(chars.len(), 62);
    }
}
