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

/// Seconds a token's `nbf` may lie in the future and still count.
pub const NBF_LEEWAY_SECS: u64 = 60;

/// The longest a `trial` license may run.
pub const MAX_TRIAL_DAYS: u64 = 7;

/// The official issuer's public key. Its private half is kept by the release
/// process, never in this repository.
const OFFICIAL_ISSUER_KEY: &str = include_str!("../../keys/official-issuer.pub");

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
fn sign(key: &SigningKey, claims: &Claims) -> Result<String, IssueError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn pair() -> (SigningKey, TrustStore) {
        let pair = keygen();
        let key = SigningKey::from_pkcs8_pem(&pair.private_pem).unwrap();
        let mut trust = TrustStore::official();
        assert_eq!(trust.add_pem(&pair.public_pem, "test").unwrap(), pair.kid);
        (key, trust)
    }

    fn request(aud: &[&str], tier: Tier, nbf: u64, exp: u64) -> IssueRequest {
        IssueRequest {
            issuer: "test".into(),
            subject: "acct_1".into(),
            audience: aud.iter().map(|s| (*s).to_owned()).collect(),
            tier,
            not_before: nbf,
            expires: exp,
            issued_at: nbf,
        }
    }

    fn token(key: &SigningKey, aud: &[&str], nbf: u64, exp: u64) -> String {
        issue(key, &request(aud, Tier::Pro, nbf, exp)).unwrap()
    }

    #[test]
    fn valid_until_exactly_exp() {
        let (key, trust) = pair();
        let v = trust
            .verify(&token(&key, &["stripe"], NOW - 10, NOW + 10))
            .unwrap();
        assert_eq!(v.check("stripe", NOW), Ok(()));
        assert_eq!(v.check("stripe", NOW + 9), Ok(()));
        assert_eq!(
            v.check("stripe", NOW + 10),
            Err(Refusal::Expired { exp: NOW + 10 })
        );
    }

    #[test]
    fn not_yet_valid_beyond_the_leeway_only() {
        let (key, trust) = pair();
        let soon = trust
            .verify(&token(&key, &["*"], NOW + NBF_LEEWAY_SECS, NOW + 1000))
            .unwrap();
        assert_eq!(soon.check("stripe", NOW), Ok(()));
        let later = trust
            .verify(&token(&key, &["*"], NOW + NBF_LEEWAY_SECS + 1, NOW + 1000))
            .unwrap();
        assert_eq!(
            later.check("stripe", NOW),
            Err(Refusal::NotYetValid {
                nbf: NOW + NBF_LEEWAY_SECS + 1
            })
        );
    }

    #[test]
    fn audience_is_the_served_identity() {
        let (key, trust) = pair();
        let v = trust
            .verify(&token(&key, &["stripe", "twilio"], NOW, NOW + 10))
            .unwrap();
        assert_eq!(v.check("twilio", NOW), Ok(()));
        assert!(matches!(
            v.check("clerk", NOW),
            Err(Refusal::WrongAudience { .. })
        ));
        let all = trust.verify(&token(&key, &["*"], NOW, NOW + 10)).unwrap();
        assert_eq!(all.check("clerk", NOW), Ok(()));
    }

    #[test]
    fn forged_signature_and_unknown_key_are_told_apart() {
        let (key, trust) = pair();
        let good = token(&key, &["stripe"], NOW, NOW + 10);
        // Same header and signature, other claims: the signature no longer fits.
        let mut parts: Vec<&str> = good.split('.').collect();
        let forged_claims = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            br#"{"iss":"x","sub":"acct_1","aud":"*","tier":"pro","iat":1,"nbf":1,"exp":9999999999,"jti":"j"}"#,
        );
        parts[1] = &forged_claims;
        assert_eq!(
            trust.verify(&parts.join(".")),
            Err(TokenProblem::BadSignature)
        );
        let (stranger, _) = pair();
        let unknown = token(&stranger, &["stripe"], NOW, NOW + 10);
        assert!(matches!(
            trust.verify(&unknown),
            Err(TokenProblem::UnknownKey(_))
        ));
        assert!(matches!(
            trust.verify("not.a.token"),
            Err(TokenProblem::Malformed(_))
        ));
        assert_eq!(trust.verify("  "), Err(TokenProblem::Missing));
    }

    #[test]
    fn two_trusted_keys_at_once() {
        let (old, mut trust) = pair();
        let new = keygen();
        trust.add_pem(&new.public_pem, "new").unwrap();
        let new_key = SigningKey::from_pkcs8_pem(&new.private_pem).unwrap();
        for key in [&old, &new_key] {
            assert!(trust.verify(&token(key, &["*"], NOW, NOW + 1)).is_ok());
        }
        assert_eq!(trust.kids().len(), 3);
    }

    #[test]
    fn a_longer_trial_signed_elsewhere_ends_after_seven_days() {
        let (key, trust) = pair();
        let week = MAX_TRIAL_DAYS * 86_400;
        let claims = Claims {
            iss: "someone-else".into(),
            sub: "acct".into(),
            aud: Audience::One("stripe".into()),
            tier: Tier::Trial,
            iat: NOW,
            nbf: NOW,
            exp: NOW + 30 * 86_400,
            jti: "t".into(),
        };
        let v = trust.verify(&sign(&key, &claims).unwrap()).unwrap();
        assert_eq!(v.check("stripe", NOW + week - 1), Ok(()));
        assert_eq!(
            v.check("stripe", NOW + week),
            Err(Refusal::Expired { exp: NOW + week })
        );
        // A pro license runs to its exp.
        let pro = Claims {
            tier: Tier::Pro,
            ..claims
        };
        let v = trust.verify(&sign(&key, &pro).unwrap()).unwrap();
        assert_eq!(v.check("stripe", NOW + week), Ok(()));
    }

    #[test]
    fn trial_is_capped_at_seven_days() {
        let (key, _) = pair();
        let week = MAX_TRIAL_DAYS * 86_400;
        assert!(issue(&key, &request(&["*"], Tier::Trial, NOW, NOW + week)).is_ok());
        let err = issue(&key, &request(&["*"], Tier::Trial, NOW, NOW + week + 1)).unwrap_err();
        assert!(matches!(err, IssueError::TrialTooLong { .. }), "{err}");
        assert!(issue(&key, &request(&["*"], Tier::Pro, NOW, NOW + 10 * week)).is_ok());
        assert!(matches!(
            issue(&key, &request(&[], Tier::Pro, NOW, NOW + 1)),
            Err(IssueError::NoAudience)
        ));
        assert!(matches!(
            issue(&key, &request(&["*"], Tier::Pro, NOW, NOW)),
            Err(IssueError::EmptyWindow { .. })
        ));
    }

    #[test]
    fn unknown_claims_are_malformed() {
        let (key, trust) = pair();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid_of(&key.verifying_key()));
        let der = key.to_pkcs8_der().unwrap();
        let odd = jsonwebtoken::encode(
            &header,
            &serde_json::json!({"sub": "a", "aud": "*", "tier": "gold", "iss": "i", "iat": 1, "nbf": 1, "exp": 2, "jti": "j"}),
            &EncodingKey::from_ed_der(der.as_bytes()),
        )
        .unwrap();
        assert!(matches!(
            trust.verify(&odd),
            Err(TokenProblem::Malformed(_))
        ));
    }

    #[test]
    fn licensing_reloads_a_changed_file() {
        let (key, trust) = pair();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("license.jwt");
        let licensing = Licensing::new(trust, LicenseSource::File(path.clone()));
        assert_eq!(
            licensing.check("stripe", NOW),
            Err(Refusal::Token(TokenProblem::Missing))
        );
        assert_eq!(licensing.covering("stripe", NOW), None);
        std::fs::write(&path, token(&key, &["stripe"], NOW - 100, NOW - 1)).unwrap();
        assert!(licensing.reload());
        assert_eq!(
            licensing.check("stripe", NOW),
            Err(Refusal::Expired { exp: NOW - 1 })
        );
        assert_eq!(licensing.covering("stripe", NOW), None);
        assert!(!licensing.reload(), "unchanged file");
        std::fs::write(&path, token(&key, &["stripe"], NOW - 100, NOW + 100)).unwrap();
        assert!(licensing.reload());
        assert_eq!(licensing.check("stripe", NOW).unwrap().sub, "acct_1");
        assert_eq!(
            licensing.covering("stripe", NOW),
            licensing.check("stripe", NOW).ok()
        );
        assert_eq!(licensing.covering("clerk", NOW), None, "wrong audience");
        assert_eq!(licensing.covering("stripe", NOW + 100), None, "at exp");
        let status = licensing.status("free", false, NOW);
        assert_eq!(status.state, "not_required");
        let status = licensing.status("clerk", true, NOW);
        assert_eq!(status.state, "license_wrong_audience");
    }
}
