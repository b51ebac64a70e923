//! License claims for paid twins: Ed25519-signed JWTs (EdDSA), verified
//! against trusted keys, checked per twin on every request.
//!
//! A token is verified once when it is read (signature, key, shape); the
//! time window and the audience are checked on every request against the
//! twin's own identity, so an expiry takes effect exactly at `exp` without
//! any timer, and a request that started under a valid license finishes.
//!
//! Policy (docs/decisions.md §9):
//! - `nbf <= now + NBF_LEEWAY` and `now < exp`: `exp` is exclusive, as in JWT,
//!   and has no leeway, so a license never outlives what was sold; `nbf` gets
//!   a small leeway because a token issued a moment ago on a machine whose
//!   clock runs ahead must not be refused.
//! - The audience is checked against the name the host serves the twin
//!   under, never against anything in the request or from the twin itself.
//! - `kid` selects the key; keys are named by a fingerprint of the public key,
//!   so two trusted keys (a rotation) never collide.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// An Ed25519 signing key, as [`read_signing_key`] returns it.
pub use ed25519_dalek::SigningKey;
use ed25519_dalek::VerifyingKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

mod issue;
#[cfg(test)]
mod tests;

pub use issue::{IssueError, IssueRequest, KeyPair, issue, keygen, read_signing_key};

/// Seconds a token's `nbf` may lie in the future and still count.
pub const NBF_LEEWAY_SECS: u64 = 60;

/// The longest a `trial` license may run.
pub const MAX_TRIAL_DAYS: u64 = 7;

/// The official issuer's public key. Its private half is kept by the release
/// process, never in this repository.
const OFFICIAL_ISSUER_KEY: &str = include_str!("../../../keys/official-issuer.pub");

/// What a license grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Trial,
    Pro,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trial => "trial",
            Self::Pro => "pro",
        }
    }
}

impl std::str::FromStr for Tier {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "trial" => Ok(Self::Trial),
            "pro" => Ok(Self::Pro),
            other => Err(format!("tier must be `trial` or `pro`, not {other:?}")),
        }
    }
}

/// `aud` may be one string or a list, as JWT allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn names(&self) -> Vec<String> {
        match self {
            Self::One(one) => vec![one.clone()],
            Self::Many(many) => many.clone(),
        }
    }

    /// Whether the twin served as `identity` is covered (`*` covers all).
    pub fn covers(&self, identity: &str) -> bool {
        self.names().iter().any(|n| n == "*" || n == identity)
    }
}

/// The claims of a license token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    pub iss: String,
    /// The licensed account.
    pub sub: String,
    /// The twin identities covered, or `*`.
    pub aud: Audience,
    pub tier: Tier,
    pub iat: u64,
    pub nbf: u64,
    /// Exclusive: invalid from this second on.
    pub exp: u64,
    pub jti: String,
}

/// Why a token could not be used at all (independent of twin and time).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenProblem {
    #[error("no license is configured")]
    Missing,
    #[error("the license cannot be read: {0}")]
    Unreadable(String),
    #[error("the license is not a well-formed token: {0}")]
    Malformed(String),
    #[error("the license is signed by an unknown key (kid {0:?})")]
    UnknownKey(String),
    #[error("the license signature does not verify")]
    BadSignature,
}

/// Why a verified token does not cover a twin right now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0}")]
    Token(TokenProblem),
    #[error("the license expired at {exp} (unix seconds)")]
    Expired { exp: u64 },
    #[error("the license is not valid before {nbf} (unix seconds)")]
    NotYetValid { nbf: u64 },
    #[error("the license does not cover twin '{twin}' (it covers: {covered})")]
    WrongAudience { twin: String, covered: String },
}

impl Refusal {
    /// A stable, machine-readable reason for JSON bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Token(TokenProblem::Missing) => "license_missing",
            Self::Token(TokenProblem::Unreadable(_)) => "license_unreadable",
            Self::Token(TokenProblem::Malformed(_)) => "license_malformed",
            Self::Token(TokenProblem::UnknownKey(_)) => "license_unknown_key",
            Self::Token(TokenProblem::BadSignature) => "license_bad_signature",
            Self::Expired { .. } => "license_expired",
            Self::NotYetValid { .. } => "license_not_yet_valid",
            Self::WrongAudience { .. } => "license_wrong_audience",
        }
    }
}

/// A token whose signature checked out against a trusted key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub claims: Claims,
    pub kid: String,
}

/// Which validity rule a verified license breaks for a twin.
#[derive(Debug, Clone, Copy)]
enum Violation {
    Expired,
    NotYetValid,
    WrongAudience,
}

impl Verified {
    /// When the license stops covering anything: its `exp`, or for a
    /// `trial`, at most [`MAX_TRIAL_DAYS`] after it starts (`nbf`, or `iat`
    /// if later), whoever signed it; `issue` refuses longer trials, and the
    /// host holds other issuers to the same rule.
    fn ends(&self) -> u64 {
        let c = &self.claims;
        match c.tier {
            Tier::Trial => c
                .exp
                .min(c.nbf.max(c.iat).saturating_add(MAX_TRIAL_DAYS * 86_400)),
            Tier::Pro => c.exp,
        }
    }

    /// The one place the validity rules live: `exp` exclusive (a trial's
    /// capped), `nbf` with leeway, the audience naming the twin.
    fn violation(&self, identity: &str, now: u64) -> Option<Violation> {
        let c = &self.claims;
        if now >= self.ends() {
            Some(Violation::Expired)
        } else if c.nbf > now.saturating_add(NBF_LEEWAY_SECS) {
            Some(Violation::NotYetValid)
        } else if !c.aud.covers(identity) {
            Some(Violation::WrongAudience)
        } else {
            None
        }
    }

    /// Whether the license covers the twin served as `identity` at `now`,
    /// and if not, why (with the details a message needs).
    pub fn check(&self, identity: &str, now: u64) -> Result<(), Refusal> {
        let c = &self.claims;
        match self.violation(identity, now) {
            None => Ok(()),
            Some(Violation::Expired) => Err(Refusal::Expired { exp: self.ends() }),
            Some(Violation::NotYetValid) => Err(Refusal::NotYetValid { nbf: c.nbf }),
            Some(Violation::WrongAudience) => Err(Refusal::WrongAudience {
                twin: identity.to_owned(),
                covered: c.aud.names().join(", "),
            }),
        }
    }
}

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: cannot read: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{path}: not an Ed25519 {kind} key in PEM: {reason}")]
    Format {
        path: String,
        kind: &'static str,
        reason: String,
    },
}

/// A public key the host trusts to sign licenses.
#[derive(Clone)]
struct TrustedKey {
    kid: String,
    key: DecodingKey,
}

/// The keys licenses may be signed with: the official issuer's plus any the
/// operator adds (private registries, tests, a rotation in progress).
#[derive(Clone)]
pub struct TrustStore {
    keys: Vec<TrustedKey>,
}

impl std::fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|k| &k.kid))
            .finish()
    }
}

impl Default for TrustStore {
    fn default() -> Self {
        Self::official()
    }
}

impl TrustStore {
    /// Only the official issuer's key.
    pub fn official() -> Self {
        let key = VerifyingKey::from_public_key_pem(OFFICIAL_ISSUER_KEY)
            .expect("the built-in issuer key is valid PEM");
        Self {
            keys: vec![trusted(&key)],
        }
    }

    /// Adds a public key (PEM, `-----BEGIN PUBLIC KEY-----`); returns its kid.
    pub fn add_pem(&mut self, pem: &str, source: &str) -> Result<String, KeyError> {
        let key = VerifyingKey::from_public_key_pem(pem.trim()).map_err(|e| KeyError::Format {
            path: source.to_owned(),
            kind: "public",
            reason: e.to_string(),
        })?;
        let trusted = trusted(&key);
        let kid = trusted.kid.clone();
        if !self.keys.iter().any(|k| k.kid == kid) {
            self.keys.push(trusted);
        }
        Ok(kid)
    }

    /// Adds a public key file.
    pub fn add_file(&mut self, path: &Path) -> Result<String, KeyError> {
        let pem = std::fs::read_to_string(path).map_err(|error| KeyError::Read {
            path: path.display().to_string(),
            error,
        })?;
        self.add_pem(&pem, &path.display().to_string())
    }

    /// The kids of every trusted key.
    pub fn kids(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.kid.clone()).collect()
    }

    /// Checks a token's shape, key and signature (not its time or audience).
    pub fn verify(&self, token: &str) -> Result<Verified, TokenProblem> {
        let token = token.trim();
        if token.is_empty() {
            return Err(TokenProblem::Missing);
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| TokenProblem::Malformed(e.to_string()))?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenProblem::Malformed(format!(
                "algorithm {:?}; licenses are EdDSA",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| TokenProblem::Malformed("the header has no `kid`".into()))?;
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| TokenProblem::UnknownKey(kid.clone()))?;
        // Time and audience are ours to check, per twin and per request.
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let data =
            jsonwebtoken::decode::<Claims>(token, &key.key, &validation).map_err(|e| {
                match e.kind() {
                    jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenProblem::BadSignature,
                    _ => TokenProblem::Malformed(e.to_string()),
                }
            })?;
        Ok(Verified {
            claims: data.claims,
            kid,
        })
    }
}

fn trusted(key: &VerifyingKey) -> TrustedKey {
    TrustedKey {
        kid: kid_of(key),
        key: DecodingKey::from_ed_der(key.as_bytes()),
    }
}

/// A key's id: a fingerprint of the public key, so the same key always has
/// the same kid and two keys never share one.
fn kid_of(key: &VerifyingKey) -> String {
    let digest = Sha256::digest(key.as_bytes());
    format!("wt-{}", &hex::encode(digest)[..16])
}

/// Seconds since the Unix epoch, by the real clock (licenses follow real
/// time, never the twins' adjustable clock).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Where the host reads its license from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum LicenseSource {
    /// None configured.
    #[default]
    None,
    /// A file, re-read when it changes and on SIGHUP.
    File(PathBuf),
    /// The token itself (from `WT_LICENSE`).
    Token(String),
}

impl LicenseSource {
    /// `--license FILE`, else `WT_LICENSE` (the token), else the default file
    /// if it exists.
    pub fn resolve(flag: Option<PathBuf>, env: Option<String>) -> Self {
        if let Some(path) = flag {
            return Self::File(path);
        }
        if let Some(token) = env.filter(|t| !t.trim().is_empty()) {
            return Self::Token(token);
        }
        match default_path() {
            Some(path) if path.exists() => Self::File(path),
            _ => Self::None,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::None => "none".into(),
            Self::File(path) => path.display().to_string(),
            Self::Token(_) => "WT_LICENSE".into(),
        }
    }
}

/// `wt/license.jwt` under the user's config directory.
pub fn default_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("wt").join("license.jwt"))
}

/// The host's license: where it comes from, what it said last time it was
/// read, and the keys it is checked against.
#[derive(Debug)]
pub struct Licensing {
    trust: TrustStore,
    source: LicenseSource,
    current: RwLock<Loaded>,
}

#[derive(Debug, Clone)]
struct Loaded {
    /// The bytes last read, to notice a change cheaply.
    text: Option<String>,
    token: Arc<Result<Verified, TokenProblem>>,
}

/// A twin's license state, for `/_wt/twins`, `/_wt/health` and start-up lines.
#[derive(Debug, Clone, Serialize)]
pub struct LicenseStatus {
    pub required: bool,
    /// `valid`, `not_required`, or the refusal's code.
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

impl Default for Licensing {
    fn default() -> Self {
        Self::new(TrustStore::official(), LicenseSource::None)
    }
}

impl Licensing {
    pub fn new(trust: TrustStore, source: LicenseSource) -> Self {
        let licensing = Self {
            trust,
            source,
            current: RwLock::new(Loaded {
                text: None,
                token: Arc::new(Err(TokenProblem::Missing)),
            }),
        };
        licensing.reload();
        licensing
    }

    pub fn source(&self) -> &LicenseSource {
        &self.source
    }

    /// Reads the license again; returns whether what it says changed.
    pub fn reload(&self) -> bool {
        let text = match &self.source {
            LicenseSource::None => None,
            LicenseSource::Token(token) => Some(Ok(token.clone())),
            LicenseSource::File(path) => Some(std::fs::read_to_string(path).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    TokenProblem::Missing
                } else {
                    TokenProblem::Unreadable(format!("{}: {e}", path.display()))
                }
            })),
        };
        let seen = match &text {
            Some(Ok(text)) => Some(text.clone()),
            _ => None,
        };
        {
            let current = self.current.read().unwrap_or_else(|e| e.into_inner());
            if current.text.is_some() && current.text == seen {
                return false;
            }
        }
        let token = match text {
            None => Err(TokenProblem::Missing),
            Some(Err(problem)) => Err(problem),
            Some(Ok(text)) => self.trust.verify(&text),
        };
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        let changed = *current.token != token;
        *current = Loaded {
            text: seen,
            token: Arc::new(token),
        };
        changed
    }

    fn token(&self) -> Arc<Result<Verified, TokenProblem>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .token
            .clone()
    }

    /// The claims covering `identity` at `now`, if a license does; unlike
    /// [`check`](Self::check) it builds no refusal, so a twin that needs no
    /// license pays nothing per request for not having one.
    pub fn covering(&self, identity: &str, now: u64) -> Option<Claims> {
        match &*self.token() {
            Ok(verified) if verified.violation(identity, now).is_none() => {
                Some(verified.claims.clone())
            }
            _ => None,
        }
    }

    /// The claims covering `identity` at `now`, or why not.
    pub fn check(&self, identity: &str, now: u64) -> Result<Claims, Refusal> {
        match &*self.token() {
            Err(problem) => Err(Refusal::Token(problem.clone())),
            Ok(verified) => verified
                .check(identity, now)
                .map(|()| verified.claims.clone()),
        }
    }

    /// The state to show for a twin.
    pub fn status(&self, identity: &str, required: bool, now: u64) -> LicenseStatus {
        match self.check(identity, now) {
            Ok(claims) => LicenseStatus {
                required,
                state: "valid".into(),
                message: None,
                subject: Some(claims.sub),
                tier: Some(claims.tier),
                expires_at: Some(claims.exp),
            },
            Err(_) if !required => LicenseStatus {
                required,
                state: "not_required".into(),
                message: None,
                subject: None,
                tier: None,
                expires_at: None,
            },
            Err(refusal) => LicenseStatus {
                required,
                state: refusal.code().into(),
                message: Some(refusal.to_string()),
                subject: None,
                tier: None,
                expires_at: None,
            },
        }
    }
}
