//! The license the host validated for this twin, for feature gating by tier.
//!
//! The host verifies the token (signature, validity window, audience) before
//! a licensed twin sees any request, and answers 402 itself when it cannot;
//! a twin never handles tokens. What reaches the twin is the claims.

/// The claims of the license covering this twin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// Who issued the token.
    pub issuer: String,
    /// The licensed account.
    pub subject: String,
    /// The twin identities covered, or `["*"]`.
    pub audience: Vec<String>,
    /// `"trial"` or `"pro"`.
    pub tier: String,
    /// Seconds since the Unix epoch.
    pub issued_at: u64,
    /// Seconds since the Unix epoch.
    pub not_before: u64,
    /// Exclusive: the license is invalid from this second on.
    pub expires_at: u64,
    /// The token's unique id.
    pub token_id: String,
}

impl Claims {
    /// Whether this is a paid (not trial) license.
    pub fn is_pro(&self) -> bool {
        self.tier == "pro"
    }
}

/// The claims covering this twin, or `None` when it runs without a license
/// (a free twin with no license configured).
pub fn claims() -> Option<Claims> {
    crate::sys::license_claims()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn claims_are_what_the_host_gave() {
        testing::reset();
        assert_eq!(claims(), None);
        let c = Claims {
            issuer: "wt".into(),
            subject: "acct_1".into(),
            audience: vec!["stripe".into()],
            tier: "pro".into(),
            issued_at: 1,
            not_before: 1,
            expires_at: 2,
            token_id: "t".into(),
        };
        testing::set_license(Some(c.clone()));
        assert_eq!(claims(), Some(c.clone()));
        assert!(c.is_pro());
    }
}
