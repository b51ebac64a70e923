//! API credentials from the `Authorization` header.
//!
//! Most SaaS APIs take a secret key either as a bearer token
//! (`Authorization: Bearer sk_test_…`) or as the user name of HTTP Basic auth
//! (`Authorization: Basic base64("sk_test_…:")`). [`credentials`] reads both
//! and reports what it found; deciding whether a key is valid, and which
//! account it names, is the twin's business.
//!
//! ```
//! use wt_sdk::{Request, auth};
//!
//! let req = Request::new("GET", "/").with_header("authorization", "Bearer sk_test_1");
//! assert_eq!(auth::credentials(&req).unwrap().unwrap().key(), "sk_test_1");
//! ```

use crate::Request;

/// Credentials found in an `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `Bearer <token>`.
    Bearer(String),
    /// `Basic base64(user:password)`; the password may be empty.
    Basic {
        /// The user part (where APIs put the key).
        user: String,
        /// The password part, often empty.
        password: String,
    },
}

impl Credentials {
    /// The API key: the bearer token, or the Basic user name.
    pub fn key(&self) -> &str {
        match self {
            Credentials::Bearer(token) => token,
            Credentials::Basic { user, .. } => user,
        }
    }
}

/// Why an `Authorization` header could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// A scheme other than Bearer or Basic.
    UnsupportedScheme(String),
    /// The header's value is not well formed (empty token, bad base64, no
    /// `:` in Basic credentials, not UTF-8).
    Malformed,
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthError::UnsupportedScheme(s) => write!(f, "unsupported authorization scheme `{s}`"),
            AuthError::Malformed => f.write_str("malformed authorization header"),
        }
    }
}

impl std::error::Error for AuthError {}

/// The credentials of `request`: `Ok(None)` without an `Authorization`
/// header (or with an empty one), an error when it cannot be read. Scheme
/// names compare case-insensitively.
pub fn credentials(request: &Request) -> Result<Option<Credentials>, AuthError> {
    match request.header("authorization").map(str::trim) {
        None | Some("") => Ok(None),
        Some(value) => parse(value).map(Some),
    }
}

/// Parses one `Authorization` header value.
pub fn parse(value: &str) -> Result<Credentials, AuthError> {
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        if rest.is_empty() || rest.contains(char::is_whitespace) {
            return Err(AuthError::Malformed);
        }
        Ok(Credentials::Bearer(rest.to_owned()))
    } else if scheme.eq_ignore_ascii_case("basic") {
        let bytes = base64_decode(rest).ok_or(AuthError::Malformed)?;
        let text = String::from_utf8(bytes).map_err(|_| AuthError::Malformed)?;
        let (user, password) = text.split_once(':').ok_or(AuthError::Malformed)?;
        Ok(Credentials::Basic {
            user: user.to_owned(),
            password: password.to_owned(),
        })
    } else {
        Err(AuthError::UnsupportedScheme(scheme.to_owned()))
    }
}

/// Longest key body [`is_key_shaped`] accepts: far above any vendor's, far
/// below what would make a key expensive to store or compare.
pub const MAX_KEY_BODY: usize = 200;

/// Whether `key` has the shape of a vendor key: one of `prefixes`, then 1 to
/// [`MAX_KEY_BODY`] ASCII letters and digits or bytes from `also` (`b"_-"`,
/// say). Twins check the shape before a key names an account, so a garbled
/// key gets the vendor's "invalid key" answer rather than an empty account.
pub fn is_key_shaped(key: &str, prefixes: &[&str], also: &[u8]) -> bool {
    prefixes
        .iter()
        .find_map(|prefix| key.strip_prefix(prefix))
        .is_some_and(|body| {
            !body.is_empty()
                && body.len() <= MAX_KEY_BODY
                && body
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || also.contains(&b))
        })
}

/// Decodes standard base64, with or without padding (clients differ);
/// `None` if it is not base64.
fn base64_decode(input: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    LENIENT.decode(input).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_shape_is_a_prefix_then_a_bounded_alphabet() {
        let stripe = |k: &str| is_key_shaped(k, &["sk_test_", "rk_test_"], b"_-");
        assert!(stripe("sk_test_abc-1_2") && stripe("rk_test_x"));
        assert!(!stripe("sk_test_") && !stripe("sk_live_abc") && !stripe("sk_test_a b"));
        assert!(stripe(&format!("sk_test_{}", "a".repeat(MAX_KEY_BODY))));
        assert!(!stripe(&format!(
            "sk_test_{}",
            "a".repeat(MAX_KEY_BODY + 1)
        )));
        assert!(!is_key_shaped("re_a-b", &["re_"], b"_"));
        assert!(is_key_shaped("re_a_b", &["re_"], b"_"));
    }

    fn req(h: &str) -> Request {
        Request::new("GET", "/").with_header("Authorization", h)
    }

    #[test]
    fn bearer_and_basic() {
        assert_eq!(
            credentials(&req("Bearer sk_test_1")).unwrap(),
            Some(Credentials::Bearer("sk_test_1".into()))
        );
        assert_eq!(
            credentials(&req("bearer  sk_test_1 "))
                .unwrap()
                .unwrap()
                .key(),
            "sk_test_1"
        );
        // base64("sk_test_2:") = c2tfdGVzdF8yOg==
        let basic = credentials(&req("Basic c2tfdGVzdF8yOg=="))
            .unwrap()
            .unwrap();
        assert_eq!(
            basic,
            Credentials::Basic {
                user: "sk_test_2".into(),
                password: String::new()
            }
        );
        assert_eq!(basic.key(), "sk_test_2");
    }

    #[test]
    fn missing_and_malformed() {
        assert_eq!(credentials(&Request::new("GET", "/")).unwrap(), None);
        assert_eq!(credentials(&req("  ")).unwrap(), None);
        assert_eq!(credentials(&req("Bearer")), Err(AuthError::Malformed));
        assert_eq!(credentials(&req("Bearer a b")), Err(AuthError::Malformed));
        assert_eq!(credentials(&req("Basic !!!")), Err(AuthError::Malformed));
        // base64("nocolon")
        assert_eq!(
            credentials(&req("Basic bm9jb2xvbg==")),
            Err(AuthError::Malformed)
        );
        assert_eq!(
            credentials(&req("Token x")),
            Err(AuthError::UnsupportedScheme("Token".into()))
        );
        assert!(AuthError::Malformed.to_string().contains("malformed"));
    }

    #[test]
    fn base64_round_values() {
        assert_eq!(base64_decode("").unwrap(), b"");
        assert_eq!(base64_decode("YQ").unwrap(), b"a");
        assert_eq!(base64_decode("YWI=").unwrap(), b"ab");
        assert_eq!(base64_decode("YWJj").unwrap(), b"abc");
        assert_eq!(base64_decode("Y"), None);
    }
}
