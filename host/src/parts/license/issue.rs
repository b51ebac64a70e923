//! Issuing licenses: key pairs, and tokens signed with the issuer's key
//! (`wt-host license keygen` / `issue`; a vendor's side, not the host's).

use std::path::Path;

use super::*;

/// A freshly generated signing key pair, as PEM.
#[derive(Debug)]
pub struct KeyPair {
    pub private_pem: String,
    pub public_pem: String,
    pub kid: String,
}

/// Generates an Ed25519 key pair for issuing licenses.
pub fn keygen() -> KeyPair {
    let signing = SigningKey::generate(&mut rand_core::OsRng);
    let verifying = signing.verifying_key();
    KeyPair {
        private_pem: signing
            .to_pkcs8_pem(LineEnding::LF)
            .expect("an Ed25519 key encodes as PKCS#8")
            .to_string(),
        public_pem: verifying
            .to_public_key_pem(LineEnding::LF)
            .expect("an Ed25519 key encodes as SPKI"),
        kid: kid_of(&verifying),
    }
}

/// What `license issue` asks for.
#[derive(Debug, Clone)]
pub struct IssueRequest {
    pub issuer: String,
    pub subject: String,
    pub audience: Vec<String>,
    pub tier: Tier,
    pub not_before: u64,
    pub expires: u64,
    pub issued_at: u64,
}

/// Why a license could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("a trial license may run at most {MAX_TRIAL_DAYS} days; this one runs {days:.2}")]
    TrialTooLong { days: f64 },
    #[error("the license would expire ({exp}) before it becomes valid ({nbf})")]
    EmptyWindow { nbf: u64, exp: u64 },
    #[error("the audience is empty: name the twins it covers, or `*`")]
    NoAudience,
    #[error("the subject (the licensed account) is empty")]
    NoSubject,
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("signing failed: {0}")]
    Sign(String),
}

/// Reads a signing key (PKCS#8 PEM, `-----BEGIN PRIVATE KEY-----`).
pub fn read_signing_key(path: &Path) -> Result<SigningKey, KeyError> {
    let pem = std::fs::read_to_string(path).map_err(|error| KeyError::Read {
        path: path.display().to_string(),
        error,
    })?;
    SigningKey::from_pkcs8_pem(pem.trim()).map_err(|e| KeyError::Format {
        path: path.display().to_string(),
        kind: "private",
        reason: e.to_string(),
    })
}

/// Signs a license. Refuses trials longer than [`MAX_TRIAL_DAYS`]: the cap is
/// enforced where tokens are made, so no tool of ours can mint a longer one.
pub fn issue(key: &SigningKey, request: &IssueRequest) -> Result<String, IssueError> {
    if request.subject.trim().is_empty() {
        return Err(IssueError::NoSubject);
    }
    if request.audience.is_empty() || request.audience.iter().any(|a| a.trim().is_empty()) {
        return Err(IssueError::NoAudience);
    }
    if request.expires <= request.not_before {
        return Err(IssueError::EmptyWindow {
            nbf: request.not_before,
            exp: request.expires,
        });
    }
    let span = request.expires - request.not_before;
    if request.tier == Tier::Trial && span > MAX_TRIAL_DAYS * 86_400 {
        return Err(IssueError::TrialTooLong {
            days: span as f64 / 86_400.0,
        });
    }
    let claims = Claims {
        iss: request.issuer.clone(),
        sub: request.subject.clone(),
        aud: if request.audience.len() == 1 {
            Audience::One(request.audience[0].clone())
        } else {
            Audience::Many(request.audience.clone())
        },
        tier: request.tier,
        iat: request.issued_at,
        nbf: request.not_before,
        exp: request.expires,
        jti: uuid_like(),
    };
    sign(key, &claims)
}

/// Signs claims as they are: [`issue`] checks them first.
pub(super) fn sign(key: &SigningKey, claims: &Claims) -> Result<String, IssueError> {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid_of(&key.verifying_key()));
    let der = key
        .to_pkcs8_der()
        .map_err(|e| IssueError::Sign(e.to_string()))?;
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(der.as_bytes()))
        .map_err(|e| IssueError::Sign(e.to_string()))
}

/// A random token id.
fn uuid_like() -> String {
    let mut bytes = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    hex::encode(bytes)
}
